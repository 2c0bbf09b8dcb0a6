"""The online learner of the ROS stack, without ROS: episodes in, new policies out.

Consumes whole episodes (the episode monitor's /farl/learner/transitions
payloads), and once `episodes_per_update` episodes (and at least
`min_steps_per_update` steps) have arrived runs one PPO update of pi_task on
them — the executed, safety-filtered transitions, as FARL prescribes; pi_rec
and the world model stay frozen. Each update is exported as a complete model
folder (policy, recovery, risk graphs re-exported with the new policy, since
C_H rolls out the *current* pi_task) under run_dir/policies/vNNNN/, and the
learner's state (networks, optimiser, version, counters) is checkpointed so a
restarted learner resumes where it stopped.

Log-probabilities: PPO needs log pi_old(a|s) of the executed action. The
learner recomputes them with its current parameters at update time rather
than trusting the actor's: for recovery steps the behaviour policy was not
pi_task at all, and a policy swap may lag a few ticks. The first epoch's ratio
is then exactly 1, as in standard PPO.

Device: pi_task and its value network train on `device` (cpu by default, cuda
on a GPU workstation); the frozen recovery policy and world model stay on the
CPU, and every export and checkpoint is written from CPU tensors, so a folder
or state file never depends on where it was trained.
"""
from __future__ import annotations

import copy
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from farl_common.errors import FarlInputError

from .agents.ppo import Rollout, make_optimizer, ppo_update
from .config import FarlConfig
from .device import resolve_device
from .export.folder import export_model_folder
from .export.manifest import MANIFEST, load_manifest
from .training.checkpoint import load_checkpoint
from .training.io import CALIBRATION, CHECKPOINTS, read_json

STATE_FILE = "learner_state.pt"


@dataclass(frozen=True)
class PolicyAnnouncement:
    path: str
    version: int
    sha256: str

    def as_dict(self) -> dict:
        return {"path": self.path, "version": self.version, "sha256": self.sha256}


class LearnerCore:
    def __init__(self, task: str, pretrained_dir: str | Path, run_dir: str | Path, cfg: FarlConfig,
                 episodes_per_update: int = 4, min_steps_per_update: int = 64, obs_layout: dict | None = None,
                 device: str = "cpu"):
        self.task = task
        self.device = resolve_device(device)
        self.cfg = cfg
        self.pretrained_dir = Path(pretrained_dir)
        self.run_dir = Path(run_dir)
        self.episodes_per_update = episodes_per_update
        self.min_steps_per_update = min_steps_per_update
        self.obs_layout = obs_layout
        torch.set_num_threads(cfg.online.torch_threads)
        self.policy, _ = load_checkpoint(self.pretrained_dir / CHECKPOINTS["task_policy"], "policy")
        self.value, _ = load_checkpoint(self.pretrained_dir / CHECKPOINTS["task_value"], "value")
        self.policy.to(self.device)
        self.value.to(self.device)
        self.recovery, _ = load_checkpoint(self.pretrained_dir / CHECKPOINTS["recovery_policy"], "policy")
        self.world_model, _ = load_checkpoint(self.pretrained_dir / CHECKPOINTS["world_model"], "world_model")
        calibration = read_json(self.pretrained_dir / CALIBRATION)
        self.epsilon_safe = float(calibration["epsilon_safe"])
        # Every policy version keeps the shield's hysteresis the pretrained folder was made with.
        self.recovery_hold_ticks = load_manifest(self.pretrained_dir, check_graphs=False).recovery_hold_ticks \
            if (self.pretrained_dir / MANIFEST).is_file() else cfg.risk.recovery_hold_ticks
        self.optimizer = make_optimizer(self.policy, self.value, cfg.ppo)
        self.version = 0
        self.updates = 0
        self.episodes_seen = 0
        self.steps_seen = 0
        self.pending: list[dict] = []
        self.last_stats: dict = {}
        self.resumed = self._resume()

    # ---- persistence ---------------------------------------------------------
    def _resume(self) -> bool:
        path = self.run_dir / STATE_FILE
        if not path.is_file():
            return False
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)  # load_state_dict moves it
            self.policy.load_state_dict(state["policy"])
            self.value.load_state_dict(state["value"])
            self.optimizer.load_state_dict(state["optimizer"])
        except Exception as error:  # noqa: BLE001 - a corrupt state file must not be silently ignored
            raise FarlInputError(path, f"cannot resume from this learner state ({type(error).__name__}); "
                                       "move it away to start from the pretrained policy") from None
        self.version, self.updates = int(state["version"]), int(state["updates"])
        self.episodes_seen, self.steps_seen = int(state["episodes_seen"]), int(state["steps_seen"])
        return True

    def _save_state(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.run_dir / (STATE_FILE + ".tmp")
        torch.save({"policy": _on_cpu(self.policy.state_dict()), "value": _on_cpu(self.value.state_dict()),
                    "optimizer": _on_cpu(self.optimizer.state_dict()), "version": self.version, "updates": self.updates,
                    "episodes_seen": self.episodes_seen, "steps_seen": self.steps_seen}, tmp)
        tmp.replace(self.run_dir / STATE_FILE)

    # ---- data ------------------------------------------------------------------
    def add_episode(self, payload: dict) -> None:
        """One /farl/learner/transitions payload; wrong task or shapes raise FarlInputError."""
        if payload.get("task") != self.task:
            raise FarlInputError(None, f"transitions for task {payload.get('task')!r}, this learner trains {self.task!r}")
        obs = np.asarray(payload["obs"], dtype=np.float32)
        if obs.ndim != 2 or obs.shape[1] != self.policy.obs_dim or len(obs) == 0:
            raise FarlInputError(None, f"transitions have obs shape {obs.shape}, expected (n, {self.policy.obs_dim})")
        self.pending.append(payload)
        self.episodes_seen += 1
        self.steps_seen += len(obs)

    @property
    def pending_steps(self) -> int:
        return sum(len(p["obs"]) for p in self.pending)

    def ready(self) -> bool:
        return len(self.pending) >= self.episodes_per_update and self.pending_steps >= self.min_steps_per_update

    def _rollout(self, episodes: list[dict]) -> Rollout:
        """The PPO batch of these episodes: per step the action learned on, its reward and its weight.

        Operator steps (interventions) have weight 0. Recovery steps: the executed pi_rec action with
        weight `ppo.recovery_pg_weight`, or, with `ppo.trigger_penalty` > 0 and the proposals in the
        data, pi_task's refused proposal with the penalty subtracted from the reward (weight 1).
        """
        ppo = self.cfg.ppo
        rollout = Rollout()
        for ep in episodes:
            obs = np.asarray(ep["obs"], dtype=np.float32)
            n = len(obs)
            action = np.clip(np.asarray(ep["action"], dtype=np.float32), -1.0, 1.0)
            reward = np.asarray(ep["reward"], dtype=np.float64).copy()
            done = np.asarray(ep["done"], dtype=bool)
            operator = np.asarray(ep.get("intervention") or [False] * n, dtype=bool)
            recovery = np.asarray([s == "recovery" for s in ep.get("source") or ["task"] * n], dtype=bool) & ~operator
            weight = np.where(operator, 0.0, np.where(recovery, ppo.recovery_pg_weight, 1.0))
            proposed = ep.get("action_task")
            if ppo.trigger_penalty > 0.0 and proposed is not None and recovery.any():
                proposed = np.clip(np.asarray(proposed, dtype=np.float32), -1.0, 1.0)
                action[recovery] = proposed[recovery]
                reward[recovery] -= ppo.trigger_penalty
                weight[recovery] = 1.0
            with torch.no_grad():
                logprob = self.policy.distribution(torch.as_tensor(obs, device=self.device)).log_prob(
                    torch.as_tensor(action, device=self.device)).sum(-1).cpu().numpy()
            for t in range(n):
                rollout.add(obs[t], action[t], float(logprob[t]), float(reward[t]),
                            np.asarray(ep["next_obs"][t], dtype=np.float32), float(done[t]), float(t == n - 1),
                            pg_weight=float(weight[t]))
        return rollout

    # ---- update + export ---------------------------------------------------------
    def update(self) -> PolicyAnnouncement:
        """PPO on the pending episodes, export version N+1, checkpoint; returns what to announce."""
        episodes, self.pending = self.pending, []
        started = time.perf_counter()
        rollout = self._rollout(episodes)
        stats = ppo_update(self.policy, self.value, self.optimizer, rollout, self.cfg.ppo)
        self.version += 1
        self.updates += 1
        folder = self.run_dir / "policies" / f"v{self.version:04d}"
        policy = self.policy if self.device.type == "cpu" else copy.deepcopy(self.policy).cpu()
        export_model_folder(folder, self.task, policy, self.recovery, self.world_model, self.cfg.risk.horizon,
                            self.cfg.risk.gamma_risk, self.epsilon_safe, versions={"policy": self.version},
                            obs_layout=self.obs_layout, recovery_hold_ticks=self.recovery_hold_ticks)
        self._save_state()
        self.last_stats = {**stats, "update_seconds": time.perf_counter() - started, "steps": len(rollout),
                           "episodes": len(episodes), "version": self.version}
        sha = hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest()
        return PolicyAnnouncement(str(folder.resolve()), self.version, sha)


def _on_cpu(value):
    """A state dict (nested dicts/lists of tensors) with every tensor on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {k: _on_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(v) for v in value)
    return value

"""The FARL safety shield on the robot side: ONNX Runtime only, no torch, no ROS.

Each control tick: sample a_task ~ pi_task(obs) (Gaussian around the exported
mean with the exported log-std: the exploration online learning needs; the
standard-normal draws may be AR(1)-correlated over an episode, see
`task_spec.ExplorationNoise`),
compute C_H for that action with the exported world-model rollout, and execute
pi_rec(obs) instead when C_H > eps_safe. Three single-threaded ONNX Runtime
calls per tick.

A new task policy arrives as a complete model folder (its own manifest), as a
path on a shared filesystem or as the folder's bytes (`transfer`, rebuilt in
this shield's own cache): it is verified — checksum of the manifest as announced, the manifest's own file
checksums, same task, same shapes, same H — and only then swapped in, with its
eps_safe (unless overridden), under a lock, between two ticks. Anything wrong
leaves the running policy in place.
"""
from __future__ import annotations

import atexit
import hashlib
import math
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from farl_common.errors import FarlInputError
from farl_common.recovery_hold import RecoveryHold
from farl_control.shield.manifest import MANIFEST, Manifest, load_manifest
from farl_control.shield.transfer import unpack_folder
from farl_common.task_spec import ExplorationNoise


@dataclass(frozen=True)
class ShieldDecision:
    action: np.ndarray          # executed, in [-1, 1]^n
    action_task: np.ndarray     # what pi_task proposed
    log_prob: float             # log pi_task(action_task | obs), Gaussian before clipping
    source: str                 # "task" | "recovery"
    risk: float                 # C_H of action_task
    epsilon: float
    step_prob: np.ndarray       # predicted per-step failure probability, H+1
    hand_path: np.ndarray       # predicted TCP path, (H+1, 3)
    latency_ms: float
    policy_version: int


def gaussian_log_prob(x: np.ndarray, mean: np.ndarray, log_std: np.ndarray) -> float:
    var = np.exp(2.0 * log_std)
    return float(np.sum(-0.5 * (x - mean) ** 2 / var - log_std - 0.5 * math.log(2.0 * math.pi)))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Graphs:
    """The three ONNX Runtime sessions of one model folder."""

    def __init__(self, manifest: Manifest):
        self.manifest = manifest
        self.policy = manifest.session("policy")
        self.recovery = manifest.session("recovery")
        self.risk = manifest.session("risk")


class ShieldRuntime:
    def __init__(self, model_dir: str | Path, task: str, obs_dim: int, action_dim: int,
                 shield_enabled: bool = True, explore: bool = True, seed: int = 0,
                 epsilon_override: float | None = None, policy_root: str | Path | None = None,
                 noise_correlation: float = 0.0, policy_cache: str | Path | None = None,
                 recovery_hold_override: int | None = None):
        manifest = load_manifest(model_dir, expect_task=task, expect_obs_dim=obs_dim, expect_action_dim=action_dim)
        # Only folders under the learner's run folder may replace the policy: an announcement
        # from another stack on the same ROS domain is refused however valid its files are.
        self.policy_root = Path(policy_root).resolve() if policy_root else None
        self.policy_source = str(policy_root) if policy_root else None  # as given: the learner's run_dir
        self.policy_cache = Path(policy_cache) if policy_cache else None
        for name in ("policy", "recovery", "risk"):
            if name not in manifest.models:
                raise FarlInputError(Path(model_dir) / MANIFEST, f"no {name}.onnx in this model folder", key="models")
        self.task, self.obs_dim, self.action_dim = task, obs_dim, action_dim
        self.shield_enabled = shield_enabled
        self.explore = explore
        self.rng = np.random.default_rng(seed)
        self.noise = ExplorationNoise(action_dim, noise_correlation, self.rng)
        self.epsilon_override = epsilon_override
        self.epsilon = float(epsilon_override if epsilon_override is not None else manifest.epsilon_safe)
        # pi_rec keeps control this many ticks after a trigger: the folder's choice unless overridden.
        self.hold = RecoveryHold(recovery_hold_override if recovery_hold_override is not None
                                 else manifest.recovery_hold_ticks)
        self._graphs = _Graphs(manifest)
        self.policy_version = int(manifest.models["policy"].get("version", 0))
        self._lock = threading.Lock()

    @property
    def manifest(self) -> Manifest:
        return self._graphs.manifest

    def decide(self, obs: np.ndarray) -> ShieldDecision:
        started = time.perf_counter()
        with self._lock:
            graphs, version, epsilon = self._graphs, self.policy_version, self.epsilon
        x = np.asarray(obs, dtype=np.float32).reshape(1, self.obs_dim)
        mean, log_std = graphs.policy.run(["action_mean", "log_std"], {"obs": x})
        mean, log_std = mean[0].astype(np.float64), np.asarray(log_std, dtype=np.float64).reshape(-1)
        sample = mean + (np.exp(log_std) * self.noise.sample() if self.explore else 0.0)
        log_prob = gaussian_log_prob(sample, mean, log_std)
        action_task = np.clip(sample, -1.0, 1.0).astype(np.float32)
        risk, step_prob, hand_path = graphs.risk.run(
            ["risk", "step_prob", "hand_path"], {"obs": x, "task_action": action_task.reshape(1, -1)})
        risk_value = float(risk[0])
        if self.shield_enabled and self.hold.holds(risk_value > epsilon):
            action = np.clip(graphs.recovery.run(["action_mean"], {"obs": x})[0][0], -1.0, 1.0).astype(np.float32)
            source = "recovery"
        else:
            action, source = action_task, "task"
        return ShieldDecision(action, action_task, log_prob, source, risk_value, epsilon,
                              np.asarray(step_prob[0]), np.asarray(hand_path[0]),
                              (time.perf_counter() - started) * 1e3, version)

    def new_episode(self) -> None:
        """Restart the exploration noise process and the recovery hold (episodes are independent)."""
        self.noise.reset()
        self.hold.reset()

    def swap_transferred(self, files: Mapping[str, str], manifest_sha256: str, version: int,
                         source: str | None) -> Path:
        """A policy sent as bytes (transfer.pack_folder): rebuilt in this shield's cache, verified, swapped in.

        Accepted only from this stack's learner (`source` is its run_dir, compared with policy_root
        as given or as a path). Returns the cached folder; FarlInputError keeps the old policy.
        """
        if self.policy_source is not None and source != self.policy_source and (
                source is None or Path(source).resolve() != self.policy_root):
            raise FarlInputError(None, f"policy v{version} comes from learner {source!r}, not this stack's "
                                       f"{self.policy_source!r} (another stack on the same ROS domain?)")
        if self.policy_cache is None:  # a folder of our own, gone with the process
            self.policy_cache = Path(tempfile.mkdtemp(prefix="farl-shield-policies-"))
            atexit.register(shutil.rmtree, self.policy_cache, True)
        folder = unpack_folder(files, manifest_sha256, version, self.policy_cache)
        try:
            self.swap_policy(folder, manifest_sha256, version, check_root=False)
        except FarlInputError:
            shutil.rmtree(folder, ignore_errors=True)  # never keep a folder that failed verification
            raise
        return folder

    def swap_policy(self, folder: str | Path, manifest_sha256: str | None, version: int,
                    check_root: bool = True) -> None:
        """Verify a new model folder and make it the running one; raises FarlInputError, keeps the old."""
        folder = Path(folder)
        manifest_file = folder / MANIFEST
        if check_root and self.policy_root is not None and not folder.resolve().is_relative_to(self.policy_root):
            raise FarlInputError(folder, f"announced policy is outside this stack's learner folder {self.policy_root}"
                                         " (another stack on the same ROS domain?)")
        if not manifest_file.is_file():
            raise FarlInputError(manifest_file, "announced policy has no manifest.json")
        if manifest_sha256 is not None and file_sha256(manifest_file) != manifest_sha256:
            raise FarlInputError(manifest_file, "sha256 differs from the announcement (corrupt or replaced)")
        manifest = load_manifest(folder, expect_task=self.task, expect_obs_dim=self.obs_dim,
                                 expect_action_dim=self.action_dim)
        if manifest.horizon != self.manifest.horizon:
            raise FarlInputError(manifest_file, f"horizon {manifest.horizon} differs from the running "
                                 f"{self.manifest.horizon}", key="horizon")
        graphs = _Graphs(manifest)
        with self._lock:
            self._graphs = graphs
            self.policy_version = int(version)
            # The new folder's eps_safe vouches for its risk graph (which rolls out the new policy).
            if self.epsilon_override is None:
                self.epsilon = float(manifest.epsilon_safe)

"""pretrain(): everything FARL learns offline, for one task, into one folder.

In the order the paper describes it:

    1. task demos              -> Uni-O4 task policy + value net    (agents/uni_o4.py)
    2. pretrained task policy + injected noise -> failure data     (data.generate_failure_data)
    3. recovery demos (+ failure data for its critic) -> recovery policy (agents/recovery.py)
    4. task demos + failure data (minus held-out episodes) -> world model (agents/world_model_agent.py)
    5. held-out failure episodes -> eps_safe calibration             (risk.py)

Task and recovery demos come from `data_dir` (generated and cached there by
`data.build_offline_datasets` when missing). The failure data depends on the
pretrained policy, so it is written into `out_dir` (failure_data.npz) and
reused from there on a re-run. Writes task_policy.pt, task_value.pt,
recovery_policy.pt, world_model.pt, calibration.json and pretrain.json (the
config used, timings, every metric). `export()` then makes the ONNX folder.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..agents.recovery import pretrain_recovery_policy
from ..agents.transitions import Transitions, steps_to_failure
from ..agents.uni_o4 import pretrain_task_policy
from ..agents.world_model_agent import constraint_recall, train_world_model
from ..config import FarlConfig, load_farl_config
from ..models import GaussianPolicy
from ..risk import (calibrate_epsilon, evaluate_epsilon, risk_of_states, tradeoff_curve,
                    warning_lead_times)
from .checkpoint import save_checkpoint
from .io import CALIBRATION, CHECKPOINTS, FAILURE_DATA, RECOVERY_DEMOS, write_json


#: The config pretrain() reads: a pretrained folder serves another config only where these agree. (The risk
#: settings it calibrates eps_safe under are checked at fine-tuning, which recalibrates; see finetune.py.)
#: `data` is not a FarlConfig section: it is the task file's data section, compared from `data_generation_settings`.
PRETRAINING_SECTIONS = ("task", "seed", "networks", "bc", "offline", "recovery_bc", "recovery_offline", "world_model",
                        "data")
PRETRAINING_RISK_SETTINGS = ("holdout_fraction",)  # the world model's train/held-out split


def data_generation_settings(task: str) -> dict | None:
    """The task file's `data:` section as generation used it (None for a task without one, e.g. the toy).

    Recorded with the pretraining and compared by `farl bench`: demos and failure data come from the task
    file, not from FarlConfig, so editing it (more recovery demos, say) must not reuse a folder made before.
    """
    import dataclasses
    import json

    from ..data.config import load_data_config
    from ..envs.spec import TASK_NAMES

    if task not in TASK_NAMES:  # not a FailureBench task (the toy): no data section, nothing to compare
        return None
    # A broken data section is the user's error to see here, not a reason to skip the comparison.
    return json.loads(json.dumps(dataclasses.asdict(load_data_config(task)), default=str))


def pretraining_differences(made_with: dict, asked: dict) -> list[str]:
    """'section.key: X in the folder, Y asked' for each pretraining setting two config dicts disagree on."""
    import json

    made_with, asked = (json.loads(json.dumps(c, default=str)) for c in (made_with, asked))  # tuples -> lists
    out = []
    pairs = [(s, made_with.get(s), asked.get(s)) for s in PRETRAINING_SECTIONS]
    pairs += [(f"risk.{k}", made_with.get("risk", {}).get(k), asked.get("risk", {}).get(k))
              for k in PRETRAINING_RISK_SETTINGS]
    for name, old, new in pairs:
        if isinstance(old, dict) and isinstance(new, dict):
            out += [f"{name}.{k}: {old.get(k)!r} in the folder, {new.get(k)!r} asked"
                    for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        elif old != new:
            out.append(f"{name}: {old!r} in the folder, {new!r} asked")
    return out


def pretrain(task: str, data_dir: str | Path | None, out_dir: str | Path, cfg: FarlConfig | None = None,
             datasets: dict[str, Transitions] | None = None, progress: bool = True,
             failure_transitions: int | None = None,
             failure_source: Callable[[GaussianPolicy], Transitions] | None = None,
             evaluate_task_policy: Callable[[GaussianPolicy], dict] | None = None,
             recovery_source: Callable[[GaussianPolicy], Transitions] | None = None,
             split_failure: Callable[[Transitions], tuple[Transitions, Transitions]] | None = None) -> dict:
    """Train pi_task, pi_rec and the world model, calibrate eps_safe; returns the metrics written to pretrain.json.

    `datasets` ({"task", "recovery"[, "failure"]} -> Transitions) replaces
    FailureBench data (toy tasks, tests); without a "failure" entry the
    failure data is generated from the pretrained policy (`failure_transitions`
    samples; None = the task YAML's failure_data.n_transitions), or by
    `failure_source(pretrained_policy)` when given (the training twins, whose
    envs FailureBench's generator does not build). `evaluate_task_policy`
    (policy -> {"score", ...}) makes rollouts choose the task policy's ensemble
    member and gate its offline improvement (agents/uni_o4.py). Without a
    "recovery" entry, `recovery_source(pretrained_policy)` makes the recovery
    demos (after the failure data, so it can start them where the policy fails).
    `split_failure(failure data) -> (train, held-out)` replaces the random split by
    episodes (recorded demos: few episodes, and the held-out ones must contain failures).
    """
    cfg = cfg or load_farl_config(task)
    out_dir = Path(out_dir)
    torch.set_num_threads(cfg.online.torch_threads)
    torch.manual_seed(cfg.seed)
    data = dict(datasets) if datasets is not None else load_demos(task, data_dir, cfg.seed, progress)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    task_agent = pretrain_task_policy(data["task"], cfg, progress=progress, evaluate=evaluate_task_policy)
    timings["task_policy_s"] = time.perf_counter() - start

    if "failure" not in data:
        start = time.perf_counter()
        if failure_source is not None:
            data["failure"] = failure_source(task_agent.policy)
        else:
            data["failure"] = failure_data(task, task_agent.policy, out_dir, cfg.seed, progress, failure_transitions)
        timings["failure_data_s"] = time.perf_counter() - start

    if "recovery" not in data and recovery_source is None and datasets is None:
        recovery_source = lambda policy: recovery_demos(task, policy, out_dir, cfg.seed, progress)  # noqa: E731
    if "recovery" not in data:
        if recovery_source is None:
            raise ValueError("no recovery demos and no recovery_source to make them")
        start = time.perf_counter()
        data["recovery"] = recovery_source(task_agent.policy)
        timings["recovery_demos_s"] = time.perf_counter() - start

    start = time.perf_counter()
    recovery_agent = pretrain_recovery_policy(data["recovery"], data["failure"], cfg, progress=progress)
    timings["recovery_policy_s"] = time.perf_counter() - start

    start = time.perf_counter()
    if split_failure is not None:
        failure_train, failure_holdout = split_failure(data["failure"])
    else:
        failure_train, failure_holdout = data["failure"].split_episodes(cfg.risk.holdout_fraction, cfg.seed)
    world_model, wm_curve = train_world_model(Transitions.concat([data["task"], failure_train]), cfg.world_model,
                                              cfg.seed, progress=progress)
    timings["world_model_s"] = time.perf_counter() - start

    start = time.perf_counter()
    calibration = calibrate(world_model, task_agent.policy, failure_holdout, cfg)
    timings["calibration_s"] = time.perf_counter() - start

    meta = {"task": task, "seed": cfg.seed, "version": 1}
    save_checkpoint(out_dir / CHECKPOINTS["task_policy"], "policy", task_agent.policy, meta)
    save_checkpoint(out_dir / CHECKPOINTS["task_value"], "value", task_agent.value, meta)
    save_checkpoint(out_dir / CHECKPOINTS["recovery_policy"], "policy", recovery_agent.policy, meta)
    save_checkpoint(out_dir / CHECKPOINTS["world_model"], "world_model", world_model, meta)
    write_json(out_dir / CALIBRATION, {"task": task, **calibration})
    metrics = {
        "task": task,
        "config": cfg.to_dict(),
        "data_generation": data_generation_settings(task),
        "data": {kind: {"transitions": len(d), "episodes": int(len(np.unique(d.episode_id))),
                        "failure_steps": int(d.cost.sum())} for kind, d in data.items()},
        "timings": timings,
        "task_policy": task_agent.metrics,
        "recovery_policy": recovery_agent.metrics,
        "world_model": {"final": wm_curve[-1], "curve": wm_curve, "repr": repr(world_model),
                        "holdout_constraint": constraint_recall(world_model, failure_holdout)},
        "calibration": calibration,
    }
    write_json(out_dir / "pretrain.json", metrics)
    return metrics


def load_demos(task: str, data_dir: str | Path, seed: int, progress: bool) -> dict[str, Transitions]:
    """FailureBench task + recovery demos from `data_dir` (generated and cached there if missing).

    Where the task's recovery demos start partly from the pretrained policy's own
    failures (`near_failure.own_policy_fraction` > 0), they depend on that policy
    and are made after it (`recovery_demos`), so only the task demos are returned.
    """
    from ..data import build_offline_datasets
    from ..data.config import load_data_config

    policy_free = load_data_config(task).near_failure.own_policy_fraction == 0.0
    demos = build_offline_datasets(task, data_dir, seed=seed, progress=progress, recovery=policy_free)
    out = {"task": Transitions.from_arrays(demos.task)}
    if demos.recovery is not None:
        out["recovery"] = Transitions.from_arrays(demos.recovery)
    return out


def recovery_demos(task: str, policy: GaussianPolicy, out_dir: Path, seed: int, progress: bool) -> Transitions:
    """Recovery demos partly from the pretrained policy's own near-failure states (cached in out_dir)."""
    from ..data import load_dataset, save_dataset
    from ..data.recovery import generate_recovery_demos

    path = out_dir / RECOVERY_DEMOS
    if not path.is_file():
        @torch.no_grad()
        def policy_fn(obs: np.ndarray) -> np.ndarray:
            return policy(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()

        out_dir.mkdir(parents=True, exist_ok=True)
        save_dataset(path, generate_recovery_demos(task, seed=seed, progress=progress, start_policy=policy_fn))
    return Transitions.from_arrays(load_dataset(path, expect_task=task))


def failure_data(task: str, policy: GaussianPolicy, out_dir: Path, seed: int, progress: bool,
                 n_transitions: int | None = None) -> Transitions:
    """Failure data by noise injection into the pretrained policy's mean (cached in out_dir)."""
    from ..data import generate_failure_data, load_dataset, save_dataset

    path = out_dir / FAILURE_DATA
    if not path.is_file():
        @torch.no_grad()
        def policy_fn(obs: np.ndarray) -> np.ndarray:
            return policy(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()

        save_dataset(path, generate_failure_data(task, policy_fn, n_transitions=n_transitions, seed=seed,
                                                 policy_name="uni-o4 task policy", progress=progress))
    return Transitions.from_arrays(load_dataset(path, expect_task=task))


def calibrate(world_model, policy, holdout: Transitions, cfg: FarlConfig) -> dict:
    """eps_safe from held-out failure episodes (or the configured fixed value), with its miss/trigger rates."""
    risk = risk_of_states(world_model, policy, holdout.obs, cfg.risk.horizon, cfg.risk.gamma_risk,
                          first_actions=np.clip(holdout.action, -1.0, 1.0))
    to_failure = steps_to_failure(holdout)
    if cfg.risk.epsilon_safe > 0:
        result = evaluate_epsilon(risk, to_failure, cfg.risk.horizon, cfg.risk.epsilon_safe, cfg.risk.target_miss_rate)
        source = "config"
    else:
        result = calibrate_epsilon(risk, to_failure, cfg.risk.horizon, cfg.risk.target_miss_rate,
                                   cfg.risk.max_needless_trigger_rate)
        source = "calibrated"
    leads = warning_lead_times(risk, to_failure, holdout.episode_id, result.epsilon_safe)
    warned = leads[leads >= 0]
    return {**result.to_dict(), "source": source, "horizon": cfg.risk.horizon, "gamma_risk": cfg.risk.gamma_risk,
            "holdout_transitions": len(holdout), "risk_max_possible": float(sum(
                cfg.risk.gamma_risk**k for k in range(cfg.risk.horizon + 1))),
            "recall": 1.0 - result.miss_rate,
            "warning_lead_ticks": {"median": float(np.median(warned)) if len(warned) else float("nan"),
                                   "p25": float(np.percentile(warned, 25)) if len(warned) else float("nan"),
                                   "failure_episodes": int(len(leads)), "never_warned": int(np.sum(leads < 0))},
            "tradeoff": tradeoff_curve(risk, to_failure, cfg.risk.horizon)}

"""pretrain(): everything FARL learns offline, for one task, into one folder.

    task demos            -> Uni-O4 task policy + its value net   (agents/uni_o4.py)
    recovery demos (+ failure data for its critic) -> recovery policy (agents/recovery.py)
    task demos + failure data (minus held-out episodes) -> world model (agents/world_model_agent.py)
    held-out failure episodes -> eps_safe calibration                (risk.py)

Writes task_policy.pt, task_value.pt, recovery_policy.pt, world_model.pt,
calibration.json and pretrain.json (the config used, timings, every metric)
to `out_dir`. `export()` then turns the folder into ONNX for the robot.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..agents.recovery import pretrain_recovery_policy
from ..agents.transitions import Transitions, steps_to_failure
from ..agents.uni_o4 import pretrain_task_policy
from ..agents.world_model_agent import constraint_recall, train_world_model
from ..config import FarlConfig, load_farl_config
from ..risk import calibrate_epsilon, evaluate_epsilon, risk_of_states
from .checkpoint import save_checkpoint
from .io import CALIBRATION, CHECKPOINTS, load_datasets, write_json


def pretrain(task: str, data_dir: str | Path, out_dir: str | Path, cfg: FarlConfig | None = None,
             datasets: dict[str, Transitions] | None = None, progress: bool = True) -> dict:
    """Train pi_task, pi_rec and the world model, calibrate eps_safe; returns the metrics written to pretrain.json.

    `datasets` ({"task", "recovery", "failure"} -> Transitions) skips reading `data_dir`.
    """
    cfg = cfg or load_farl_config(task)
    out_dir = Path(out_dir)
    torch.set_num_threads(cfg.online.torch_threads)
    torch.manual_seed(cfg.seed)
    data = datasets or load_datasets(data_dir)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    task_agent = pretrain_task_policy(data["task"], cfg, progress=progress)
    timings["task_policy_s"] = time.perf_counter() - start

    start = time.perf_counter()
    recovery_agent = pretrain_recovery_policy(data["recovery"], data["failure"], cfg, progress=progress)
    timings["recovery_policy_s"] = time.perf_counter() - start

    start = time.perf_counter()
    failure_train, failure_holdout = data["failure"].split_episodes(cfg.risk.holdout_fraction, cfg.seed)
    wm_data = Transitions.concat([data["task"], failure_train])
    world_model, wm_curve = train_world_model(wm_data, cfg.world_model, cfg.seed, progress=progress)
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


def calibrate(world_model, policy, holdout: Transitions, cfg: FarlConfig) -> dict:
    """eps_safe from held-out failure episodes (or the configured fixed value), with its miss/trigger rates."""
    risk = risk_of_states(world_model, policy, holdout.obs, cfg.risk.horizon, cfg.risk.gamma_risk,
                          first_actions=np.clip(holdout.action, -1.0, 1.0))
    to_failure = steps_to_failure(holdout)
    if cfg.risk.epsilon_safe > 0:
        result = evaluate_epsilon(risk, to_failure, cfg.risk.horizon, cfg.risk.epsilon_safe, cfg.risk.target_miss_rate)
        source = "config"
    else:
        result = calibrate_epsilon(risk, to_failure, cfg.risk.horizon, cfg.risk.target_miss_rate)
        source = "calibrated"
    return {**result.to_dict(), "source": source, "horizon": cfg.risk.horizon, "gamma_risk": cfg.risk.gamma_risk,
            "holdout_transitions": len(holdout), "risk_max_possible": float(sum(
                cfg.risk.gamma_risk**k for k in range(cfg.risk.horizon + 1)))}

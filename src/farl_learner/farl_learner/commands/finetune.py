"""`farl finetune <task> --model DIR --method METHOD --steps N --seed S --out DIR`: online fine-tuning.

FARL runs the shield (world-model risk C_H > eps_safe -> recovery action); Uni-O4
the same PPO loop without it; the safe-RL baselines and FARL's ablations are
listed in training/methods.py. Writes the fine-tuned task policy/value,
finetune.json (config, counters, returns before/after, steps/s; from the
library) and command.json (this command's arguments and budget).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from farl_common.errors import FarlInputError

from ..training.methods import METHODS
from .common import add_budget_arguments, add_task_argument, check_task, load_config, make_task_env, \
    parse_overrides, require_dir

MODEL_FILES = ("task_policy.pt", "task_value.pt", "recovery_policy.pt", "world_model.pt", "calibration.json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_argument(parser)
    parser.add_argument("--model", required=True, help="pretrained model folder (from `farl pretrain`)")
    parser.add_argument("--method", choices=METHODS, default="farl",
                        help="farl = PPO with the shield; uni-o4 = PPO without; ppo-lag, p3o, cpo = safe-RL "
                             "baselines; farl-qrisk, farl-mppi = FARL's ablations (default farl)")
    parser.add_argument("--steps", type=int, default=None,
                        help="online environment steps (default: the config's online.total_steps, 10^6)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the online run (default 0)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--count-needless", action="store_true",
                        help="simulation only: replay pi_task from a snapshot at every trigger to count needless ones")
    add_budget_arguments(parser)


def run(args: argparse.Namespace) -> int:
    task = check_task(args.task)
    cfg, budget = load_config(task, args.profile, parse_overrides(args.overrides))
    if args.steps is not None and args.steps < 1:
        raise FarlInputError(None, f"must be >= 1, got {args.steps}", key="--steps")
    metrics = finetune_run(task, args.model, args.out, args.method, args.steps, args.seed, cfg, budget,
                           count_needless=args.count_needless)
    c, b, a = metrics["counters"], metrics["before"], metrics["after"]
    print(f"{args.out}: {args.method} {metrics['steps']} steps in {metrics['online_seconds']:.0f} s "
          f"({metrics['steps_per_second']:.0f} steps/s); {c['episodes']} episodes, {c['failure_episodes']} failed; "
          f"shield triggers {c['shield_triggers']}, misses {c['shield_misses']}; "
          f"return {b['mean_return']:.1f} -> {a['mean_return']:.1f}"
          + (f" (normalized {b['normalized_return']:.1f} -> {a['normalized_return']:.1f})"
             if b.get("normalized_return") is not None else ""))
    return 0


def finetune_run(task: str, model_dir: str | Path, out_dir: str | Path, method: str, steps: int | None, seed: int,
                 cfg, budget: dict, progress: bool = True, count_needless: bool = False) -> dict:
    """finetune() on the task's env + command.json; returns finetune.json's metrics."""
    from ..training.finetune import finetune
    from ..training.io import write_json

    require_dir(model_dir, "pretrained model", MODEL_FILES)
    start = time.perf_counter()
    metrics = finetune(task, model_dir, out_dir, method=method, steps=steps, seed=seed, cfg=cfg,
                       env=[make_task_env(task, seed + 1000 * i) for i in range(cfg.online.num_envs)], progress=progress, count_needless=count_needless)
    write_json(Path(out_dir) / "command.json", {"command": "finetune", "task": task, "model": str(model_dir),
                                                "method": method, "steps": metrics["steps"], "seed": seed,
                                                "budget": budget, "wall_seconds": time.perf_counter() - start})
    metrics["run_dir"] = str(out_dir)  # where its policy is (the grid re-evaluates it from there)
    return metrics

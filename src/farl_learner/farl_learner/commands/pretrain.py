"""`farl pretrain <task> --data DIR --out DIR`: everything FARL learns offline, into one model folder.

Runs farl_learner.training.pretrain (Uni-O4 task policy, failure data, recovery
policy, world model, eps_safe calibration) with config/farl/<task>.yaml plus the
chosen budget profile and --set overrides. Writes the checkpoints,
calibration.json, pretrain.json (config + metrics, from the library) and
command.json (this command's arguments, the budget and the wall time).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from farl_common.errors import FarlInputError

from .common import TOY, add_budget_arguments, add_task_argument, check_task, load_config, parse_overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_argument(parser)
    parser.add_argument("--data", default="data/failurebench",
                        help="demo folder (made by `farl demos`; missing demos are generated there) "
                             "[default: data/failurebench; ignored for the toy task]")
    parser.add_argument("--out", required=True, help="model folder to write")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: the task config's)")
    add_budget_arguments(parser)


def run(args: argparse.Namespace) -> int:
    task = check_task(args.task)
    extra = parse_overrides(args.overrides)
    if args.seed is not None:
        extra["seed"] = args.seed
    cfg, budget = load_config(task, args.profile, extra)
    metrics, seconds = pretrain_task(task, args.data, args.out, cfg, budget, progress=True)
    cal = metrics["calibration"]
    print(f"{args.out}: pretrained {task} in {seconds:.0f} s; eps_safe {cal['epsilon_safe']:.4g} "
          f"(held-out miss rate {cal.get('miss_rate', float('nan')):.3f}, "
          f"needless-trigger rate {cal.get('needless_trigger_rate', float('nan')):.3f})")
    return 0


def pretrain_task(task: str, data_dir: str | Path | None, out_dir: str | Path, cfg, budget: dict,
                  progress: bool = True) -> tuple[dict, float]:
    """Run pretrain() and write command.json next to its outputs; returns (metrics, wall seconds)."""
    from ..training.io import write_json
    from ..training.pretrain import pretrain

    datasets = None
    if task == TOY:
        from ..training.toy import toy_datasets

        datasets = toy_datasets(seed=cfg.seed, failure_episodes=60)
    start = time.perf_counter()
    try:
        metrics = pretrain(task, data_dir, out_dir, cfg, datasets=datasets, progress=progress,
                           failure_transitions=budget.get("failure_transitions"))
    except ValueError as error:
        if "failure-preceding" not in str(error):
            raise
        raise FarlInputError(Path(out_dir) / "failure_data.npz", f"{error}: generate more failure data "
                             "(a larger profile, or --set failure_transitions=N) and remove this file") from None
    seconds = time.perf_counter() - start
    write_json(Path(out_dir) / "command.json", {"command": "pretrain", "task": task, "data": str(data_dir),
                                                "budget": budget, "wall_seconds": seconds, "config": cfg.to_dict()})
    return metrics, seconds

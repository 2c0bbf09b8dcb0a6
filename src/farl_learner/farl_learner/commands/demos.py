"""`farl demos <task> --out DIR`: generate (or reuse cached) task and recovery demos of a FailureBench task.

Writes <out>/<task>_task_<hash>.npz, <task>_recovery_<hash>.npz (see
farl_learner.data.build) and <out>/demos_<task>.json (the command's settings,
sizes and timings). Failure data is not made here: it needs the pretrained
task policy, so `farl pretrain` generates it into the model folder.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from farl_common.errors import FarlInputError

from .common import TOY, add_task_argument, check_task


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_argument(parser)
    parser.add_argument("--out", required=True, help="output folder (the cache; pass it to `farl pretrain --data`)")
    parser.add_argument("--seed", type=int, default=0, help="generation seed (default 0)")
    parser.add_argument("--task-demos", type=int, default=None, help="number of task demos (default: task YAML, 20)")
    parser.add_argument("--recovery-demos", type=int, default=None,
                        help="number of recovery demos (default: task YAML, 120)")


def run(args: argparse.Namespace) -> int:
    task = check_task(args.task)
    if task == TOY:
        raise FarlInputError(None, "the toy task has no demo files: `farl pretrain toy` makes its data in memory",
                             key="task")
    for name in ("task_demos", "recovery_demos"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise FarlInputError(None, f"must be >= 1, got {getattr(args, name)}", key=f"--{name.replace('_', '-')}")
    from ..data import build_offline_datasets
    from ..training.io import write_json

    start = time.perf_counter()
    built = build_offline_datasets(task, args.out, seed=args.seed, n_task_demos=args.task_demos,
                                   n_recovery_demos=args.recovery_demos, progress=True)
    report = {"task": task, "seed": args.seed, "seconds": time.perf_counter() - start, "datasets": {}}
    for kind, ds, path in (("task", built.task, built.task_path), ("recovery", built.recovery, built.recovery_path)):
        report["datasets"][kind] = {"path": str(path), "transitions": len(ds), "episodes": ds.n_episodes,
                                    "meta": ds.meta}
        print(f"{path}: {len(ds)} transitions, {ds.n_episodes} episodes")
    write_json(Path(args.out) / f"demos_{task}.json", report)
    return 0

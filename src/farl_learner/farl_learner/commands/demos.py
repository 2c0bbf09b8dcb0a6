"""`farl demos list|inspect|convert DIR`: recorded demos; `farl demos <task> --out DIR`: FailureBench demos.

Recorded demos (one MCAP file per episode, `farl record`):
    farl demos list DIR       one row per episode: kind, duration, outcome, failures, labels, status
    farl demos inspect DIR    also the metadata and every topic's message count and rate
    farl demos convert DIR [--task T] [--out FILE]
                              the training dataset at the control rate (farl_learner.data.recorded),
                              default DIR/dataset.npz; an unreadable episode is one line, the rest convert

FailureBench (`farl demos <task> --out DIR`): generate (or reuse cached) task and recovery demos.

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

from .common import TOY, check_task


ACTIONS = ("list", "inspect", "convert")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", metavar="list|inspect|convert|TASK",
                        help="list / inspect / convert recorded demos in DIR, or a FailureBench task to generate "
                             "demos of (bounded_push, bounded_soccer, fragile_push_wall, obstructed_push)")
    parser.add_argument("folder", nargs="?", metavar="DIR", help="recorded demos folder (list, inspect, convert)")
    parser.add_argument("--task", dest="recorded_task", default=None,
                        help="convert: task config of the demos (default: the episodes' own task)")
    parser.add_argument("--out", default=None, help="FailureBench: output folder (the cache; pass it to "
                                                    "`farl pretrain --data`); convert: dataset file "
                                                    "[DIR/dataset.npz]")
    parser.add_argument("--seed", type=int, default=0, help="generation seed (default 0)")
    parser.add_argument("--task-demos", type=int, default=None, help="number of task demos (default: task YAML, 20)")
    parser.add_argument("--recovery-demos", type=int, default=None,
                        help="number of recovery demos (default: task YAML, 120)")


def run(args: argparse.Namespace) -> int:
    if args.task in ACTIONS:
        from . import recorded_demos

        if not args.folder:
            raise FarlInputError(None, f"farl demos {args.task} needs the demos folder", key="DIR")
        return recorded_demos.run(args.task, args.folder, args.recorded_task, args.out)
    if args.out is None:
        raise FarlInputError(None, "farl demos <task> needs --out DIR (the demo cache)", key="--out")
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

"""`farl evaluate <task> --model DIR`: deterministic (mean-action) episodes of a task policy, no shield.

Prints mean return, normalized return (FailureBench: 0 = random, 100 = scripted
expert), failure and success rates; writes <out or model>/evaluate.json.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from farl_common.errors import FarlInputError

from .common import add_task_argument, check_task, make_task_env, require_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_argument(parser)
    parser.add_argument("--model", required=True, help="model folder with task_policy.pt (pretrained or fine-tuned)")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes (default 10)")
    parser.add_argument("--seed", type=int, default=10_000, help="seed of the first episode (default 10000)")
    parser.add_argument("--out", default=None, help="folder for evaluate.json (default: the model folder)")


def run(args: argparse.Namespace) -> int:
    task = check_task(args.task)
    if args.episodes < 1:
        raise FarlInputError(None, f"must be >= 1, got {args.episodes}", key="--episodes")
    model = require_dir(args.model, "model", ("task_policy.pt",))
    import torch

    from ..training.checkpoint import load_checkpoint
    from ..training.finetune import _normalizer
    from ..training.io import write_json
    from ..training.online import evaluate

    torch.set_num_threads(1)
    policy, meta = load_checkpoint(model / "task_policy.pt", "policy")
    if meta.get("task") not in (None, task):
        raise FarlInputError(model / "task_policy.pt", f"was trained for task {meta.get('task')!r}, not {task!r}",
                             key="task")
    start = time.perf_counter()
    result = evaluate(make_task_env(task, args.seed), policy, args.episodes, seed=args.seed)
    result["normalized_return"] = _normalizer(task)(result["mean_return"])
    report = {"command": "evaluate", "task": task, "model": str(model), "episodes": args.episodes, "seed": args.seed,
              "checkpoint_meta": meta, "seconds": time.perf_counter() - start, **result}
    write_json(Path(args.out or model) / "evaluate.json", report)
    norm = result["normalized_return"]
    print(f"{task}: return {result['mean_return']:.1f} +- {result['std_return']:.1f}"
          + (f", normalized {norm:.1f}" if norm is not None else "")
          + f", failure rate {result['failure_rate']:.2f}, success rate {result['success_rate']:.2f} "
            f"over {args.episodes} episodes")
    return 0

"""`farl pretrain-demos <task> --demos DIR --out MODELS`: the shield's model folder from recorded demos only.

The lab's path (record -> inspect -> pretrain -> launch), with no simulator and
no twin: the episodes an operator recorded with `farl record` are converted at
the control rate (farl_learner.data.recorded: observations by the task spec,
the shield's code path) and split by what they show:

    task demos     task episodes without a failure      -> Uni-O4 task policy (BC ensemble + offline step)
    recovery demos recovery episodes                     -> recovery policy (with the failure data's critic)
    failure data   failure and recovery episodes, and task episodes that failed
                                                         -> world model (with the task demos), eps_safe
                                                            calibrated on held-out failure episodes

The same `training.pretrain.pretrain` as every other pretraining command, then
the same export and shield check as `pretrain-twin`. Before any training the
demos are counted: too few task demos, recovery demos or failure episodes is
one error that says what to record more of, with the command to do it.
Profiles and --set overrides as in the other training commands.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from farl_common.errors import FarlInputError

from .common import add_budget_arguments, invoked_command, parse_overrides, profile_overrides

DEFAULT_CONFIG = "farl/franka/{task}.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="task of the demos (config/tasks/<task>.yaml)")
    parser.add_argument("--demos", required=True, help="folder of recorded episodes (`farl record --out`)")
    parser.add_argument("--out", required=True, help="model folder to write (launch with models_dir:=<it>)")
    parser.add_argument("--config", default=None,
                        help="FARL hyper-parameters, relative to config/ or absolute [farl/franka/<task>.yaml]")
    parser.add_argument("--min-task-episodes", type=int, default=5, help="fewer task demos is an error [5]")
    parser.add_argument("--min-recovery-episodes", type=int, default=5, help="fewer recovery demos is an error [5]")
    parser.add_argument("--min-failure-episodes", type=int, default=5,
                        help="fewer episodes that reach a failure is an error (the world model learns failures "
                             "from them, eps_safe is calibrated on held-out ones) [5]")
    parser.add_argument("--latency-samples", type=int, default=200, help="shield decide() calls timed [200]")
    add_budget_arguments(parser)


def split_by_kind(dataset):
    """(task demos, recovery demos, failure data) as Transitions, per the module docstring."""
    import numpy as np

    from ..agents.transitions import Transitions
    from ..data.format import KIND_FAILURE, KIND_RECOVERY, KIND_TASK

    failed = np.zeros(len(dataset), bool)
    for episode in np.unique(dataset.episode_id):
        mask = dataset.episode_id == episode
        failed[mask] = dataset.cost[mask].any()
    everything = Transitions.from_arrays(dataset)
    task = everything.select((dataset.kind == KIND_TASK) & ~failed)
    recovery = everything.select(dataset.kind == KIND_RECOVERY)
    failure = everything.select((dataset.kind == KIND_FAILURE) | (dataset.kind == KIND_RECOVERY)
                                | ((dataset.kind == KIND_TASK) & failed))
    return task, recovery, failure


def stratified_split(data, fraction: float, seed: int):
    """(train, held-out) by whole episodes, holding out `fraction` of the episodes that reach a failure
    (at least one) and of the others: with a handful of recorded episodes a random split may hold out
    no failure at all, and eps_safe could not be calibrated."""
    import numpy as np

    rng = np.random.default_rng(seed)
    episodes = np.unique(data.episode_id)
    failed = np.array([data.cost[data.episode_id == e].any() for e in episodes])
    held = []
    for group, at_least_one in ((episodes[failed], True), (episodes[~failed], False)):
        if len(group) < 2:  # a lone episode stays in training
            continue
        n = int(round(fraction * len(group)))
        n = min(max(n, 1) if at_least_one else n, len(group) - 1)
        held.extend(rng.choice(group, size=n, replace=False).tolist())
    mask = np.isin(data.episode_id, held)
    return data.select(~mask), data.select(mask)


def episodes_in(data) -> int:
    import numpy as np

    return int(len(np.unique(data.episode_id)))


def failure_episodes_in(data) -> int:
    import numpy as np

    return int(sum(data.cost[data.episode_id == e].any() for e in np.unique(data.episode_id)))


def shortages(task: str, demos: str, counts: dict[str, int], minimum: dict[str, int]) -> list[str]:
    """What to record more of, one phrase each (empty: enough of everything)."""
    advice = {
        "task": ("task demos (failure-free)", "task"),
        "recovery": ("recovery demos", "recovery"),
        "failure": ("episodes that reach a failure", "failure"),
    }
    out = []
    for key, (what, kind) in advice.items():
        missing = minimum[key] - counts[key]
        if missing > 0:
            out.append(f"{counts[key]} {what}, need {minimum[key]}: record {missing} more with "
                       f"`farl record {task} --kind {kind} --device keyboard --episodes {missing} --out {demos}`")
    return out


def run(args: argparse.Namespace) -> int:
    import torch

    from farl_common.paths import resolve_config_path
    from farl_common.task_config import load_task_config

    from ..config import load_farl_config
    from ..data.recorded import convert_folder
    from ..training.io import write_json
    from ..training.pretrain import pretrain
    from .pretrain_twin import export_folder, folder_bytes, shield_check

    started = time.perf_counter()
    demos = Path(args.demos)
    if not demos.is_dir():
        raise FarlInputError(demos, "demos folder not found")
    task_config = load_task_config(args.task)
    config_path = resolve_config_path(args.config or DEFAULT_CONFIG.format(task=args.task))
    overrides, _ = profile_overrides(args.profile)
    overrides.update(parse_overrides(args.overrides))
    cfg = load_farl_config(Path(config_path), overrides)
    if cfg.task != args.task:
        raise FarlInputError(config_path, f"says task {cfg.task!r}, expected {args.task!r}", key="task")

    report = convert_folder(demos, task_config)
    for line in report.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    if report.dataset is None:
        raise FarlInputError(demos, f"no usable episode of {args.task} ({len(report.skipped)} skipped); "
                                    f"record some with `farl record {args.task} --out {demos}`")
    task_data, recovery_data, failure_data = split_by_kind(report.dataset)
    counts = {"task": episodes_in(task_data), "recovery": episodes_in(recovery_data),
              "failure": failure_episodes_in(failure_data)}
    minimum = {"task": args.min_task_episodes, "recovery": args.min_recovery_episodes,
               "failure": max(args.min_failure_episodes, 2)}  # calibration holds at least one out
    short = shortages(args.task, str(demos), counts, minimum)
    if short:
        raise FarlInputError(demos, "not enough demos to pretrain from: " + "; ".join(short))
    print(f"demos: {counts['task']} task, {counts['recovery']} recovery, {counts['failure']} episodes with a failure "
          f"({len(report.dataset)} steps at {task_config.control.rate_hz:g} Hz)", file=sys.stderr)

    torch.set_num_threads(cfg.online.torch_threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        metrics = pretrain(args.task, None, out, cfg, progress=False,
                           datasets={"task": task_data, "recovery": recovery_data, "failure": failure_data},
                           split_failure=lambda d: stratified_split(d, cfg.risk.holdout_fraction, cfg.seed))
    except ValueError as error:
        if "failure-preceding" not in str(error):
            raise
        raise FarlInputError(demos, f"{error}: the held-out failure episodes show no failure; record more "
                                    "failure demos") from None
    t0 = time.perf_counter()
    manifest, parity = export_folder(args.task, out, cfg, made_by="farl pretrain-demos")
    export_seconds = time.perf_counter() - t0
    shield = shield_check(args.task, out, {"task": task_data, "failure": failure_data}, args.latency_samples,
                          cfg.seed)
    wall = time.perf_counter() - started
    metrics["demos"] = {"folder": str(demos), "episodes": report.converted, "skipped": report.skipped,
                        "counts": counts, "by_kind": report.counts()}
    metrics["timings"] = {**metrics["timings"], "export_s": export_seconds, "total_s": wall}
    metrics["export"] = {"parity_max_abs_diff": parity, "files": sorted(manifest.models)}
    metrics["shield_check"] = shield
    metrics["folder_bytes"] = folder_bytes(out)
    write_json(out / "pretrain.json", metrics)
    write_json(out / "command.json", {
        "command": invoked_command("pretrain-demos", f"farl pretrain-demos {args.task} --demos {args.demos} "
                                                     f"--out {args.out}"),
        "task": args.task, "config": str(config_path), "demos": str(demos),
        "budget": {"profile": args.profile, "overrides": overrides}, "wall_seconds": wall})
    cal = metrics["calibration"]
    print(f"{out}: pretrained {args.task} from {len(report.converted)} recorded episodes in {wall:.0f} s; "
          f"eps_safe {cal['epsilon_safe']:.4g} (held-out recall {cal['recall']:.2f}, needless triggers "
          f"{cal['needless_trigger_rate']:.3f}); shield decide() p50 {shield['latency_ms']['p50']:.2f} ms; "
          f"launch with models_dir:={out.resolve()}")
    return 0

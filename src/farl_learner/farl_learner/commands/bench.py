"""`farl bench failurebench`: Uni-O4 vs FARL on FailureBench, as in the paper's simulation table.

Per task: one pretraining (seed --pretrain-seed) gives the checkpoints EVERY
method starts from; then, for every seed, FARL (shield on) and Uni-O4 (shield
off) - and with `--methods` the safe-RL baselines and FARL's ablations
(training/methods.py) - fine-tune online for the same `--steps` environment
steps. The runs form a (task, method, seed) grid run by farl_learner.grid:
on a local Ray instance with `--jobs` CPUs (or a cluster, `--ray-address`),
each run keyed by its config hash, never recomputed when its folder already
holds it, retried when its worker dies. Order of submission: all
pretrainings, then seed by seed over all tasks, so an interrupted run still
covers every task. Results are rewritten after every run:

    <out>/failurebench.json   per task and method, lists over seeds (see RESULT_KEYS),
                              plus pretraining times, the budget and the exact command
    <out>/failurebench.md     ours vs the paper (failure episodes, % change, normalized return)
    <out>/failurebench.png    failure episodes and normalized return per task
    <out>/failurebench.notes.md  (hand-written, optional) analysis included in the .md

With --name NAME the files are <out>/NAME.* instead (a protocol run beside the
committed one), and per task NAME_curves_<task>.png: cumulative failure
episodes and the moving-average episode return against online steps, both
methods, every seed. Per task, `ci95` holds the paired bootstrap (same
checkpoint, same seed) of FARL - Uni-O4 in failure episodes and in normalized
return after fine-tuning (farl_learner/stats.py). --task-set TASK:KEY=VALUE
overrides a config key for one task only (e.g. its starting-policy budget).

Run folders (checkpoints, per-run JSON) go to --work (default runs/bench/failurebench):
<work>/<task>/pretrained and <work>/<task>/<method>/seed<S>-<config hash>. A
finished run with the same key is reused (also from a seed<S> folder named
before keys existed), so a re-run with the same arguments resumes where an
interrupted one stopped. With methods beyond Uni-O4 and FARL the results also
get the baselines section (commands/bench_baselines.py): each method's
failure episodes, return and cost with 95 % intervals, paired against FARL,
beside the paper's claims.
"""
from __future__ import annotations

import argparse
import json
import shlex
import time
from datetime import datetime, timezone
from pathlib import Path

from farl_common.errors import FarlInputError

from ..grid import GridRun, RunKey, config_hash, finished, run_grid
from ..stats import learning_curve
from ..training.methods import METHODS as ALL_METHODS
from .common import PROFILES, add_budget_arguments, load_config, parse_overrides, task_names

METHODS = ("uni-o4", "farl")  # the protocol's pair; every comparison includes both
RESULT_KEYS = ("failure_episodes", "failure_steps", "episodes", "normalized_return_before",
               "normalized_return_after", "shield_trigger_rate", "shield_misses", "recovery_failures",
               "wall_seconds", "steps_per_second", "success_rate_after", "eval_failure_rate_after")

#: The paper's simulation numbers (PAPER.md): failure episodes in 10^6 steps, normalized return before -> after.
PAPER = {
    "bounded_push": {"uni-o4": (1518.3, 20.30, 98.54), "farl": (951.0, 26.01, 100.19)},
    "bounded_soccer": {"uni-o4": (1744.7, 12.70, 107.27), "farl": (878.7, 15.01, 122.98)},
    "fragile_push_wall": {"uni-o4": (4320.3, -15.85, 74.26), "farl": (3393.0, 0.06, 78.51)},
    "obstructed_push": {"uni-o4": (5601.3, 12.76, 121.28), "farl": (1914.7, 10.84, 122.36)},
}
PAPER_STEPS = 1_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", choices=("failurebench",), help="benchmark suite (failurebench)")
    parser.add_argument("--tasks", nargs="+", default=None, help="tasks (default: all four)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="online seeds (default 0 1 2)")
    parser.add_argument("--steps", type=int, default=None,
                        help="online steps per run, the same for every task and method (default: config, 10^6)")
    parser.add_argument("--pretrain-seed", type=int, default=0, help="seed of the shared pretraining (default 0)")
    parser.add_argument("--data", default="data/failurebench", help="demo cache folder (default data/failurebench)")
    parser.add_argument("--work", default="runs/bench/failurebench", help="folder of the per-run outputs")
    parser.add_argument("--out", default="benchmarks/results", help="folder of failurebench.{json,md,png}")
    parser.add_argument("--methods", nargs="+", choices=ALL_METHODS, default=list(METHODS),
                        help="methods to run (default: uni-o4 farl; must include both). The paper's full "
                             "comparison: uni-o4 farl ppo-lag p3o cpo farl-qrisk farl-mppi")
    parser.add_argument("--jobs", type=int, default=1,
                        help="CPUs of the local Ray instance the runs go to (default 1: one after the other in "
                             "this process, no Ray; 2 uses both cores of the lab machine)")
    parser.add_argument("--ray-address", default=None,
                        help="run the grid on an existing Ray cluster (e.g. ray://head:10001, or auto) instead "
                             "of a local instance; every node needs this package installed")
    parser.add_argument("--retries", type=int, default=2,
                        help="times a run whose worker process died is resubmitted (default 2)")
    parser.add_argument("--eval-episodes", type=int, default=None,
                        help="after the grid, re-evaluate every finished run's policy before and after fine-tuning "
                             "with this many deterministic episodes (paired episode seeds per online seed, cached "
                             "in the run folder) and report those returns; default: each run's own evaluation "
                             "(online.eval_episodes), whose standard error is about 10 normalized points")
    parser.add_argument("--name", default="failurebench", help="base name of the result files (default failurebench)")
    parser.add_argument("--task-set", dest="task_overrides", action="append", default=[], metavar="TASK:KEY=VALUE",
                        help="override one config key for one task (repeatable), e.g. bounded_push:bc.steps=200")
    parser.add_argument("--no-plot", action="store_true", help="skip failurebench.png")
    parser.add_argument("--render-only", action="store_true",
                        help="only rewrite failurebench.md/.png from the existing failurebench.json (e.g. after "
                             "editing failurebench.notes.md)")
    add_budget_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.render_only:
        from ..training.io import read_json

        results = read_json(Path(args.out) / f"{args.name}.json")
        if "ci95" in results:  # recomputed, so a re-render follows the current statistics code
            results["ci95"] = {task: paired_ci(methods) for task, methods in results["tasks"].items()}
        write_outputs(results, Path(args.out), plot=not args.no_plot, name=args.name)
        print(f"{Path(args.out) / (args.name + '.md')}: re-rendered")
        return 0
    tasks = args.tasks or list(task_names())
    known = task_names()
    for task in tasks:
        if task not in known:
            raise FarlInputError(None, f"unknown task {task!r}; known: {', '.join(known)}", key="--tasks")
    if args.steps is not None and args.steps < 1:
        raise FarlInputError(None, f"must be >= 1, got {args.steps}", key="--steps")
    if not args.seeds:
        raise FarlInputError(None, "need at least one seed", key="--seeds")
    if args.eval_episodes is not None and args.eval_episodes < 1:
        raise FarlInputError(None, f"must be >= 1, got {args.eval_episodes}", key="--eval-episodes")
    methods = list(dict.fromkeys(args.methods))
    if not set(METHODS) <= set(methods):
        raise FarlInputError(None, f"{' '.join(methods)}: every comparison includes uni-o4 and farl (the "
                                   "others are reported against them); add them", key="--methods")
    extra = parse_overrides(args.overrides)
    per_task = parse_task_overrides(args.task_overrides, tasks)
    configs = {task: load_config(task, args.profile, {**extra, **per_task.get(task, {}), "seed": args.pretrain_seed})
               for task in tasks}
    steps = args.steps if args.steps is not None else configs[tasks[0]][0].online.total_steps
    work, out = Path(args.work), Path(args.out)
    results = {
        "suite": "failurebench",
        "command": command_line(args, tasks),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "complete": False,
        "steps": steps,
        "seeds": list(args.seeds),
        "budget": {"online_steps": steps, "paper_online_steps": PAPER_STEPS, "seeds": args.seeds,
                   "pretrain_seed": args.pretrain_seed, "profile": args.profile,
                   "profile_overrides": PROFILES[args.profile], "extra_overrides": extra,
                   "task_overrides": per_task, "num_envs": {t: configs[t][0].online.num_envs for t in tasks},
                   "eval_episodes": {t: configs[t][0].online.eval_episodes for t in tasks},
                   "reevaluation_episodes": args.eval_episodes,
                   "torch_threads": 1, "hardware": "CPU only (2 shared cores)"},
        "pretraining": {},
        "tasks": {},
        "ci95": {},
        "vs_farl": {},
        "curves": {},
        "methods": methods,
        "failed_runs": [],
    }
    for task in tasks:
        results["tasks"][task] = {m: {"online_steps": steps, "seeds": [], **{k: [] for k in RESULT_KEYS}}
                                  for m in methods}
        results["curves"][task] = {m: [] for m in methods}

    total_runs = len(tasks) * (1 + len(args.seeds) * len(methods))
    done = 0
    grid = dict(jobs=args.jobs, ray_address=args.ray_address, retries=args.retries)
    pre_runs = [GridRun(task, _pretrain_job, (task, args.data, str(work / task / "pretrained"), *configs[task]),
                        cached=finished_pretraining(work / task / "pretrained", *configs[task])) for task in tasks]
    for result in run_grid(pre_runs, **grid):
        task = result.key
        if result.metrics is None:
            raise FarlInputError(None, f"pretraining {task} failed: {result.error}")
        metrics, seconds = result.metrics
        done += 1
        model = work / task / "pretrained"
        print(f"[{done}/{total_runs}] pretrained {task} ({args.profile}) in {seconds:.0f} s", flush=True)
        results["pretraining"][task] = {"wall_seconds": seconds, "timings": metrics["timings"],
                                        "epsilon_safe": metrics["calibration"]["epsilon_safe"],
                                        "calibration": {k: metrics["calibration"].get(k) for k in
                                                        ("miss_rate", "needless_trigger_rate", "limited_by")},
                                        "data": metrics["data"], "model_dir": str(model)}
        write_outputs(results, out, plot=not args.no_plot, name=args.name)

    # Seed by seed over all tasks (an interrupted run still covers every task), all methods of a seed together.
    runs = [finetune_run_of(work, task, method, seed, steps, configs[task], progress=args.jobs <= 1)
            for seed in args.seeds for task in tasks for method in methods]
    finished_runs: list[tuple[RunKey, dict]] = []
    for result in run_grid(runs, **grid):
        done += 1
        key: RunKey = result.key
        task, method, seed = key.task, key.method, key.seed
        if result.metrics is None:
            results["failed_runs"].append({"run": str(key), "error": result.error})
            print(f"[{done}/{total_runs}] FAILED {key}: {result.error}", flush=True)
            write_outputs(results, out, plot=not args.no_plot, name=args.name)
            continue
        metrics = result.metrics
        finished_runs.append((key, metrics))
        add_run(results["tasks"][task][method], metrics, seed)
        c = metrics["counters"]
        results["curves"][task][method].append({"seed": seed, **learning_curve(
            c.get("episode_end_steps", []), c["episode_failed"], c["episode_returns"], c["steps"])})
        results["ci95"][task] = paired_ci(results["tasks"][task])
        results["vs_farl"][task] = {m: paired_vs_farl(results["tasks"][task], m) for m in methods if m != "farl"}
        print(f"[{done}/{total_runs}] finetuned {task} {method} seed {seed}"
              f"{' (finished earlier)' if result.cached else ''}: {c['failure_episodes']} failure episodes / "
              f"{c['episodes']}, triggers {c['shield_triggers']}, normalized return "
              f"{_fmt(metrics['before']['normalized_return'])} -> {_fmt(metrics['after']['normalized_return'])}, "
              f"{metrics['steps_per_second']:.0f} steps/s", flush=True)
        write_outputs(results, out, plot=not args.no_plot, name=args.name)
    if args.eval_episodes:
        reevaluate(results, finished_runs, work, args.eval_episodes, grid, methods)
        write_outputs(results, out, plot=not args.no_plot, name=args.name)
    results["complete"] = not results["failed_runs"]
    results["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_outputs(results, out, plot=not args.no_plot, name=args.name)
    if results["failed_runs"]:
        print(f"{out / (args.name + '.md')}: {len(results['failed_runs'])} runs failed (listed in the results "
              "file); run the same command again to retry only those", flush=True)
        return 1
    print(f"{out / (args.name + '.md')}: done")
    return 0


def finished_pretraining(model_dir: Path, cfg=None, budget: dict | None = None) -> tuple[dict, float] | None:
    """A finished pretraining in `model_dir` (its metrics and wall time), or None.

    Given the config this command asks for, a folder pretrained with other settings is an error, not a
    cache hit: every run of the grid would start from checkpoints the command line does not describe.
    """
    from ..training.pretrain import data_generation_settings, pretraining_differences

    if not ((model_dir / "command.json").is_file() and (model_dir / "calibration.json").is_file()):
        return None
    metrics = json.loads((model_dir / "pretrain.json").read_text())
    command = json.loads((model_dir / "command.json").read_text())
    if cfg is not None:
        made_data = metrics.get("data_generation")  # absent in folders made before it was recorded
        asked_data = data_generation_settings(metrics.get("task", "")) if made_data is not None else None
        differences = pretraining_differences({**metrics.get("config", {}), "data": made_data},
                                              {**cfg.to_dict(), "data": asked_data})
        made = command.get("budget", {}).get("failure_transitions")
        if budget is not None and made != budget.get("failure_transitions"):
            differences.append(f"failure_transitions: {made!r} in the folder, {budget.get('failure_transitions')!r} "
                               "asked")
        if differences:
            more = f" (and {len(differences) - 3} more)" if len(differences) > 3 else ""
            raise FarlInputError(model_dir, f"was pretrained with other settings than this command asks for: "
                                            f"{'; '.join(differences[:3])}{more}. Use another --work folder, or "
                                            "delete this one to pretrain again")
    return metrics, command["wall_seconds"]


def finetune_run_of(work: Path, task: str, method: str, seed: int, steps: int, config: tuple,
                    progress: bool) -> GridRun:
    """The grid run of one (task, method, seed): its key, folder, and its result if that folder has it."""
    cfg, budget = config
    key = RunKey(task, method, seed, config_hash(cfg.to_dict(), method, steps))
    folder = key.folder(work)
    return GridRun(key, _finetune_job,
                   (task, str(work / task / "pretrained"), str(folder), method, steps, seed, cfg, budget, progress),
                   cached=finished(folder, key, legacy=work / task / method / f"seed{seed}"))


def reevaluate(results: dict, finished_runs: list[tuple[RunKey, dict]], work: Path, episodes: int, grid: dict,
               methods: list[str]) -> None:
    """Replace every finished run's before/after returns by an `episodes`-episode evaluation (run on the grid,
    cached per run folder), and recompute the per-task entries and paired intervals from them."""
    folders = {key: Path(metrics.get("run_dir") or key.folder(work)) for key, metrics in finished_runs}
    first_of_seed: dict[tuple[str, int], RunKey] = {}
    for key, _ in finished_runs:  # the pretrained policy is the same for every method of a seed: evaluate it once
        first_of_seed.setdefault((key.task, key.seed), key)
    runs = []
    for key, _ in finished_runs:
        before = first_of_seed[(key.task, key.seed)] == key
        runs.append(GridRun(key, _evaluate_job, (key.task, str(work / key.task / "pretrained"), str(folders[key]),
                                                 key.seed, episodes, before),
                            cached=_cached_evaluation(folders[key], episodes, before)))
    evaluations, total = {}, len(runs)
    for n, result in enumerate(run_grid(runs, **grid), 1):
        if result.metrics is None:
            results["failed_runs"].append({"run": f"{result.key} evaluation", "error": result.error})
            print(f"[eval {n}/{total}] FAILED {result.key}: {result.error}", flush=True)
            continue
        evaluations[result.key] = result.metrics
        print(f"[eval {n}/{total}] {result.key}{' (evaluated earlier)' if result.cached else ''}: normalized return "
              f"after {_fmt(result.metrics['after']['normalized_return'])} over {episodes} episodes", flush=True)
    for task in results["tasks"]:
        results["tasks"][task] = {m: {**{k: [] for k in RESULT_KEYS}, "online_steps": results["steps"], "seeds": []}
                                  for m in methods}
    for key, metrics in finished_runs:
        first = evaluations.get(first_of_seed[(key.task, key.seed)], {})
        if key in evaluations and "before" in first:
            metrics = {**metrics, "before": first["before"], "after": evaluations[key]["after"]}
        add_run(results["tasks"][key.task][key.method], metrics, key.seed)
    for task, entries in results["tasks"].items():
        results["ci95"][task] = paired_ci(entries)
        results["vs_farl"][task] = {m: paired_vs_farl(entries, m) for m in methods if m != "farl"}


def _cached_evaluation(folder: Path, episodes: int, before: bool) -> dict | None:
    path = folder / f"evaluation-{episodes}.json"
    try:
        cached = json.loads(path.read_text()) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None
    return cached if cached is not None and ("before" in cached or not before) else None


def _evaluate_job(task: str, model: str, run_dir: str, seed: int, episodes: int, before: bool) -> dict:
    """One finished run's policy after (and, once per seed, before) fine-tuning over `episodes` episodes."""
    import torch

    from ..training.finetune import evaluate_run

    torch.set_num_threads(1)
    return evaluate_run(task, model, run_dir, seed, episodes, before=before)


def _pretrain_job(task: str, data: str, model: str, cfg, budget: dict) -> tuple[dict, float]:
    """Pretrain one task into `model`."""
    from .pretrain import pretrain_task

    return pretrain_task(task, data, Path(model), cfg, budget, progress=False)


def _finetune_job(task: str, model: str, run_dir: str, method: str, steps: int, seed: int, cfg, budget: dict,
                  progress: bool) -> dict:
    """One online run into `run_dir`."""
    from .finetune import finetune_run

    return finetune_run(task, model, run_dir, method, steps, seed, cfg, budget, progress=progress)


def parse_task_overrides(pairs: list[str], tasks: list[str]) -> dict[str, dict]:
    """--task-set TASK:KEY=VALUE pairs -> {task: {key: value}}; an unknown task is one error line."""
    out: dict[str, dict] = {}
    for pair in pairs:
        task, sep, rest = pair.partition(":")
        if not sep or task not in tasks:
            raise FarlInputError(None, f"{pair!r}: need TASK:KEY=VALUE with TASK one of {', '.join(tasks)}",
                                 key="--task-set")
        out.setdefault(task, {}).update(parse_overrides([rest]))
    return out


def paired_ci(methods: dict) -> dict:
    """Paired bootstrap (same seed, same checkpoint) of FARL - Uni-O4 per seed: failure episodes, return after."""
    from ..stats import paired_bootstrap

    u, f = methods["uni-o4"], methods["farl"]
    common = [s for s in f["seeds"] if s in u["seeds"]]
    pick = lambda e, k: [e[k][e["seeds"].index(s)] for s in common]  # noqa: E731
    return {"seeds": common,
            "failure_episodes": paired_bootstrap(pick(f, "failure_episodes"), pick(u, "failure_episodes")),
            "normalized_return_after": paired_bootstrap(
                [v if v is not None else float("nan") for v in pick(f, "normalized_return_after")],
                [v if v is not None else float("nan") for v in pick(u, "normalized_return_after")])}


def paired_vs_farl(methods: dict, method: str) -> dict:
    """Paired bootstrap of `method` - FARL per seed (same checkpoint, same seed): failure episodes, return after."""
    from ..stats import paired_bootstrap

    f, m = methods["farl"], methods[method]
    common = [s for s in m["seeds"] if s in f["seeds"]]
    pick = lambda e, k: [e[k][e["seeds"].index(s)] for s in common]  # noqa: E731
    nan = lambda vs: [v if v is not None else float("nan") for v in vs]  # noqa: E731
    return {"seeds": common,
            "failure_episodes": paired_bootstrap(pick(m, "failure_episodes"), pick(f, "failure_episodes")),
            "normalized_return_after": paired_bootstrap(nan(pick(m, "normalized_return_after")),
                                                        nan(pick(f, "normalized_return_after")))}


def command_line(args: argparse.Namespace, tasks: list[str]) -> str:
    """The exact `farl bench` command that reproduces this run (every option spelled out)."""
    parts = ["farl", "bench", args.suite, "--tasks", *tasks, "--seeds", *map(str, args.seeds)]
    if args.steps is not None:
        parts += ["--steps", str(args.steps)]
    parts += ["--pretrain-seed", str(args.pretrain_seed), "--profile", args.profile, "--data", args.data,
              "--work", args.work, "--out", args.out]
    for pair in args.overrides:
        parts += ["--set", pair]
    for pair in getattr(args, "task_overrides", []):
        parts += ["--task-set", pair]
    if list(getattr(args, "methods", METHODS)) != list(METHODS):
        parts += ["--methods", *args.methods]
    if getattr(args, "jobs", 1) != 1:
        parts += ["--jobs", str(args.jobs)]
    if getattr(args, "eval_episodes", None):
        parts += ["--eval-episodes", str(args.eval_episodes)]
    if getattr(args, "name", "failurebench") != "failurebench":
        parts += ["--name", args.name]
    return " ".join(shlex.quote(p) for p in parts)


def add_run(entry: dict, metrics: dict, seed: int) -> None:
    c = metrics["counters"]
    entry["seeds"].append(seed)
    entry["failure_episodes"].append(c["failure_episodes"])
    entry["failure_steps"].append(c["failure_steps"])
    entry["episodes"].append(c["episodes"])
    entry["normalized_return_before"].append(metrics["before"]["normalized_return"])
    entry["normalized_return_after"].append(metrics["after"]["normalized_return"])
    entry.setdefault("success_rate_after", []).append(metrics["after"].get("success_rate"))
    entry.setdefault("eval_failure_rate_after", []).append(metrics["after"].get("failure_rate"))
    entry["shield_trigger_rate"].append(c["shield_triggers"] / max(c["steps"], 1))
    entry["shield_misses"].append(c["shield_misses"])
    entry["recovery_failures"].append(c["recovery_failures"])
    entry["wall_seconds"].append(metrics["online_seconds"])
    entry["steps_per_second"].append(metrics["steps_per_second"])


# ------------------------------------------------------------------ outputs


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _std(values: list) -> float | None:
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return None
    m = sum(values) / len(values)
    return (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _sci(value: float | None) -> str:
    """Thresholds on a failure probability span decades (eps_safe is ~1e-5 here): fixed-point shows 0.000."""
    return "n/a" if value is None else f"{value:.2e}"


def _pm(values: list, digits: int = 1) -> str:
    m, s = _mean(values), _std(values)
    return "n/a" if m is None else (f"{m:.{digits}f}" + (f" ± {s:.{digits}f}" if s is not None else ""))


def _change(new: float | None, base: float | None) -> str:
    if new is None or base is None or base == 0:
        return "n/a"
    return f"{100.0 * (new - base) / base:+.1f} %"


def write_outputs(results: dict, out: Path, plot: bool = True, name: str = "failurebench") -> None:
    from ..training.io import write_json
    from .bench_baselines import has_baselines, render_baselines, render_baselines_plot

    write_json(out / f"{name}.json", results)
    notes = out / f"{name}.notes.md"
    text = render_markdown(results, notes.read_text() if notes.is_file() else None)
    if has_baselines(results):
        text += "\n" + render_baselines(results)
    (out / f"{name}.md").write_text(text)
    if plot:
        try:
            if has_baselines(results):
                render_baselines_plot(results, out / f"{name}_baselines.png")
            render_plot(results, out / f"{name}.png")
            for task in results.get("curves", {}):
                if any(results["curves"][task].values()):
                    render_curves(results, task, out / f"{name}_curves_{task}.png")
        except ImportError:  # matplotlib is optional for the numbers
            pass


def _evaluation_sentence(budget: dict) -> str:
    """Which evaluation the returns come from (the runs' own, or the grid's re-evaluation with more episodes)."""
    n = budget.get("reevaluation_episodes")
    if n:
        return (f"{n} deterministic evaluation episodes per run and policy without the shield (re-evaluated after "
                "the grid, the same episode seeds for every method of an online seed).")
    own = sorted(set((budget.get("eval_episodes") or {}).values()))
    return (f"each run's own {'/'.join(map(str, own)) or 'n/a'} deterministic evaluation episodes without the "
            "shield.")


def render_markdown(results: dict, notes: str | None = None) -> str:
    budget = results["budget"]
    steps = budget["online_steps"]
    lines = [
        "# FailureBench: Uni-O4 vs FARL (ours vs the paper)",
        "",
        ("**Partial results**: the run had not finished all tasks and seeds when this file was written; "
         "every number below says over how many seeds it is." if not results["complete"] else
         "Complete run."),
        "",
        f"Command: `{results['command']}`",
        "",
        f"Budget: **{steps:,} online steps per run** (the paper: {budget['paper_online_steps']:,}), "
        f"online seeds {budget['seeds']}, one shared pretraining per task (seed {budget['pretrain_seed']}) that "
        f"both methods start from; pretraining profile `{budget['profile']}` "
        f"(overrides: `{json.dumps(budget['profile_overrides'])}`"
        + (f", extra `{json.dumps(budget['extra_overrides'])}`" if budget["extra_overrides"] else "")
        + f"); {budget['hardware']}, torch threads {budget['torch_threads']}.",
        "",
        "## Failure episodes during online fine-tuning",
        "",
        f"Ours: mean ± std over seeds, in {steps:,} steps (n = seeds finished). Paper: in {PAPER_STEPS:,} steps.",
        "",
        "| task | n | Uni-O4 (ours) | FARL (ours) | change (ours) | Uni-O4 (paper) | FARL (paper) | change (paper) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    changes_ours, changes_paper = [], []
    for task, methods in results["tasks"].items():
        u, f = methods["uni-o4"], methods["farl"]
        n = min(len(u["seeds"]), len(f["seeds"]))
        mu, mf = _mean(u["failure_episodes"][:n]), _mean(f["failure_episodes"][:n])
        pu, pf = PAPER[task]["uni-o4"][0], PAPER[task]["farl"][0]
        if n and mu:
            changes_ours.append(100.0 * (mf - mu) / mu)
        changes_paper.append(100.0 * (pf - pu) / pu)
        lines.append(f"| {task} | {n} | {_pm(u['failure_episodes'][:n])} | {_pm(f['failure_episodes'][:n])} | "
                     f"{_change(mf, mu) if n else 'n/a'} | {pu} | {pf} | {_change(pf, pu)} |")
    pct = lambda v: "n/a" if v is None else f"{v:+.1f} %"  # noqa: E731
    lines.append(f"| mean | | | | {pct(_mean(changes_ours))} | | | {pct(_mean(changes_paper))} |")
    if results.get("ci95"):
        lines += [
            "",
            "## Paired difference FARL − Uni-O4 (same checkpoint, same seed; 95 % bootstrap CI over seeds)",
            "",
            "| task | seeds | failure episodes: mean diff [CI95] | change % [CI95] | CI excludes 0 "
            "| normalized return after: mean diff [CI95] |",
            "|---|---|---|---|---|---|",
        ]
        ci_fmt = lambda c, d=1: "n/a" if not c else f"[{c[0]:.{d}f}, {c[1]:.{d}f}]"  # noqa: E731
        for task, ci in results["ci95"].items():
            fe, ra = ci["failure_episodes"], ci["normalized_return_after"]
            lines.append(f"| {task} | {fe['n']} | {_fmt(fe['mean_diff'])} {ci_fmt(fe['ci95'])} | "
                         f"{_fmt(fe['change_pct'])} {ci_fmt(fe['change_pct_ci95'])} | "
                         f"{ {True: 'yes', False: 'no'}.get(fe['excludes_zero'], 'n/a (1 seed)')} | {_fmt(ra['mean_diff'])} {ci_fmt(ra['ci95'])} |")
    lines += [
        "",
        "## Normalized return, before → after fine-tuning",
        "",
        "0 = uniform random policy, 100 = scripted expert (config/failurebench/normalization.json); "
        + _evaluation_sentence(budget) + " Before is the same checkpoint for both methods; its evaluation "
        "seed differs per online seed.",
        "",
        "| task | Uni-O4 (ours) | FARL (ours) | Uni-O4 (paper) | FARL (paper) |",
        "|---|---|---|---|---|",
    ]
    for task, methods in results["tasks"].items():
        cells = []
        for m in METHODS:
            e = methods[m]
            cells.append(f"{_pm(e['normalized_return_before'])} → {_pm(e['normalized_return_after'])}"
                         if e["seeds"] else "n/a")
        p = PAPER[task]
        lines.append(f"| {task} | {cells[0]} | {cells[1]} | {p['uni-o4'][1]:.2f} → {p['uni-o4'][2]:.2f} | "
                     f"{p['farl'][1]:.2f} → {p['farl'][2]:.2f} |")
    if any(any(v is not None for v in methods[m].get("success_rate_after", []))
           for methods in results["tasks"].values() for m in METHODS):
        pct = lambda vs: _pm([None if v is None else 100.0 * v for v in vs], 0)  # noqa: E731
        lines += ["", "Where the return after comes from: success and failure rate (%) of the same evaluation "
                      "episodes (mean ± std over seeds).", "",
                  "| task | Uni-O4 success | FARL success | Uni-O4 failure | FARL failure |", "|---|---|---|---|---|"]
        for task, methods in results["tasks"].items():
            u, f = methods["uni-o4"], methods["farl"]
            lines.append(f"| {task} | {pct(u.get('success_rate_after', []))} | {pct(f.get('success_rate_after', []))} "
                         f"| {pct(u.get('eval_failure_rate_after', []))} | "
                         f"{pct(f.get('eval_failure_rate_after', []))} |")
    lines += [
        "",
        "## The shield and the cost of a run",
        "",
        "| task | pretraining (s) | eps_safe | FARL trigger rate | FARL shield misses | FARL recovery failures "
        "| Uni-O4 steps/s | FARL steps/s | Uni-O4 wall (s) | FARL wall (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task, methods in results["tasks"].items():
        pre = results["pretraining"].get(task, {})
        u, f = methods["uni-o4"], methods["farl"]
        lines.append(f"| {task} | {_fmt(pre.get('wall_seconds'), 0)} | {_sci(pre.get('epsilon_safe'))} | "
                     f"{_pm(f['shield_trigger_rate'], 3)} | {_pm(f['shield_misses'])} | "
                     f"{_pm(f['recovery_failures'])} | {_pm(u['steps_per_second'], 0)} | "
                     f"{_pm(f['steps_per_second'], 0)} | {_pm(u['wall_seconds'], 0)} | {_pm(f['wall_seconds'], 0)} |")
    lines += ["", "Shield misses: failures with a task action the shield let through in the H+1 steps before; "
                  "recovery failures: failures with only recovery actions in that window.", ""]
    lines += ["## Where we fall short and why", "", (notes or SHORTFALL_PLACEHOLDER).strip(), ""]
    return "\n".join(lines)


#: Hand-written analysis of a run, kept beside the results and included in failurebench.md on every render.
NOTES = "failurebench.notes.md"
SHORTFALL_PLACEHOLDER = f"_No analysis yet: write it into {NOTES} beside this file and re-render._"


def save_figure(fig, results: dict, path: Path, dpi: int = 100) -> None:
    """Every results figure ends the same way: marked when the run is partial, then written and closed."""
    import matplotlib.pyplot as plt

    if not results["complete"]:
        fig.suptitle("PARTIAL RESULTS (run not finished)", color="red")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def render_plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results["tasks"])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.38
    colors = {"uni-o4": "#999999", "farl": "#1f77b4"}
    for k, m in enumerate(METHODS):
        xs = [i + (k - 0.5) * width for i in range(len(tasks))]
        fe = [_mean(results["tasks"][t][m]["failure_episodes"]) or 0.0 for t in tasks]
        fs = [_std(results["tasks"][t][m]["failure_episodes"]) or 0.0 for t in tasks]
        axes[0].bar(xs, fe, width, yerr=fs, color=colors[m], label=m, capsize=3)
        before = [_mean(results["tasks"][t][m]["normalized_return_before"]) or 0.0 for t in tasks]
        after = [_mean(results["tasks"][t][m]["normalized_return_after"]) or 0.0 for t in tasks]
        axes[1].bar(xs, after, width, color=colors[m], label=f"{m} after")
        axes[1].scatter(xs, before, color="black", marker="_", s=200, zorder=3,
                        label="before (same checkpoint)" if k == 0 else None)
    steps = results["budget"]["online_steps"]
    axes[0].set_title(f"failure episodes in {steps:,} online steps (mean ± std over seeds)")
    axes[1].set_title("normalized return after fine-tuning (bars), before (ticks)")
    for ax in axes:
        ax.set_xticks(range(len(tasks)))
        ax.set_xticklabels([t.replace("_", "\n") for t in tasks])
        ax.legend(fontsize=8)
    save_figure(fig, results, path, dpi=110)


def render_curves(results: dict, task: str, path: Path) -> None:
    """Cumulative failure episodes and moving-average episode return against online steps, every seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    curves = results["curves"][task]
    # Every method the grid ran (the baselines and ablations too), Uni-O4 and FARL first in fixed colours.
    methods = [*METHODS, *(m for m in curves if m not in METHODS)]
    palette = iter(["#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"])
    colors = {"uni-o4": "#777777", "farl": "#1f77b4"}
    colors.update({m: next(palette) for m in methods if m not in colors})
    for m in methods:
        for k, c in enumerate(curves.get(m, [])):
            label = f"{m} ({len(curves[m])} seeds)" if k == 0 else None
            axes[0].plot(c["steps"], c["cumulative_failures"], color=colors[m], alpha=0.8, label=label)
            xs = [x for x, y in zip(c["steps"], c["return_moving_avg"]) if y is not None]
            ys = [y for y in c["return_moving_avg"] if y is not None]
            axes[1].plot(xs, ys, color=colors[m], alpha=0.8, label=label)
    axes[0].set_title(f"{task}: cumulative failure episodes")
    axes[1].set_title(f"{task}: episode return (moving average of {results['curves'][task]['farl'][0]['window'] if results['curves'][task]['farl'] else 50})")
    for ax in axes:
        ax.set_xlabel("online environment steps")
        ax.legend(fontsize=8)
    save_figure(fig, results, path, dpi=100)

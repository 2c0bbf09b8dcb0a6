"""Several stack benchmark runs of one set-up, pooled: more episodes, one table.

A 50 + 50-episode stack run (`stack.py`) is a coarse instrument: on Bounded Soccer
the shield-off arm, same policy file and seed, failed in 5 to 17 of 50 episodes
across runs (the stack runs in real time, so no two runs see the same states).
Running it again with other seeds and pooling the episodes is what narrows the
interval; this script does the pooling and refuses runs that do not belong
together (another task, another model folder or arm arguments, a seed twice).
`--allow-other-models shield_off` pools an arm across model folders anyway, for
when what that arm runs did not change (a retrained world model leaves the
shield-off arm's task policy as it was); the table says so.

The interval of each pooled total resamples episodes within each run (a
stratified bootstrap) and adds the runs up, so every run keeps its weight.

    python benchmarks/stack_pool.py stack_bounded_soccer_hold3 stack_bounded_soccer_hold3_seed1 \\
        --name stack_bounded_soccer_hold3_pooled

Arguments are result names in benchmarks/results/ (or paths to the JSON files).
Writes benchmarks/results/<name>.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from common import RESULTS, command_line  # first: private ROS domain, loopback only

import numpy as np  # noqa: E402

from stack import BOOTSTRAP, PAPER, TITLES, per_episode_values  # noqa: E402

ARMS = ("shield_off", "farl")
TOTALS = ("failure_pairs", "failure_episodes", "successes", "interventions")


class PoolError(ValueError):
    """Runs that cannot be pooled; the message names the run and the reason."""


def load_run(ref: str) -> tuple[str, dict]:
    path = Path(ref) if ref.endswith(".json") else RESULTS / f"{ref}.json"
    if not path.is_file():
        raise PoolError(f"{path}: no such stack result (run benchmarks/stack.py first)")
    data = json.loads(path.read_text())
    if not all(arm in data and data[arm].get("per_episode") for arm in ARMS):
        raise PoolError(f"{path}: not a stack benchmark result with per-episode data in both arms")
    return path.stem, data


def _setup(command: str) -> list[str]:
    """An arm's command with what may differ between runs of one set-up removed (seed, out dir, address)."""
    return re.sub(r"(seed:=\S+|robot_ip:=\S+|--out \S+)", "", command).split()


def check_poolable(runs: list[tuple[str, dict]], allow_other_models: tuple[str, ...] = ()) -> None:
    if len(runs) < 2:
        raise PoolError("give at least two runs to pool")
    first_name, first = runs[0]
    seeds = {}
    for name, data in runs:
        if data["task"] != first["task"]:
            raise PoolError(f"{name}: task {data['task']}, {first_name} is {first['task']}")
        for arm in ARMS:
            if _setup(data[arm]["command"]) != _setup(first[arm]["command"]):
                raise PoolError(f"{name}: the {arm} arm ran `{data[arm]['command']}`, {first_name}'s ran "
                                f"`{first[arm]['command']}`: not the same set-up")
            ours, theirs = data[arm].get("models_manifest_sha256"), first[arm].get("models_manifest_sha256")
            if ours and theirs and ours != theirs and arm not in allow_other_models:
                raise PoolError(f"{name}: the {arm} arm ran another model folder (manifest sha256 {ours[:12]}) "
                                f"than {first_name}'s ({theirs[:12]})")
        if data["seed"] in seeds:
            raise PoolError(f"{name}: seed {data['seed']} is also {seeds[data['seed']]}'s; pool different seeds")
        seeds[data["seed"]] = name


def pooled_totals(runs: list[dict], arm: str, rng: np.random.Generator) -> dict:
    """Totals over all runs' episodes and their stratified-bootstrap 95 % intervals."""
    per_run = [per_episode_values(r[arm]) for r in runs]
    out = {"episodes": int(sum(len(v["returns"]) for v in per_run))}
    draws = {key: np.zeros(BOOTSTRAP) for key in (*TOTALS, "returns")}
    for v in per_run:
        n = len(v["returns"])
        idx = rng.integers(0, n, size=(BOOTSTRAP, n))
        for key in draws:
            draws[key] += v[key][idx].sum(1)
    for key in TOTALS:
        out[key] = int(sum(v[key].sum() for v in per_run))
        out[f"{key}_ci95"] = _interval(draws[key])
    out["mean_return"] = float(np.concatenate([v["returns"] for v in per_run]).mean())
    out["mean_return_ci95"] = _interval(draws["returns"] / out["episodes"])
    out["_draws"] = draws
    return out


def _interval(values: np.ndarray, digits: int = 2) -> list[float]:
    return [round(float(np.percentile(values, 2.5)), digits), round(float(np.percentile(values, 97.5)), digits)]


def pool(runs: list[tuple[str, dict]], seed: int = 0, allow_other_models: tuple[str, ...] = ()) -> dict:
    check_poolable(runs, allow_other_models)
    rng = np.random.default_rng(seed)
    data = [d for _, d in runs]
    arms = {arm: pooled_totals(data, arm, rng) for arm in ARMS}
    change, change_ci = {}, {}
    for key in ("failure_pairs", "failure_episodes"):
        base, farl = arms["shield_off"][key], arms["farl"][key]
        change[key] = None if not base else round(100.0 * (farl - base) / base, 1)
        b, f = arms["shield_off"]["_draws"][key], arms["farl"]["_draws"][key]
        ok = b > 0
        change_ci[key] = _interval(100.0 * (f[ok] - b[ok]) / b[ok], 1) if ok.any() else None
    for arm in arms.values():
        del arm["_draws"]
    kinds = {arm: {k: sum(d[arm].get("failure_kinds", {}).get(k, 0) for d in data)
                   for k in ("miss", "recovery_failure")} for arm in ARMS}
    return {
        "task": data[0]["task"], "runs": [name for name, _ in runs], "seeds": [d["seed"] for d in data],
        "commands": {arm: data[0][arm]["command"] for arm in ARMS},
        "per_run": [{"run": name, "seed": d["seed"], **{arm: {k: d[arm][k] for k in
                     ("failure_pairs", "failure_episodes", "successes", "mean_return", "shield_triggers")}
                     for arm in ARMS}, "machine_load_start": d.get("load_avg_start")} for name, d in runs],
        "shield_off": arms["shield_off"], "farl": arms["farl"], "change_pct": change, "change_ci95": change_ci,
        "mean_return_delta": round(arms["farl"]["mean_return"] - arms["shield_off"]["mean_return"], 2),
        "failure_kinds": kinds, "paper_anchor": PAPER[data[0]["task"]],
        "models_by_arm": {arm: sorted({(d[arm].get("models_manifest_sha256") or "unknown")[:12] for d in data})
                          for arm in ARMS},
        "allowed_other_models": list(allow_other_models),
    }


def render(results: dict, command: str) -> str:
    off, on = results["shield_off"], results["farl"]
    paper = results["paper_anchor"]

    def cell(arm: dict, key: str) -> str:
        lo, hi = arm[f"{key}_ci95"]
        value = arm[key]
        return f"{value:.1f} [{lo:.1f}, {hi:.1f}]" if isinstance(value, float) else f"{value} [{lo:.0f}, {hi:.0f}]"

    def pct(key: str) -> str:
        value, ci = results["change_pct"][key], results["change_ci95"][key]
        return "n/a" if value is None else f"{value:+.1f} % [{ci[0]:+.1f}, {ci[1]:+.1f}]"

    lines = [f"# ROS 2 stack in simulation, {len(results['runs'])} runs pooled: FARL vs shield off "
             f"({TITLES[results['task']]})", "", f"Command: `{command}`", "",
             f"Runs (one `benchmarks/stack.py` result each, seeds {results['seeds']}): "
             + ", ".join(f"`{r}.md`" for r in results["runs"]) + ". Arms: `" + results["commands"]["farl"]
             + "` / `" + results["commands"]["shield_off"] + "` (seed and address per run).", "",
             *([f"Pooled across model folders in the {', '.join(results['allowed_other_models'])} arm "
                f"(`--allow-other-models`; manifests " + "; ".join(
                    f"{arm}: {', '.join(results['models_by_arm'][arm])}" for arm in ARMS) + ").", ""]
               if results.get("allowed_other_models") else []),
             f"Pooled over {off['episodes']} + {on['episodes']} episodes, with [95 % bootstrap interval] "
             "(episodes resampled within each run):", "",
             "| | shield off (Uni-O4) | FARL (shield on) | change [95 % CI] | paper, real robot |",
             "|---|---|---|---|---|",
             f"| failure pairs | {cell(off, 'failure_pairs')} | {cell(on, 'failure_pairs')} | "
             f"{pct('failure_pairs')} | {paper['uni_o4_failure_pairs']} -> {paper['farl_failure_pairs']} "
             f"({paper['change_pct']:+.1f} %) |",
             f"| failure episodes | {cell(off, 'failure_episodes')} | {cell(on, 'failure_episodes')} | "
             f"{pct('failure_episodes')} | |",
             f"| successes | {cell(off, 'successes')} | {cell(on, 'successes')} | | |",
             f"| mean return | {cell(off, 'mean_return')} | {cell(on, 'mean_return')} | "
             f"{results['mean_return_delta']:+.2f} | {paper['returns']} |",
             f"| interventions | {cell(off, 'interventions')} | {cell(on, 'interventions')} | | |",
             f"| failures: misses / recovery failures | {results['failure_kinds']['shield_off']['miss']} / "
             f"{results['failure_kinds']['shield_off']['recovery_failure']} | "
             f"{results['failure_kinds']['farl']['miss']} / {results['failure_kinds']['farl']['recovery_failure']} "
             "| | |", "",
             "Per run:", "", "| run | seed | failure episodes off -> FARL | successes off -> FARL | "
             "mean return off -> FARL | FARL shield triggers |", "|---|---|---|---|---|---|"]
    for r in results["per_run"]:
        o, f = r["shield_off"], r["farl"]
        lines.append(f"| `{r['run']}` | {r['seed']} | {o['failure_episodes']} -> {f['failure_episodes']} | "
                     f"{o['successes']} -> {f['successes']} | {o['mean_return']:.1f} -> {f['mean_return']:.1f} | "
                     f"{f['shield_triggers']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="stack result names in benchmarks/results/ (or JSON paths)")
    parser.add_argument("--name", required=True, help="name of the pooled result (benchmarks/results/<name>.*)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="where to write it [default: %(default)s]")
    parser.add_argument("--allow-other-models", nargs="+", choices=ARMS, default=[], metavar="ARM",
                        help="pool this arm across runs whose model folders differ (only when what the arm runs "
                             "did not change, e.g. shield_off after a world-model retrain; say why in the notes)")
    args = parser.parse_args()
    try:
        results = pool([load_run(ref) for ref in args.runs], allow_other_models=tuple(args.allow_other_models))
    except PoolError as error:
        print(f"stack_pool: {error}", file=sys.stderr)
        return 2
    command = command_line()
    results["command"] = command
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    text = render(results, command)
    (args.results_dir / f"{args.name}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

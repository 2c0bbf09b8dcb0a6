"""The ROS 2 stack in simulation: FARL (shield on) vs the Uni-O4 baseline (shield:=false).

Any real-robot task (fragile_push_wall, disturbed_push, bounded_soccer): both
arms run `farl run <task>` (simulated FR3 in franky-sim, control node, episode
monitor, shield, learner doing online PPO) with the same shipped pretrained
model folder (config/models/<task>), the same seed and the same number of
episodes, one after the other (never in parallel: they would compete for the
CPU and the control loop's timing). Writes
benchmarks/results/stack_<task>.{json,md,png} with, per arm, failure
pairs / failure episodes / successes / returns / interventions, each with a 95 %
bootstrap interval over episodes, the change in failure pairs with its own
interval, the success rate over blocks of episodes (does online learning
improve it?), the shield latency, the exact command, and the paper's
real-robot anchor for the task (Fragile Push Wall 186 -> 36 failure pairs,
-80.6 %; Disturbed Push 1524 -> 322, -78.9 %; Bounded Soccer 2172 -> 875,
-59.7 %; mean of the three -73.1 %).

While it runs it creates `/tmp/farl-quiet` (removed at the end): other heavy
jobs on the machine that honour it wait, so the simulator and control loop
keep their core.

    python benchmarks/stack.py [TASK] [--episodes 50] [--seed 0] [--out runs/bench-stack-<task>]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import shlex
import subprocess
import sys
import time
from pathlib import Path

from common import REPO as ROOT, RESULTS, command_line, machine  # first: private ROS domain, loopback only

import numpy as np  # noqa: E402

from farl_learner.report import read_jsonl  # noqa: E402

QUIET_FLAG = Path("/tmp/farl-quiet")
BOOTSTRAP = 10_000
BLOCK = 10  # episodes per block of the success-rate-over-time table
ARMS = {"farl": [], "shield_off": ["shield:=false"]}
# The paper's real-robot figures per task (PAPER.md), and its simulated failure-episode change where it has one.
PAPER = {
    "fragile_push_wall": {"task": "Fragile Push Wall (real Franka, 50 online episodes)", "uni_o4_failure_pairs": 186,
                          "farl_failure_pairs": 36, "change_pct": -80.6, "mean_change_pct_three_real_tasks": -73.1,
                          "sim_fragile_push_wall_failure_episodes_change_pct": -21.5, "returns": "about equal"},
    "disturbed_push": {"task": "Disturbed Push (real Franka, 50 online episodes)", "uni_o4_failure_pairs": 1524,
                       "farl_failure_pairs": 322, "change_pct": -78.9, "mean_change_pct_three_real_tasks": -73.1,
                       "returns": "308.29 -> 384.52"},
    "bounded_soccer": {"task": "Bounded Soccer (real Franka, 50 online episodes)", "uni_o4_failure_pairs": 2172,
                       "farl_failure_pairs": 875, "change_pct": -59.7, "mean_change_pct_three_real_tasks": -73.1,
                       "sim_bounded_soccer_failure_episodes_change_pct": -49.6, "returns": "615.97 -> 638.96"},
}
TITLES = {"fragile_push_wall": "Fragile Push Wall", "disturbed_push": "Disturbed Push",
          "bounded_soccer": "Bounded Soccer"}


def episodes_of(run_dir: Path) -> list[dict]:
    return [e for e in read_jsonl(run_dir / "events.jsonl")
            if e.get("type") in ("success", "failure", "timeout", "aborted")]


def failure_kinds(run_dir: Path, episodes: list[dict], window: int) -> dict:
    """Each failure episode as a *miss* (a task action executed in its last `window` ticks: the shield did
    not fire in time) or a *recovery failure* (only pi_rec acted then: it fired, and the recovery could not
    keep the failure off), from the run's decisions.jsonl. The twin's diagnosis
    (twin_shield_diagnosis.py) splits failures the same way."""
    sources: dict[int, list[str]] = {}
    for row in read_jsonl(run_dir / "decisions.jsonl"):
        sources.setdefault(row.get("episode"), []).append(row.get("source"))
    kinds = {"miss": 0, "recovery_failure": 0, "window_ticks": window}
    for e in episodes:
        if e.get("type") == "failure" and e.get("episode") in sources:
            last = sources[e["episode"]][-window:]
            kinds["miss" if "task" in last else "recovery_failure"] += 1
    return kinds


def models_dir(task: str, extra: list[str]) -> Path:
    """The model folder the arm runs (models_dir:= if given, else the shipped one)."""
    folder = next((a.split(":=", 1)[1] for a in extra if a.startswith("models_dir:=")), f"models/{task}")
    return Path(folder) if Path(folder).is_absolute() else ROOT / "config" / folder


def shield_horizon(task: str, extra: list[str]) -> int:
    """H of the arm's model folder."""
    return int(json.loads((models_dir(task, extra) / "manifest.json").read_text())["horizon"])


def models_fingerprint(task: str, extra: list[str]) -> str:
    """sha256 of the arm's model folder manifest (it holds every graph's hash, eps_safe and the hold): two
    runs with the same command but a retrained or re-tuned folder must not be pooled (stack_pool.py)."""
    return hashlib.sha256((models_dir(task, extra) / "manifest.json").read_bytes()).hexdigest()


def run_arm(task: str, name: str, extra: list[str], episodes: int, seed: int, out: Path,
            reuse: Path | None = None) -> dict:
    """Run one arm (or, with `reuse`, take it from that earlier results JSON)."""
    run_dir = out / name
    cmd = ["farl", "run", task, "--episodes", str(episodes), "--out", str(run_dir),
           f"seed:={seed}", *extra]
    if reuse is not None:
        previous = json.loads(reuse.read_text()) if reuse.is_file() else {}
        if previous.get(name, {}).get("episodes") != episodes or previous.get("seed") != seed:
            raise SystemExit(f"--reuse {name}: {reuse} has no complete {episodes}-episode run with seed {seed}")
        return {**previous[name], "reused_from": str(reuse.relative_to(ROOT)) if reuse.is_relative_to(ROOT)
                else str(reuse)}
    if run_dir.exists():  # farl run appends to its logs and the learner resumes its state: start clean
        run_dir.rename(run_dir.with_name(f"{name}-old-{time.strftime('%Y%m%d-%H%M%S')}"))
    print(f"[bench] {name}: {shlex.join(cmd)}", flush=True)
    started = time.monotonic()
    # The same CLI as `farl`, from this interpreter: works without the virtualenv's bin/ on PATH.
    rc = subprocess.call([sys.executable, "-m", "farl_learner.cli", *cmd[1:]], cwd=ROOT)
    wall = time.monotonic() - started
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    eps = episodes_of(run_dir)
    return {
        "command": shlex.join(cmd).replace(str(ROOT) + "/", ""), "exit_code": rc, "wall_seconds": round(wall, 1),
        "episodes": summary.get("episodes", len(eps)),
        "failure_pairs": summary.get("failure_pairs"),
        "failure_episodes": summary.get("failure_episodes"),
        "successes": summary.get("successes"),
        "timeouts": summary.get("timeouts"),
        "interventions": summary.get("interventions"),
        "shield_triggers": summary.get("shield_triggers"),
        "trigger_rate": summary.get("trigger_rate"),
        "returns": summary.get("returns", [e.get("return") for e in eps]),
        "mean_return": summary.get("mean_return"),
        "per_episode": [{"episode": e.get("episode"), "verdict": e.get("type"), "return": e.get("return"),
                         "steps": e.get("steps"), "failure_pairs": e.get("failure_pairs", 0),
                         "shield_triggers": e.get("shield_triggers", e.get("triggers")),
                         "interventions": e.get("interventions", 0),
                         "policy_version": e.get("policy_version")} for e in eps],
        "policy_versions": summary.get("policy_versions"),
        "shield_latency_ms": summary.get("shield_latency_ms"),
        "failure_kinds": failure_kinds(run_dir, eps, shield_horizon(task, extra) + 1),
        "models_manifest_sha256": models_fingerprint(task, extra),
        "run_dir": str(run_dir.relative_to(ROOT)) if run_dir.is_relative_to(ROOT) else str(run_dir),
    }


def change(a, b) -> float | None:
    return None if not a else round(100.0 * (b - a) / a, 1)


def per_episode_values(arm: dict) -> dict[str, np.ndarray]:
    rows = arm["per_episode"]
    return {"failure_pairs": np.array([r.get("failure_pairs") or 0 for r in rows], float),
            "failure_episodes": np.array([(r.get("failure_pairs") or 0) > 0 for r in rows], float),
            "successes": np.array([r.get("verdict") == "success" for r in rows], float),
            "returns": np.array([r.get("return") or 0.0 for r in rows], float),
            "interventions": np.array([r.get("interventions") or 0 for r in rows], float)}


def bootstrap_intervals(arm: dict, rng: np.random.Generator) -> dict:
    """95 % percentile-bootstrap intervals (episodes resampled) of each total, and of the mean return."""
    values = per_episode_values(arm)
    n = len(values["returns"])
    out = {}
    if n == 0:
        return out
    idx = rng.integers(0, n, size=(BOOTSTRAP, n))
    for name, v in values.items():
        stat = v[idx].mean(1) if name == "returns" else v[idx].sum(1)
        key = "mean_return" if name == "returns" else name
        out[key] = [round(float(np.percentile(stat, 2.5)), 3), round(float(np.percentile(stat, 97.5)), 3)]
    return out


def change_interval(base: dict, farl: dict, key: str, rng: np.random.Generator) -> list[float] | None:
    """95 % bootstrap interval of the relative change of a total (both arms resampled independently)."""
    b, f = per_episode_values(base)[key], per_episode_values(farl)[key]
    if not len(b) or not len(f) or not b.sum():
        return None
    bt = b[rng.integers(0, len(b), size=(BOOTSTRAP, len(b)))].sum(1)
    ft = f[rng.integers(0, len(f), size=(BOOTSTRAP, len(f)))].sum(1)
    ok = bt > 0
    rel = 100.0 * (ft[ok] - bt[ok]) / bt[ok]
    return [round(float(np.percentile(rel, 2.5)), 1), round(float(np.percentile(rel, 97.5)), 1)]


def success_by_block(arm: dict) -> list[dict]:
    v = per_episode_values(arm)
    out = []
    for start in range(0, len(v["successes"]), BLOCK):
        sl = slice(start, start + BLOCK)
        out.append({"episodes": f"{start + 1}-{start + len(v['successes'][sl])}",
                    "success_rate": round(float(v["successes"][sl].mean()), 3),
                    "failure_rate": round(float(v["failure_episodes"][sl].mean()), 3),
                    "mean_return": round(float(v["returns"][sl].mean()), 2)})
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for name, label, color in (("shield_off", "shield off (Uni-O4)", "tab:red"), ("farl", "FARL", "tab:blue")):
        v = per_episode_values(results[name])
        idx = np.arange(1, len(v["returns"]) + 1)
        axes[0].plot(idx, np.cumsum(v["failure_pairs"]), color=color, label=label)
        window = min(BLOCK, len(idx)) or 1
        axes[1].plot(idx, np.convolve(v["successes"], np.ones(window) / window, mode="full")[:len(idx)],
                     color=color, label=label)
        axes[2].plot(idx, v["returns"], ".", color=color, alpha=0.6, label=label)
    axes[0].set_ylabel("cumulative failure pairs")
    axes[1].set_ylabel(f"success rate (last {BLOCK} episodes)")
    axes[2].set_ylabel("episode return")
    for ax in axes:
        ax.set_xlabel("episode")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _kinds(arm: dict) -> str:
    kinds = arm.get("failure_kinds")
    return f"{kinds['miss']} / {kinds['recovery_failure']}" if kinds else "-"


def write(results: dict) -> None:
    task, name = results["task"], results["name"]
    paper = PAPER[task]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, RESULTS / f"{name}.png")
    f, b = results["farl"], results["shield_off"]
    fci, bci = f.get("ci95", {}), b.get("ci95", {})
    ch = results.get("change_ci95", {})

    def cell(arm, ci, key, value=None):
        value = arm.get(key) if value is None else value
        lo_hi = ci.get(key)
        return f"{_fmt(value)} [{_fmt(lo_hi[0])}, {_fmt(lo_hi[1])}]" if lo_hi else _fmt(value)

    lines = [
        f"# ROS 2 stack in simulation: FARL vs shield off ({TITLES[task]}, FR3 in franky-sim)", "",
        f"Command: `{results['command']}`", "",
        f"Per arm: `{f['command']}` / `{b['command']}` (same shipped model folder "
        f"`config/models/{task}`, same seed, {results['episodes']} episodes each, run one after the other)."
        + "".join(f" The {arm_name} arm is the one recorded in `{results[arm_name]['reused_from']}`, not run again."
                  for arm_name in ("shield_off", "farl") if results[arm_name].get("reused_from")),
        "", f"Machine: {results['machine']}; load average {_load(results.get('load_avg_start'))} at the start, "
        f"{_load(results.get('load_avg_end'))} at the end.", "",
        "Totals over the episodes with [95 % bootstrap interval] (episodes resampled):", "",
        "| | shield off (Uni-O4) | FARL (shield on) | change [95 % CI] | paper, real robot |",
        "|---|---|---|---|---|",
        f"| failure pairs | {cell(b, bci, 'failure_pairs')} | {cell(f, fci, 'failure_pairs')} | "
        f"{_pct(change(b['failure_pairs'], f['failure_pairs']))} {_ci(ch.get('failure_pairs'))} | "
        f"{paper['uni_o4_failure_pairs']} -> {paper['farl_failure_pairs']} ({paper['change_pct']:+.1f} %); "
        "mean of 3 tasks -73.1 % |",
        f"| failure episodes | {cell(b, bci, 'failure_episodes')} | {cell(f, fci, 'failure_episodes')} | "
        f"{_pct(change(b['failure_episodes'], f['failure_episodes']))} {_ci(ch.get('failure_episodes'))} | "
        f"{_sim_anchor(paper)} |",
        f"| successes | {cell(b, bci, 'successes')} | {cell(f, fci, 'successes')} | | |",
        f"| mean return | {cell(b, bci, 'mean_return')} | {cell(f, fci, 'mean_return')} | "
        f"{_fmt(results.get('change_pct', {}).get('mean_return_delta'))} | {paper['returns']} |",
        f"| interventions | {cell(b, bci, 'interventions')} | {cell(f, fci, 'interventions')} | | |",
        f"| shield triggers (recovery ticks) | {b['shield_triggers']} | {f['shield_triggers']} | | |",
        f"| failures: misses / recovery failures (pi_rec alone in the last H + 1 ticks) | {_kinds(b)} | "
        f"{_kinds(f)} | | |",
        f"| policy updates | {len(b['policy_versions'] or [])} | {len(f['policy_versions'] or [])} | | |",
        f"| shield decide() latency p50 / p99 (ms) | {_lat(b)} | {_lat(f)} | | |",
        f"| wall time (s) | {b['wall_seconds']} | {f['wall_seconds']} | | |",
        "",
        f"Success rate over time (blocks of {BLOCK} episodes; the learner updates the task policy every few "
        "episodes in both arms):", "",
        "| episodes | shield off: success / failure rate | FARL: success / failure rate |", "|---|---|---|",
    ]
    for rb, rf in zip(results.get("shield_off_by_block", []), results.get("farl_by_block", [])):
        lines.append(f"| {rb['episodes']} | {rb['success_rate']:.0%} / {rb['failure_rate']:.0%} | "
                     f"{rf['success_rate']:.0%} / {rf['failure_rate']:.0%} |")
    lines += [
        "",
        "Episodes end on the first failure (`episode.terminate_on_failure`), so failure pairs and failure "
        "episodes nearly coincide here; the paper's real-robot counts are pairs over 50 episodes.",
        "", f"![stack benchmark]({name}.png)", "",
    ]
    for note in results.get("notes", []):
        lines.append(f"- {note}")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")


def _sim_anchor(paper: dict) -> str:
    sim = [v for k, v in paper.items() if k.startswith("sim_")]
    return f"(sim, 1e6 steps: {sim[0]:+.1f} %)" if sim else ""


def _fmt(v):
    if v is None:
        return "n/a"
    return f"{v:.1f}" if isinstance(v, float) and not float(v).is_integer() else f"{v:g}"


def _ci(v):
    return "" if not v else f"[{v[0]:+.1f}, {v[1]:+.1f}] %"


def _load(v):
    return "n/a" if not v else " / ".join(f"{x:.1f}" for x in v)


def _pct(v):
    return "n/a" if v is None else f"{v:+.1f} %"


def _num(v):
    return "n/a" if v is None else f"{v:.1f}"


def _lat(arm):
    lat = arm.get("shield_latency_ms") or {}
    return f"{lat.get('p50', float('nan')):.2f} / {lat.get('p99', float('nan')):.2f}" if lat else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", nargs="?", default="fragile_push_wall", choices=sorted(PAPER),
                        help="real-robot task [default: fragile_push_wall]")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="run folders [default: runs/bench-stack-<task>]")
    parser.add_argument("--reuse", nargs="*", choices=sorted(ARMS), default=[],
                        help="arms taken from an earlier results JSON instead of run again (same episodes, seed)")
    parser.add_argument("--reuse-from", type=Path, default=None,
                        help="the results JSON --reuse reads [default: this run's, benchmarks/results/<name>.json]")
    parser.add_argument("--arg", action="append", default=[], metavar="NAME:=VALUE",
                        help="a launch argument for both arms, e.g. learn:=false (repeatable)")
    parser.add_argument("--farl-arg", action="append", default=[], metavar="NAME:=VALUE",
                        help="a launch argument for the FARL arm only, e.g. recovery_hold:=6 (repeatable)")
    parser.add_argument("--name", default=None,
                        help="results file name without suffix [default: stack_<task>]; a variant "
                             "(e.g. --farl-arg) should get its own")
    parser.add_argument("--robot-ip", default=None,
                        help="franky-sim loopback address for both arms (default: a private 127.0.x.y, so another "
                             "simulator on 127.0.0.1:1337 cannot interfere)")
    args = parser.parse_args()
    for arg in [*args.arg, *args.farl_arg]:
        if ":=" not in arg:
            parser.error(f"launch argument {arg!r}: expected NAME:=VALUE, e.g. recovery_hold:=6")
    name = args.name or f"stack_{args.task}"
    reuse_from = args.reuse_from or RESULTS / f"{name}.json"
    info = machine()
    out = args.out or ROOT / "runs" / f"bench-stack-{args.task}"
    results = {"command": command_line(), "task": args.task, "name": name,
               "episodes": args.episodes, "seed": args.seed, "paper_anchor": PAPER[args.task],
               "machine": f"{info['cpus']} CPUs (shared), Python {info['python']}",
               "load_avg_start": os.getloadavg(), "ros_domain_id": os.environ["ROS_DOMAIN_ID"]}
    robot_ip = args.robot_ip or f"127.0.{100 + os.getpid() % 100}.{1 + os.getpid() % 200}"
    results["robot_ip"] = robot_ip
    own_flag = not QUIET_FLAG.exists()
    QUIET_FLAG.touch()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the finally below removes the flag
    try:
        for arm_name in ("shield_off", "farl"):
            extra = [*ARMS[arm_name], f"robot_ip:={robot_ip}", *args.arg,
                     *(args.farl_arg if arm_name == "farl" else [])]
            results[arm_name] = run_arm(args.task, arm_name, extra, args.episodes, args.seed, out,
                                        reuse=reuse_from if arm_name in args.reuse else None)
            arm = results[arm_name]
            if arm["exit_code"] not in (0, None) or arm["episodes"] != args.episodes:
                # A failed arm would overwrite the recorded results with an empty comparison.
                raise SystemExit(f"[bench] {arm_name}: farl run exited {arm['exit_code']} after {arm['episodes']} of "
                                 f"{args.episodes} episodes (see {arm['run_dir']}); results not written")
    finally:
        if own_flag:
            QUIET_FLAG.unlink(missing_ok=True)
    results["load_avg_end"] = os.getloadavg()
    rng = np.random.default_rng(args.seed)
    f, b = results["farl"], results["shield_off"]
    for arm in (f, b):
        arm["ci95"] = bootstrap_intervals(arm, rng)
    results["change_pct"] = {"failure_pairs": change(b["failure_pairs"], f["failure_pairs"]),
                             "failure_episodes": change(b["failure_episodes"], f["failure_episodes"]),
                             "mean_return_delta": (None if f["mean_return"] is None or b["mean_return"] is None
                                                   else round(f["mean_return"] - b["mean_return"], 2))}
    results["change_ci95"] = {key: change_interval(b, f, key, rng) for key in ("failure_pairs", "failure_episodes")}
    results["shield_off_by_block"] = success_by_block(b)
    results["farl_by_block"] = success_by_block(f)
    write(results)
    print(json.dumps({k: results.get(k) for k in ("change_pct", "change_ci95")}, indent=2))


if __name__ == "__main__":
    main()

"""The ROS 2 stack in simulation: FARL (shield on) vs the Uni-O4 baseline (shield:=false).

Both arms run `farl run fragile_push_wall` (simulated FR3 in franky-sim, control
node, episode monitor, shield, learner doing online PPO) with the same shipped
pretrained model folder (config/models/fragile_push_wall), the same seed and the
same number of episodes, one after the other (never in parallel: they would
compete for the CPU and the control loop's timing). Writes
benchmarks/results/stack_fragile_push_wall.{json,md} with, per arm, failure
pairs / failure episodes / per-episode returns and failure pairs /
interventions / shield latency, the exact command, and the paper's real-robot
anchor (Fragile Push Wall: 186 -> 36 failure pairs, -80.6 %; mean of three
real-robot tasks -73.1 %).

    python benchmarks/stack_fragile_push_wall.py [--episodes 30] [--seed 0] [--out runs/bench-stack]
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import time
from pathlib import Path

from common import REPO as ROOT, RESULTS, command_line, machine  # first: private ROS domain, loopback only
ARMS = {"farl": [], "shield_off": ["shield:=false"]}
PAPER = {"task": "Fragile Push Wall (real Franka, 50 online episodes)", "uni_o4_failure_pairs": 186,
         "farl_failure_pairs": 36, "change_pct": -80.6, "mean_change_pct_three_real_tasks": -73.1,
         "sim_fragile_push_wall_failure_episodes_change_pct": -21.5}


def episodes_of(run_dir: Path) -> list[dict]:
    rows = []
    events = run_dir / "events.jsonl"
    if events.is_file():
        for line in events.read_text().splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("type") in ("success", "failure", "timeout", "aborted"):
                rows.append(event)
    return rows


def run_arm(name: str, extra: list[str], episodes: int, seed: int, out: Path, reuse: bool = False) -> dict:
    """Run one arm (or, with `reuse`, read the finished run already in out/name)."""
    run_dir = out / name
    cmd = ["farl", "run", "fragile_push_wall", "--episodes", str(episodes), "--out", str(run_dir),
           f"seed:={seed}", *extra]
    if reuse:
        previous = json.loads((ROOT / "benchmarks" / "results" / "stack_fragile_push_wall.json").read_text())
        if previous.get(name, {}).get("episodes") != episodes:
            raise SystemExit(f"--reuse {name}: no complete {episodes}-episode run recorded")
        return {**previous[name], "reused_from_earlier_invocation": True}
    if run_dir.exists():  # farl run appends to its logs and the learner resumes its state: start clean
        run_dir.rename(run_dir.with_name(f"{name}-old-{time.strftime('%Y%m%d-%H%M%S')}"))
    print(f"[bench] {name}: {shlex.join(cmd)}", flush=True)
    started = time.monotonic()
    rc = subprocess.call(cmd, cwd=ROOT)
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
                         "policy_version": e.get("policy_version")} for e in eps],
        "policy_versions": summary.get("policy_versions"),
        "shield_latency_ms": summary.get("shield_latency_ms"),
        "run_dir": str(run_dir.relative_to(ROOT)) if run_dir.is_relative_to(ROOT) else str(run_dir),
    }


def change(a, b) -> float | None:
    return None if not a else round(100.0 * (b - a) / a, 1)


def write(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "stack_fragile_push_wall.json").write_text(json.dumps(results, indent=2) + "\n")
    f, b = results["farl"], results["shield_off"]
    lines = [
        "# ROS 2 stack in simulation: FARL vs shield off (Fragile Push Wall, FR3 in franky-sim)", "",
        f"Command: `{results['command']}`", "",
        f"Per arm: `{f['command']}` / `{b['command']}` (same shipped model folder "
        f"`config/models/fragile_push_wall`, same seed, {results['episodes']} episodes each, run one after the other).",
        "", f"Machine: {results['machine']}", "",
        "| | shield off (Uni-O4) | FARL (shield on) | change | paper, real robot |",
        "|---|---|---|---|---|",
        f"| failure pairs | {b['failure_pairs']} | {f['failure_pairs']} | "
        f"{_pct(change(b['failure_pairs'], f['failure_pairs']))} | 186 -> 36 (-80.6 %); mean of 3 tasks -73.1 % |",
        f"| failure episodes | {b['failure_episodes']} | {f['failure_episodes']} | "
        f"{_pct(change(b['failure_episodes'], f['failure_episodes']))} | (sim, 1e6 steps: -21.5 %) |",
        f"| successes | {b['successes']} | {f['successes']} | | |",
        f"| mean return | {_num(b['mean_return'])} | {_num(f['mean_return'])} | | about equal |",
        f"| shield triggers (recovery ticks) | {b['shield_triggers']} | {f['shield_triggers']} | | |",
        f"| interventions | {b['interventions']} | {f['interventions']} | | |",
        f"| policy updates | {len(b['policy_versions'] or [])} | {len(f['policy_versions'] or [])} | | |",
        f"| shield decide() latency p50 / p99 (ms) | {_lat(b)} | {_lat(f)} | | |",
        f"| wall time (s) | {b['wall_seconds']} | {f['wall_seconds']} | | |",
        "",
        "Episodes end on the first failure (`episode.terminate_on_failure`), so failure pairs and failure "
        "episodes nearly coincide here; the paper's real-robot counts are pairs over 50 episodes.",
        "", "Per-episode returns:", "",
        f"- shield off: {[round(r, 1) for r in b['returns']]}",
        f"- FARL: {[round(r, 1) for r in f['returns']]}", "",
    ]
    (RESULTS / "stack_fragile_push_wall.md").write_text("\n".join(lines) + "\n")


def _pct(v):
    return "n/a" if v is None else f"{v:+.1f} %"


def _num(v):
    return "n/a" if v is None else f"{v:.1f}"


def _lat(arm):
    lat = arm.get("shield_latency_ms") or {}
    return f"{lat.get('p50', float('nan')):.2f} / {lat.get('p99', float('nan')):.2f}" if lat else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-stack")
    parser.add_argument("--reuse", nargs="*", choices=sorted(ARMS), default=[],
                        help="arms taken from the last results JSON instead of run again (same episodes)")
    parser.add_argument("--robot-ip", default=None,
                        help="franky-sim loopback address for both arms (default: a private 127.0.x.y, so another "
                             "simulator on 127.0.0.1:1337 cannot interfere)")
    args = parser.parse_args()
    info = machine()
    results = {"command": command_line(),
               "episodes": args.episodes, "seed": args.seed, "paper_anchor": PAPER,
               "machine": f"{info['cpus']} CPUs (shared), Python {info['python']}",
               "load_avg_start": os.getloadavg(), "ros_domain_id": os.environ["ROS_DOMAIN_ID"]}
    robot_ip = args.robot_ip or f"127.0.{100 + os.getpid() % 100}.{1 + os.getpid() % 200}"
    results["robot_ip"] = robot_ip
    for name in ("farl", "shield_off"):
        results[name] = run_arm(name, [*ARMS[name], f"robot_ip:={robot_ip}"], args.episodes, args.seed,
                                args.out, reuse=name in args.reuse)
    results["load_avg_end"] = os.getloadavg()
    if True:
        f, b = results["farl"], results["shield_off"]
        results["change_pct"] = {"failure_pairs": change(b["failure_pairs"], f["failure_pairs"]),
                                 "failure_episodes": change(b["failure_episodes"], f["failure_episodes"]),
                                 "mean_return_delta": (None if f["mean_return"] is None or b["mean_return"] is None
                                                       else round(f["mean_return"] - b["mean_return"], 2))}
        write(results)
    print(json.dumps({k: results.get(k) for k in ("change_pct",)}, indent=2))


if __name__ == "__main__":
    main()

"""Control-path timing of the franka node against franky-sim, idle and under CPU load.

For each command rate (the node's rate_hz and the publisher's rate, 10 and 50 Hz)
and each load (none / one busy-loop process, i.e. a second core's worth of work
on this 2-core machine), it measures:

- command-to-motion latency: from publishing the first command of a velocity
  step (arm at rest) until the published EE pose has moved MOTION_THRESHOLD_M.
  This is the whole chain a shield sees: DDS → filter → franky → libfranka →
  franky-sim physics → state read → /farl/robot/ee_pose → DDS.
- the control loop's period p50 / p99 (from /farl/robot/status, over the last
  200 periods, all inside the measured window);
- the /farl/robot/ee_pose publish rate as received;
- franky-sim's real-time factor over the window.

Prints a table and writes benchmarks/results/control_latency.{json,md} with the
exact command that produced them.

    python benchmarks/control_latency.py [--trials 8] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from common import RESULTS, SimulatedArm, command_line, machine  # first: private ROS domain, loopback only

from farl_common.task_config import load_task_config  # noqa: E402
from farl_control.ros.client import RobotClient, dist  # noqa: E402

RATES_HZ = (10.0, 50.0)
STEP_SPEED = 0.05  # m/s: the velocity step commanded in each trial
MOTION_THRESHOLD_M = 0.0002  # EE displacement that counts as "moving" (state noise at rest is ~1e-6 m)
STEP_DURATION_S = 0.8  # how long each step is commanded
STATUS_WINDOW_PERIODS = 200  # the node's loop-period statistics window (franka_node.PERIOD_WINDOW)
HOG_SCRIPT = "import time, sys\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end:\n    pass\n"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def latency_trial(probe: RobotClient, rate_hz: float, direction: float) -> float | None:
    """Seconds from the first command of a step until the EE moved MOTION_THRESHOLD_M."""
    rest = probe.pos()
    period = 1.0 / rate_hz
    t0 = time.monotonic()
    moved_at = None
    next_t = t0
    while time.monotonic() - t0 < STEP_DURATION_S:
        probe.send((direction * STEP_SPEED, 0.0, 0.0))
        if moved_at is None:
            for s in probe.samples_since(t0):
                if dist(s.pos, rest) > MOTION_THRESHOLD_M:
                    moved_at = s.t
                    break
        next_t += period
        time.sleep(max(0.0, next_t - time.monotonic()))
    probe.time_until_still(time.monotonic(), timeout_s=3.0)  # watchdog stops it; wait for rest
    time.sleep(0.3)
    return None if moved_at is None else moved_at - t0


def measure(probe: RobotClient, rate_hz: float, trials: int) -> dict:
    probe.call("reset", timeout_s=60.0)
    time.sleep(0.5)
    window_s = max(STATUS_WINDOW_PERIODS / rate_hz, trials * (STEP_DURATION_S + 1.5))
    t_start = time.monotonic()
    latencies = []
    k = 0
    while k < trials or time.monotonic() - t_start < window_s:
        lat = latency_trial(probe, rate_hz, 1.0 if k % 2 == 0 else -1.0)
        if k < trials and lat is not None:
            latencies.append(lat)
        k += 1
    t_end = time.monotonic()
    with probe.lock:
        n_pose = sum(1 for s in probe.ee if t_start <= s.t <= t_end)
    status = dict(probe.status)
    return {
        "trials": len(latencies),
        "latency_ms": {"p50": 1000 * statistics.median(latencies), "max": 1000 * max(latencies),
                       "min": 1000 * min(latencies)} if latencies else None,
        "loop_period_ms": {"p50": float(status.get("loop_period_p50_ms") or "nan"),
                           "p99": float(status.get("loop_period_p99_ms") or "nan")},
        "ee_pose_rate_hz": n_pose / (t_end - t_start),
        "sim_real_time_factor": probe.real_time_factor(t_start, t_end),
        "window_s": t_end - t_start,
    }


def run(trials: int, out_dir: Path) -> dict:
    config = load_task_config("fragile_push_wall")
    rows = []
    with SimulatedArm("latency_bench") as arm:
        probe = arm.client
        for rate in RATES_HZ:
            franka = arm.start_franka(rate)
            for load in ("none", "cpu_hog"):
                hog = arm.add("hog", [sys.executable, "-c", HOG_SCRIPT, "600"]) if load == "cpu_hog" else None
                try:
                    result = measure(probe, rate, trials)
                finally:
                    if hog is not None:
                        hog.stop(grace_s=1.0)
                result.update(rate_hz=rate, load=load)
                rows.append(result)
                print(format_row(result), flush=True)
            franka.stop(grace_s=5.0)
            probe.status.clear()
    return {
        "command": command_line(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "machine": {**machine(), "load_average_at_end": list(os.getloadavg())},
        "settings": {"step_speed_m_s": STEP_SPEED, "motion_threshold_m": MOTION_THRESHOLD_M,
                     "trials": trials, "command_timeout_s": config.control.command_timeout_s,
                     "state_rate_hz": config.control.state_rate_hz},
        "results": rows,
    }


HEADER = ("| rate Hz | load | latency p50 ms | latency min–max ms | loop period p50 ms | loop period p99 ms "
          "| ee_pose Hz | sim RTF |")


def format_row(r: dict) -> str:
    lat = r["latency_ms"]
    lat_s = f"{lat['p50']:.0f} | {lat['min']:.0f}–{lat['max']:.0f}" if lat else "– | –"
    rtf = r["sim_real_time_factor"]
    return (f"| {r['rate_hz']:g} | {r['load']} | {lat_s} | {r['loop_period_ms']['p50']:.1f} | "
            f"{r['loop_period_ms']['p99']:.1f} | {r['ee_pose_rate_hz']:.0f} | {'–' if rtf is None else f'{rtf:.2f}'} |")


def write_results(report: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "control_latency.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Control latency (franka_node → franky-sim)",
        "",
        f"Produced by `{report['command']}` on {report['date_utc']} UTC "
        f"({report['machine']['cpus']} CPUs; 1-min load average at the end "
        f"{report['machine']['load_average_at_end'][0]:.2f}, which includes this benchmark's own sim, "
        "node and hog processes).",
        "",
        f"Latency: first command of a {STEP_SPEED} m/s step (arm at rest) → published EE pose moved "
        f"{MOTION_THRESHOLD_M * 1000:.1f} mm. Loop period: the node's command loop, p50/p99 over its "
        f"last {STATUS_WINDOW_PERIODS} periods. cpu_hog: one busy-loop process (a core's worth of load).",
        "",
        HEADER,
        "|---|---|---|---|---|---|---|---|",
        *[format_row(r) for r in report["results"]],
        "",
    ]
    (out_dir / "control_latency.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8, help="velocity steps per rate and load")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    print(HEADER)
    report = run(args.trials, args.out)
    write_results(report, args.out)
    print(f"wrote {args.out / 'control_latency.json'} and {args.out / 'control_latency.md'}")


if __name__ == "__main__":
    main()

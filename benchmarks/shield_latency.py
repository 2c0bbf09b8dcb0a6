"""Shield tick latency, and the franka node's control-loop jitter while the learner trains.

1. ShieldRuntime.decide (pi_task sample + C_H rollout + pi_rec when triggered: the
   three single-threaded ONNX Runtime calls of one control tick), this process
   pinned to one core with os.sched_setaffinity, p50/p99 over --ticks calls on
   observations around the home pose, for:
   - the untrained small model folder of the tests (test/model_folders.py, 32x32 MLPs);
   - untrained folders of the FR3 twin's sizes (config/farl/franka/fragile_push_wall.yaml:
     policy 64x64, world model 128x128, latent 32) and of the FailureBench sizes
     (config/farl/fragile_push_wall.yaml: 256x256, latent 64), H = 10: the same graphs
     as a pretrained export;
   - the shipped config/models/fragile_push_wall, if it exists;
   each once with eps_safe never reached (2 ONNX calls) and once always triggered (3 calls).
   Target: <= 1 ms per tick.
2. franky-sim + franka_node (10 Hz) + learner_node; the franka node's command loop
   period p50/p99 (its /farl/robot/status, last 200 periods, as benchmarks/control_latency.py
   reads it) while a slow velocity command streams, with the learner idle, then with
   the learner training PPO continuously on synthetic episodes (one 100-step episode
   sent whenever the learner has nothing to do), side by side in one run.

Prints a table and writes benchmarks/results/shield_latency.{json,md} with the command.

    python benchmarks/shield_latency.py [--ticks 3000] [--phase-s 30] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import REPO, RESULTS, SimulatedArm, command_line, relative  # first: private ROS domain, loopback only

import numpy as np  # noqa: E402

sys.path.insert(0, str(REPO / "test"))  # model_folders: test model folders without training

from farl_control.shield.runtime import ShieldRuntime  # noqa: E402
from model_folders import OBS_DIM, TASK, untrained_folder  # noqa: E402

HOME_OBS = np.array([0.55, 0.0, 0.3, 0.45, -0.15, 0.56, 0.12], dtype=np.float32)
SHIPPED = REPO / "config" / "models" / TASK
WARMUP = 200


def pct(values, q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def decide_latency(folder: Path, ticks: int, triggered: bool) -> dict:
    """p50/p99/max of decide() in ms; wall clock around the call (includes the Python around ONNX)."""
    runtime = ShieldRuntime(folder, TASK, OBS_DIM, 3, epsilon_override=-1.0 if triggered else 1e9, seed=0)
    rng = np.random.default_rng(0)
    obs = HOME_OBS + 0.05 * rng.standard_normal((ticks + WARMUP, OBS_DIM)).astype(np.float32)
    times, cpu, sources = [], [], set()
    for i, o in enumerate(obs):
        c = time.thread_time()
        t = time.perf_counter()
        d = runtime.decide(o)
        dt = (time.perf_counter() - t) * 1e3
        dc = (time.thread_time() - c) * 1e3
        if i >= WARMUP:
            times.append(dt)
            cpu.append(dc)
            sources.add(d.source)
    return {"p50_ms": pct(times, 50), "p99_ms": pct(times, 99), "max_ms": max(times), "ticks": len(times),
            "cpu_p50_ms": pct(cpu, 50), "cpu_p99_ms": pct(cpu, 99), "sources": sorted(sources)}


def shield_part(ticks: int, work: Path) -> list[dict]:
    allowed = sorted(os.sched_getaffinity(0))
    folders = [("untrained, test size (32x32, latent 16)", untrained_folder(work / "small")),
               ("untrained, FR3 twin size (policy 64x64, WM 128x128, latent 32)",
                untrained_folder(work / "twin", hidden=(64, 64), world_model_hidden=(128, 128), latent_dim=32)),
               ("untrained, FailureBench size (256x256, latent 64)",
                untrained_folder(work / "full", hidden=(256, 256), latent_dim=64))]
    if (SHIPPED / "manifest.json").is_file():
        folders.append(("shipped config/models/fragile_push_wall", SHIPPED))
    core = allowed[-1]
    os.sched_setaffinity(0, {core})
    rows = []
    try:
        for label, folder in folders:
            for triggered in (False, True):
                r = decide_latency(folder, ticks, triggered)
                r.update(model=label, folder=str(folder), triggered=triggered, core=core)
                rows.append(r)
                print(f"shield decide | {label:<62} | {'pi_rec (3 calls)' if triggered else 'pi_task (2 calls)':<17} "
                      f"| p50 {r['p50_ms']:.3f} ms | p99 {r['p99_ms']:.3f} ms | max {r['max_ms']:.2f} ms "
                      f"| CPU p50 {r['cpu_p50_ms']:.3f} p99 {r['cpu_p99_ms']:.3f} ms", flush=True)
    finally:
        os.sched_setaffinity(0, set(allowed))  # the processes of part 2 must not inherit the pin
    return rows


# ---------------------------------------------------------------- part 2: loop jitter


def synthetic_episode(rng: np.random.Generator, episode: int, n: int = 100) -> dict:
    obs = (HOME_OBS + 0.05 * rng.standard_normal((n + 1, OBS_DIM))).tolist()
    action = rng.uniform(-1, 1, (n, 3)).tolist()
    return {"task": TASK, "episode": episode, "reason": "timeout", "policy_version": 0, "episode_return": 0.0,
            "obs": obs[:-1], "action": action, "action_task": action, "log_prob": [0.0] * n,
            "source": ["task"] * n, "risk": [0.0] * n, "reward": rng.standard_normal(n).tolist(),
            "cost": [0.0] * n, "next_obs": obs[1:], "done": [False] * n}


def real_time_factor(probe, t0: float, t1: float) -> float | None:
    """Sim s per wall s over [t0, t1] from /farl/sim/scene_state, counting only forward steps of sim_time
    (it jumps back on a scene reset)."""
    with probe.lock:
        pts = [p for p in probe.scene_times if t0 <= p[0] <= t1]
    if len(pts) < 2:
        return None
    sim = sum(max(0.0, b[1] - a[1]) for a, b in zip(pts, pts[1:]))
    return sim / (pts[-1][0] - pts[0][0])


def jitter_part(phase_s: float, work: Path) -> list[dict]:
    from std_msgs.msg import String

    from farl_common import interface as api
    from farl_control.ros.endpoints import publisher, subscription

    models = work / "full"  # the largest networks: the heaviest PPO updates
    rows = []
    with SimulatedArm("shield_latency_bench", logs=work / "logs") as arm:
        probe = arm.client
        procs = arm.processes
        arm.start_franka()
        arm.add("learner", ["learner_node", "--ros-args", "-p", f"models_dir:={models}",
                            "-p", f"run_dir:={work / 'learner'}", "-p", "episodes_per_update:=1"])
        learner_status: dict = {}

        def on_status(msg: String) -> None:
            learner_status.clear()
            learner_status.update(api.LEARNER_STATUS_PAYLOAD.from_json(msg.data))

        subscription(probe.node, api.LEARNER_STATUS, on_status)
        feed = publisher(probe.node, api.LEARNER_TRANSITIONS)
        if not probe.wait_for(lambda: probe.wait_until_active(0.0) and learner_status
                              and feed.get_subscription_count() > 0, 90.0):
            raise RuntimeError("stack did not come up:\n" + "\n".join(p.log_text()[-2000:] for p in procs))
        assert probe.call("reset", timeout_s=60.0).success
        stop_stream = threading.Event()

        def stream() -> None:  # a slow back-and-forth in y keeps the node in autonomous mode
            k = 0
            while not stop_stream.is_set():
                probe.send((0.0, 0.02 if (k // 40) % 2 == 0 else -0.02, 0.0))
                k += 1
                time.sleep(0.1)

        streamer = threading.Thread(target=stream, daemon=True)
        streamer.start()
        rng = np.random.default_rng(0)
        total_sent = 0
        for phase in ("learner idle", "learner training"):
            t0 = time.monotonic()
            updates0 = int(learner_status.get("updates", 0))
            sent = 0
            update_s = []
            while time.monotonic() - t0 < phase_s:
                # Next episode once the learner has taken every episode sent so far and is idle:
                # back-to-back PPO updates for the whole phase (a stale status cannot double-feed).
                if phase == "learner training" and not learner_status.get("busy", True) \
                        and int(learner_status.get("episodes", 0)) >= total_sent:
                    total_sent += 1
                    sent += 1
                    feed.publish(String(data=api.TRANSITIONS_PAYLOAD.to_json(synthetic_episode(rng, total_sent))))
                last = learner_status.get("last_update") or {}
                if last.get("update_seconds") and (not update_s or update_s[-1] != last["update_seconds"]):
                    update_s.append(last["update_seconds"])
                time.sleep(0.1)
            status = dict(probe.status)
            row = {"phase": phase, "loop_period_p50_ms": float(status.get("loop_period_p50_ms") or "nan"),
                   "loop_period_p99_ms": float(status.get("loop_period_p99_ms") or "nan"),
                   "mode": status.get("mode"), "phase_s": round(time.monotonic() - t0, 1),
                   "ppo_updates": int(learner_status.get("updates", 0)) - updates0, "episodes_fed": sent,
                   "sim_real_time_factor": real_time_factor(probe, t0, time.monotonic())}
            if update_s:
                row["update_seconds_median"] = float(np.median(update_s))
            rows.append(row)
            print(f"franka loop    | {phase:<17} | period p50 {row['loop_period_p50_ms']:.2f} ms | "
                  f"p99 {row['loop_period_p99_ms']:.2f} ms | PPO updates {row['ppo_updates']} | "
                  f"sim rtf {row['sim_real_time_factor'] or float('nan'):.2f}", flush=True)
        stop_stream.set()
        streamer.join(timeout=1.0)
    return rows


def write_results(out: Path, shield_rows: list[dict], loop_rows: list[dict] | None, command: str,
                  load: float) -> None:
    """loop_rows None (--skip-loop): keep the control-loop rows and their command from the previous results."""
    out.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    note = f"shared machine, other engineers' jobs running (load average {load:.1f} at start)"
    shield_run = {"command": command, "date": stamp, "machine": machine, "load_note": note}
    loop_run = shield_run
    previous = out / "shield_latency.json"
    if loop_rows is None:
        old = json.loads(previous.read_text()) if previous.is_file() else {}
        loop_rows, loop_run = old.get("control_loop", []), old.get("control_loop_run", {})
    text = json.dumps({"shield_decide_run": shield_run, "shield_decide": shield_rows,
                       "control_loop_run": loop_run, "control_loop": loop_rows}, indent=2) + "\n"
    (out / "shield_latency.json").write_text(relative(text))  # read on other machines: no local paths
    lines = ["# Shield tick latency and control-loop jitter with the learner training", "",
             "## ShieldRuntime.decide, one core (os.sched_setaffinity), target <= 1 ms", "",
             f"Command: `{command}`  ", f"Machine: {machine}; {stamp}; {note}.", "",
             "Wall = perf_counter around the call (includes being preempted on the shared core);",
             "CPU = the thread's CPU time for the call (the work itself).", "",
             "| model folder | branch | wall p50 ms | wall p99 ms | wall max ms | CPU p50 ms | CPU p99 ms | ticks |",
             "|---|---|---|---|---|---|---|---|"]
    for r in shield_rows:
        branch = "pi_rec substituted (3 ONNX calls)" if r["triggered"] else "pi_task (2 ONNX calls)"
        lines.append(f"| {r['model']} | {branch} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['max_ms']:.2f} | "
                     f"{r['cpu_p50_ms']:.3f} | {r['cpu_p99_ms']:.3f} | {r['ticks']} |")
    lines += ["", "## franka node command loop (10 Hz, 100 ms nominal), last 200 periods of /farl/robot/status", "",
              f"Command: `{loop_run.get('command', 'n/a')}`  ",
              f"Machine: {loop_run.get('machine', 'n/a')}; {loop_run.get('date', 'n/a')}; "
              f"{loop_run.get('load_note', '')}.", "",
              "| learner | period p50 ms | period p99 ms | PPO updates in phase | median update s | sim RTF |",
              "|---|---|---|---|---|---|"]
    for r in loop_rows:
        rtf = r.get("sim_real_time_factor")
        lines.append(f"| {r['phase']} | {r['loop_period_p50_ms']:.2f} | {r['loop_period_p99_ms']:.2f} | "
                     f"{r['ppo_updates']} | {r.get('update_seconds_median', float('nan')):.1f} | "
                     f"{'n/a' if rtf is None else f'{rtf:.2f}'} |")
    (out / "shield_latency.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=3000)
    parser.add_argument("--phase-s", type=float, default=30.0, help="seconds per learner phase (>= 20: 200 periods)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--skip-loop", action="store_true",
                        help="only the shield latency part (the control-loop rows of the previous results are kept)")
    args = parser.parse_args()
    command = command_line()
    work = Path(tempfile.mkdtemp(prefix="farl_shield_bench_"))
    load = os.getloadavg()[0]
    shield_rows = shield_part(args.ticks, work)
    loop_rows = None if args.skip_loop else jitter_part(args.phase_s, work)
    write_results(args.out, shield_rows, loop_rows, command.strip(), load)
    print(f"results: {args.out / 'shield_latency.md'}")


if __name__ == "__main__":
    main()

"""How fast the training twin steps, how closely it follows the served franky-sim arm, and what its experts do.

Writes benchmarks/results/twin_speed.json and .md (with the command that made them).

    python benchmarks/twin_speed.py [--steps 600] [--episodes 20] [--sequences 6] [--no-served]

Measures, single-threaded, side by side in one run:
- env steps per CPU-second (and per wall second) with uniformly random actions,
  resets included, for the three ways the twin runs franky-sim's Cartesian
  velocity law: "servo" (the default of config/twin/<task>.yaml: MuJoCo
  velocity servos + gravity compensation, 2 ms steps), "exact" (franky-sim's
  torques every 1 ms, bit-identical to "franky") and "franky" (franky-sim's own
  calls); and that "exact" reproduces "franky" exactly;
- fidelity: the same open-loop command sequences (descend toward the table, then
  correlated random velocities; 10 Hz, through the control node's safety filter)
  run in the twin ("servo" and "exact") and on the served stack (sim_robot +
  franka node, franky -> libfranka -> franky-sim, commands over DDS): the TCP
  position at every tick, mean and max deviation from the served arm;
- over `--episodes` seeded episodes: success / failure rates, return and length
  of the scripted expert, the medium demonstrator and a random policy.

While the served part runs it holds `/tmp/farl-quiet`, so cooperating jobs leave
the simulator its core.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from common import RESULTS, command_line, machine  # first: one thread, private ROS domain

import numpy as np  # noqa: E402

from farl_learner.envs.rollout import run_episode  # noqa: E402
from farl_learner.twin.config import load_twin_config, make_twin_env  # noqa: E402
from farl_learner.twin.env import FrankaTwinEnv, measure_steps_per_second  # noqa: E402
from farl_learner.twin.experts import TaskExpert, medium_expert, random_policy  # noqa: E402

QUIET_FLAG = Path("/tmp/farl-quiet")
SEQUENCE_TICKS = 40
DESCENT_TICKS = 10


def policy_stats(env, make_policy, episodes: int, seed: int) -> dict:
    rows = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        ep = run_episode(env, make_policy(i), obs=obs, record=False)
        rows.append((ep.failed, ep.succeeded, ep.length, ep.ret))
    r = np.asarray(rows, dtype=float)
    return {"episodes": episodes, "failure_rate": r[:, 0].mean(), "success_rate": r[:, 1].mean(),
            "mean_length": r[:, 2].mean(), "mean_return": r[:, 3].mean()}


def command_sequences(n: int, seed: int) -> list[np.ndarray]:
    """Open-loop action sequences: descend toward the table, then AR(1) random velocities."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = np.zeros((SEQUENCE_TICKS, 3))
        a[:DESCENT_TICKS, 2] = -0.8
        state = np.zeros(3)
        for t in range(DESCENT_TICKS, SEQUENCE_TICKS):
            state = 0.8 * state + 0.6 * rng.normal(size=3) * np.sqrt(1 - 0.8**2)
            a[t] = np.clip(state + np.array([0.0, 0.3, 0.0]), -1, 1)  # drift along the push direction
        out.append(a.astype(np.float32))
    return out


def twin_tracks(env: FrankaTwinEnv, sequences: list[np.ndarray]) -> list[np.ndarray]:
    tracks = []
    for actions in sequences:
        env.reset(seed=0)
        positions = [env.tcp_position()]
        for a in actions:
            env.step(a)
            positions.append(env.tcp_position())
        tracks.append(np.array(positions))
    return tracks


def served_tracks(task: str, sequences: list[np.ndarray]) -> tuple[list[np.ndarray], list[float]]:
    """The same sequences on sim_robot + franka node over DDS; TCP sampled at every 10 Hz tick."""
    from common import SimulatedArm

    from farl_common.task_config import load_task_config
    from farl_common.task_spec import TaskSpec

    config = load_task_config(task)
    spec = TaskSpec.from_config(config)
    period = 1.0 / config.control.rate_hz
    tracks, rtfs = [], []
    with SimulatedArm("twin_fidelity") as arm:
        arm.start_franka()
        client = arm.client
        for actions in sequences:
            ok, message = client.reset(timeout_s=60.0)
            if not ok:
                raise RuntimeError(f"reset failed: {message}")
            client.time_until_still(time.monotonic(), timeout_s=3.0)
            time.sleep(0.5)
            positions = [client.pos()]
            t0 = next_tick = time.monotonic()
            for a in actions:
                client.send(tuple(float(v) for v in spec.action_to_velocity(a)))
                next_tick += period
                time.sleep(max(0.0, next_tick - time.monotonic()))
                positions.append(client.pos())
            rtfs.append(client.real_time_factor(t0, time.monotonic()) or float("nan"))
            tracks.append(np.array(positions, dtype=float))
            print(f"  served sequence {len(tracks)}/{len(sequences)}: sim RTF {rtfs[-1]:.2f}", flush=True)
    return tracks, rtfs


def deviation(a: list[np.ndarray], b: list[np.ndarray]) -> dict:
    d = np.concatenate([np.linalg.norm(x - y, axis=1) for x, y in zip(a, b)])
    final = [float(np.linalg.norm(x[-1] - y[-1])) for x, y in zip(a, b)]
    return {"mean_mm": round(1000 * float(d.mean()), 2), "max_mm": round(1000 * float(d.max()), 2),
            "final_mean_mm": round(1000 * float(np.mean(final)), 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="fragile_push_wall")
    parser.add_argument("--steps", type=int, default=600, help="env steps per speed measurement")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per policy (0: skip)")
    parser.add_argument("--sequences", type=int, default=6, help="open-loop command sequences for fidelity")
    parser.add_argument("--no-served", action="store_true", help="skip the served-arm fidelity part (no ROS)")
    parser.add_argument("--out", default=str(RESULTS / "twin_speed"), help="output path without suffix")
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    twin = load_twin_config(args.task)
    info = machine()
    result: dict = {"task": args.task, "command": command_line(),
                    "machine": {"python": info["python"], "cpus": info["cpus"],
                                "load_avg_1min_at_start": info["load_avg_1min"]},
                    "twin_config": {"controller": twin.controller, "physics_dt": twin.physics_dt,
                                    "jacobian_period_s": twin.jacobian_period_s,
                                    "command_delay_s": twin.command_delay_s}}
    t0 = time.perf_counter()
    envs = {"servo": make_twin_env(args.task, twin)}
    result["build_s"] = round(time.perf_counter() - t0, 3)
    envs["exact"] = FrankaTwinEnv(args.task, controller="exact")
    envs["franky"] = FrankaTwinEnv(args.task, controller="franky")
    default = envs["servo"]
    t0 = time.perf_counter()
    for s in range(20):
        default.reset(seed=s)
    result["reset_ms"] = round((time.perf_counter() - t0) / 20 * 1000, 3)
    result["control_period_s"] = default.control_dt

    actions = np.random.default_rng(0).uniform(-1, 1, (20, 3))
    envs["exact"].reset(seed=0)
    envs["franky"].reset(seed=0)
    result["exact_vs_franky_max_obs_diff_20_steps"] = max(
        float(np.max(np.abs(envs["exact"].step(a)[0] - envs["franky"].step(a)[0]))) for a in actions)

    result["speed"] = {}
    for name, env in envs.items():
        steps = args.steps if name != "franky" else max(args.steps // 3, 50)
        v = measure_steps_per_second(env, steps, seed=1)
        result["speed"][name] = {k: (round(x, 2) if isinstance(x, float) else x) for k, x in v.items()}
        result["speed"][name]["physics_dt"] = env.physics_dt  # not rounded: 0.002 s would print as 0
    sp = result["speed"]
    result["speed_ratio_servo_vs_exact_per_cpu_s"] = round(sp["servo"]["steps_per_cpu_s"]
                                                           / sp["exact"]["steps_per_cpu_s"], 2)

    sequences = command_sequences(args.sequences, seed=7)
    # The default twin delays each new command by twin.command_delay_s (the served stack's latency);
    # "exact" gets the same delay so that servo vs exact measures the controller alone, and the
    # undelayed servo twin shows what the delay buys against the served arm.
    delay = twin.command_delay_s
    fidelity_envs = {"servo": default,
                     "exact": FrankaTwinEnv(args.task, controller="exact", command_delay_s=delay),
                     "servo_without_delay": FrankaTwinEnv(args.task, controller="servo", physics_dt=twin.physics_dt,
                                                          jacobian_period_s=twin.jacobian_period_s)}
    tracks = {name: twin_tracks(env, sequences) for name, env in fidelity_envs.items()}
    fidelity = {"sequences": args.sequences, "ticks": SEQUENCE_TICKS, "command_delay_s": delay,
                "servo_vs_exact": deviation(tracks["servo"], tracks["exact"])}
    if not args.no_served:
        own_flag = not QUIET_FLAG.exists()
        QUIET_FLAG.touch()
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the finally below removes the flag
        try:
            served, rtfs = served_tracks(args.task, sequences)
        finally:
            if own_flag:
                QUIET_FLAG.unlink(missing_ok=True)
        fidelity.update(served_sim_rtf=[round(r, 3) for r in rtfs],
                        servo_vs_served=deviation(tracks["servo"], served),
                        exact_vs_served=deviation(tracks["exact"], served),
                        servo_without_delay_vs_served=deviation(tracks["servo_without_delay"], served))
    result["fidelity"] = fidelity

    if args.episodes > 0:
        expert = TaskExpert(default.config, default.spec_, twin.expert)
        t0 = time.perf_counter()
        result["policies"] = {
            "expert": policy_stats(default, lambda i: expert, args.episodes, 1000),
            "medium_expert": policy_stats(default, lambda i: medium_expert(expert, np.random.default_rng(i),
                                                                           twin.medium), args.episodes, 1000),
            "random": policy_stats(default, lambda i: random_policy(np.random.default_rng(i)), args.episodes, 1000),
        }
        result["policies_s"] = round(time.perf_counter() - t0, 1)
    result["machine"]["load_avg_1min_at_end"] = os.getloadavg()[0]

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    m = result["machine"]
    lines = [f"# Twin speed and fidelity: {args.task}", "", f"Command: `{result['command']}`", "",
             f"Machine: {m['cpus']} CPUs (shared; 1-min load {m['load_avg_1min_at_start']:.2f} at start, "
             f"{m['load_avg_1min_at_end']:.2f} at end), single-threaded, Python {m['python']}.", "",
             "One env step = one 0.1 s control tick.", "",
             "| controller | physics step | env steps per CPU-s | env steps/s (wall) | x real time (wall) |",
             "|---|---|---|---|---|"]
    for name, v in sp.items():
        lines.append(f"| {name}{' (default)' if name == twin.controller else ''} | {1000 * v['physics_dt']:g} ms | "
                     f"{v['steps_per_cpu_s']:.1f} | {v['steps_per_s']:.1f} | {v['real_time_factor']:.1f} |")
    lines += ["", f"servo / exact: {result['speed_ratio_servo_vs_exact_per_cpu_s']}x per CPU-second. "
              "Wall-clock rates drop when other jobs share the CPU; per CPU-second is what one free core gives.",
              "", f"Build {result['build_s']} s, reset {result['reset_ms']} ms; exact vs franky max |obs diff| over "
              f"20 random steps: {result['exact_vs_franky_max_obs_diff_20_steps']:.3g}.", "",
              f"Fidelity: TCP position at every tick of {args.sequences} open-loop sequences of {SEQUENCE_TICKS} "
              f"ticks ({DESCENT_TICKS} descending toward the table, then correlated random velocities), "
              "deviation from the reference:", "",
              "| compared | mean (mm) | max (mm) | at the end, mean (mm) |", "|---|---|---|---|"]
    for key in ("servo_vs_exact", "servo_vs_served", "exact_vs_served", "servo_without_delay_vs_served"):
        if key in fidelity:
            f = fidelity[key]
            label = key.replace("_vs_", " vs ").replace("_", " ")
            lines.append(f"| {label} | {f['mean_mm']} | {f['max_mm']} | {f['final_mean_mm']} |")
    lines += ["", f"servo and exact delay each new command by twin.command_delay_s = {1000 * delay:g} ms "
                  "(config/twin); 'servo without delay' does not."]
    if "served_sim_rtf" in fidelity:
        lines += ["", f"Served: sim_robot + franka node, commands over DDS at 10 Hz; franky-sim real-time factor "
                      f"per sequence {fidelity['served_sim_rtf']}."]
    if "policies" in result:
        lines += ["", f"Policies ({args.episodes} seeded episodes each, {result['policies_s']} s; an episode ends "
                  f"at success, failure or {default.max_steps} ticks):", "",
                  "| policy | failure rate | success rate | mean return | mean length |", "|---|---|---|---|---|"]
        for name, p in result["policies"].items():
            lines.append(f"| {name} | {p['failure_rate']:.2f} | {p['success_rate']:.2f} | "
                         f"{p['mean_return']:.1f} | {p['mean_length']:.1f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""How fast the Fragile Push Wall training twin steps (env steps/s), and what its policies do.

Writes benchmarks/results/twin_speed.json and .md (with the command that made them).

    python benchmarks/twin_speed.py [--steps 600] [--episodes 20] [--task fragile_push_wall]

Measures, single-threaded:
- env steps/s with uniformly random actions (resets included) for the "fast"
  controller (default) and franky-sim's own controller calls ("franky"), and
  that both give the same trajectory;
- the reset time;
- over `--episodes` seeded episodes: success / failure rates and mean return
  of the scripted expert, the medium expert, a random policy, and the
  failure-data recipe (the default stand-in policy + AR(1) action noise as
  `collect_failure_data` injects it), without and with its goal lure, in
  task-length episodes and in the longer failure-data episodes.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from common import RESULTS, command_line, machine  # first: one thread, private ROS domain

import numpy as np  # noqa: E402

from farl_learner.twin.config import load_twin_config  # noqa: E402
from farl_learner.envs.rollout import run_episode  # noqa: E402
from farl_learner.twin.data import default_failure_policy, lure_point  # noqa: E402
from farl_learner.twin.env import FrankaTwinEnv, measure_steps_per_second  # noqa: E402
from farl_learner.twin.experts import (RecoveryController, TaskExpert, lured, medium_expert,  # noqa: E402
                                      noisy_policy, random_policy)



def policy_stats(env: FrankaTwinEnv, make_policy, episodes: int, seed: int, max_steps: int | None = None) -> dict:
    rows = []
    task_limit = env.max_steps
    env.max_steps = max_steps or task_limit
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            ep = run_episode(env, make_policy(), obs=obs, record=False)
            rows.append((ep.failed, ep.succeeded, ep.length, ep.ret))
    finally:
        env.max_steps = task_limit
    r = np.asarray(rows, dtype=float)
    return {"episodes": episodes, "failure_rate": r[:, 0].mean(), "success_rate": r[:, 1].mean(),
            "mean_length": r[:, 2].mean(), "mean_return": r[:, 3].mean()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="fragile_push_wall")
    parser.add_argument("--steps", type=int, default=600, help="env steps per speed measurement")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per policy (0: skip)")
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
                                "load_avg_1min_at_start": info["load_avg_1min"]}}
    t0 = time.perf_counter()
    fast = FrankaTwinEnv(args.task, controller="fast")
    result["build_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    for s in range(20):
        fast.reset(seed=s)
    result["reset_ms"] = round((time.perf_counter() - t0) / 20 * 1000, 3)
    result["control_period_s"] = fast.control_dt
    result["physics_steps_per_env_step"] = fast.substeps

    franky = FrankaTwinEnv(args.task, controller="franky")
    actions = np.random.default_rng(0).uniform(-1, 1, (20, 3))
    fast.reset(seed=0)
    franky.reset(seed=0)
    diff = max(float(np.max(np.abs(fast.step(a)[0] - franky.step(a)[0]))) for a in actions)
    result["fast_vs_franky_max_obs_diff_20_steps"] = diff

    result["speed"] = {"fast": measure_steps_per_second(fast, args.steps, seed=1),
                       "franky": measure_steps_per_second(franky, max(args.steps // 3, 50), seed=1)}
    for v in result["speed"].values():
        for k in ("seconds", "steps_per_s", "physics_steps_per_s", "real_time_factor", "cpu_seconds",
                  "steps_per_cpu_s"):
            v[k] = round(v[k], 2)

    if args.episodes > 0:
        expert = TaskExpert(fast.config, fast.spec_, twin.expert)
        stand_in = default_failure_policy(fast, twin)
        lurer = RecoveryController(fast.config, fast.spec_, twin.expert, twin.recovery)
        rng = np.random.default_rng(123)
        d = twin.data

        def failure_data_policy(lure_prob: float):
            def make():
                base = stand_in
                if rng.random() < lure_prob:  # the episode is already reset: the lure sees this episode's block
                    base = lured(stand_in, fast.spec_, lure_point(lurer, fast, twin, rng))
                return noisy_policy(base, rng, d.failure_noise_std, d.failure_random_action_prob, 3,
                                    d.failure_noise_correlation)
            return make

        t0 = time.perf_counter()
        result["policies"] = {
            "expert": policy_stats(fast, lambda: expert, args.episodes, 1000),
            "medium_expert": policy_stats(fast, lambda: medium_expert(expert, rng, twin.medium), args.episodes, 1000),
            "random": policy_stats(fast, lambda: random_policy(rng), args.episodes, 1000),
            "failure_data_noise_without_lure": policy_stats(fast, failure_data_policy(0.0), args.episodes, 1000),
            f"failure_data_noise_lure_{d.failure_lure_prob:g}": policy_stats(
                fast, failure_data_policy(d.failure_lure_prob), args.episodes, 1000),
            f"failure_data_noise_without_lure_{d.failure_max_episode_steps}_ticks": policy_stats(
                fast, failure_data_policy(0.0), args.episodes, 1000, d.failure_max_episode_steps),
            f"failure_data_recipe_lure_{d.failure_lure_prob:g}_{d.failure_max_episode_steps}_ticks": policy_stats(
                fast, failure_data_policy(d.failure_lure_prob), args.episodes, 1000, d.failure_max_episode_steps),
        }
        result["policies_s"] = round(time.perf_counter() - t0, 1)
    result["machine"]["load_avg_1min_at_end"] = os.getloadavg()[0]

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Twin speed: {args.task}", "", f"Command: `{result['command']}`", "",
             f"Machine: {result['machine']['cpus']} CPUs (shared; 1-min load {result['machine']['load_avg_1min_at_start']:.2f}"
             f" at start, {result['machine']['load_avg_1min_at_end']:.2f} at end), single-threaded, Python "
             f"{result['machine']['python']}.", "",
             f"One env step = {result['physics_steps_per_env_step']} MuJoCo steps of 1 ms "
             f"(control period {result['control_period_s']} s).", "",
             "| controller | env steps/s (wall) | env steps per CPU-s | physics steps/s (wall) | x real time (wall) |",
             "|---|---|---|---|---|"]
    for name, v in result["speed"].items():
        lines.append(f"| {name} | {v['steps_per_s']:.1f} | {v['steps_per_cpu_s']:.1f} | "
                     f"{v['physics_steps_per_s']:.0f} | {v['real_time_factor']:.1f} |")
    lines += ["", "Wall-clock rates drop when other jobs share the CPU (see the load above); per CPU-second "
              "is what one free core gives."]
    lines += ["", f"Build {result['build_s']} s, reset {result['reset_ms']} ms; fast vs franky max |obs diff| over 20 "
              f"random steps: {result['fast_vs_franky_max_obs_diff_20_steps']:.3g}."]
    if "policies" in result:
        lines += ["", f"Policies ({args.episodes} seeded episodes each, {result['policies_s']} s; an episode ends "
                  f"at success, failure or {fast.max_steps} ticks unless the row says otherwise):", "",
                  "| policy | failure rate | success rate | mean return | mean length |",
                  "|---|---|---|---|---|"]
        for name, p in result["policies"].items():
            lines.append(f"| {name} | {p['failure_rate']:.2f} | {p['success_rate']:.2f} | "
                         f"{p['mean_return']:.1f} | {p['mean_length']:.1f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""How often the twin's scripted demonstrators succeed and fail: the first check of a task's tuning.

A task is worth pretraining and benchmarking only if its scripted expert
succeeds (the demos are learnable) and a noisier, cruder demonstrator fails
now and then (the baseline has failures for the shield to cut). Per task,
seeded episodes of: the expert; the medium demonstrator (cruder push
control + noise, `config/twin/<task>.yaml` `medium`); and the expert with the
stack's exploration noise (AR(1), sigma 0.25, rho = the task's
exploration.noise_correlation). Writes benchmarks/results/twin_experts_<task>.json.

    python benchmarks/twin_experts.py <task> [--episodes 30] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import time

from common import RESULTS, command_line  # first: private ROS domain, loopback only

import numpy as np  # noqa: E402

from farl_learner.twin.config import load_twin_config, make_twin_env  # noqa: E402
from farl_learner.twin.data import run_policy_episode  # noqa: E402
from farl_learner.twin.experts import TaskExpert, medium_expert, noisy_policy  # noqa: E402

EXPLORATION_STD = 0.25  # the cloned policies' sigma is about this (action units)


def measure(task: str, episodes: int, seed: int) -> dict:
    twin = load_twin_config(task)
    env = make_twin_env(task, twin)
    expert = TaskExpert(env.config, env.spec_, twin.expert)
    rho = env.config.exploration.noise_correlation
    rng = np.random.default_rng(seed)
    makers = {
        "expert": lambda: expert,
        "medium": lambda: medium_expert(expert, rng, twin.medium, env.config),
        "expert_with_exploration_noise": lambda: noisy_policy(expert, rng, EXPLORATION_STD, 0.0,
                                                              env.spec_.action_dim, rho),
    }
    out = {}
    for name, make in makers.items():
        started = time.process_time()
        eps = [run_policy_episode(env, make(), 1000 * (seed + 1) + i) for i in range(episodes)]
        out[name] = {"episodes": episodes, "success_rate": float(np.mean([e.succeeded for e in eps])),
                     "failure_rate": float(np.mean([e.failed for e in eps])),
                     "mean_length": float(np.mean([e.length for e in eps])),
                     "cpu_seconds": round(time.process_time() - started, 1)}
        print(f"{task} {name}: success {out[name]['success_rate']:.0%}, failure {out[name]['failure_rate']:.0%}, "
              f"{out[name]['mean_length']:.0f} ticks", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = {"command": command_line(), "task": args.task, "seed": args.seed,
               "exploration_std": EXPLORATION_STD, **measure(args.task, args.episodes, args.seed)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"twin_experts_{args.task}.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

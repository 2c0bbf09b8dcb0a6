"""Where FARL's recovery failures come from: replay each one from H + 1 steps before it, four ways.

FailureBench counts a *recovery failure* when every step in the H + 1 before a
failure was pi_rec's. That can mean the shield fired too late (nothing could
have saved the state) or that pi_rec drove into the failure. This script runs
the shielded loop of a model folder (optionally with a fine-tuned task policy)
until it has `--failures` recovery failures, and replays each from the state
H + 1 steps before it with: pi_task alone (sampled), pi_rec alone (its mean),
the task's scripted recovery controller, and the shield again. If the
scripted controller saves what pi_rec does not, pi_rec is the problem.

    python benchmarks/failurebench_recovery_check.py fragile_push_wall --model <folder> \
        [--task-policy <finetune run>/task_policy.pt] [--failures 15]

Prints the table and writes it to benchmarks/results/failurebench_recovery_check_<task>.md.
"""
from __future__ import annotations

import argparse
import sys
from collections import deque
from pathlib import Path

from common import RESULTS, command_line, machine  # first: one thread, private ROS domain

import numpy as np  # noqa: E402
import torch  # noqa: E402

from farl_learner.data.config import load_data_config  # noqa: E402
from farl_learner.data.recovery import recovery_controller  # noqa: E402
from farl_learner.envs import make_env  # noqa: E402
from farl_learner.envs.spec import load_task_spec  # noqa: E402
from farl_learner.shield import Shield  # noqa: E402
from farl_learner.training.checkpoint import load_checkpoint  # noqa: E402
from farl_learner.training.finetune import load_pretrained  # noqa: E402

WAYS = ("task", "recovery", "scripted", "shield")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task")
    parser.add_argument("--model", required=True, help="pretrained model folder (farl pretrain / farl bench)")
    parser.add_argument("--task-policy", default=None, help="a fine-tuned task_policy.pt to use instead")
    parser.add_argument("--failures", type=int, default=15)
    parser.add_argument("--max-episodes", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = load_pretrained(args.model, args.task)
    policy = load_checkpoint(args.task_policy, "policy")[0] if args.task_policy else models["policy"]
    calibration = models["calibration"]
    horizon = int(calibration["horizon"])
    shield = Shield(policy, models["recovery"], models["world_model"], horizon, float(calibration["gamma_risk"]),
                    float(calibration["epsilon_safe"]))
    env = make_env(args.task, seed=args.seed + 10, terminate_on_failure=True)
    scripted = recovery_controller(env, load_data_config(load_task_spec(args.task)).recovery)
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)

    def act(way: str, obs: np.ndarray) -> np.ndarray:
        o = torch.as_tensor(obs, dtype=torch.float32)[None]
        with torch.no_grad():
            proposal = policy.distribution(o).sample().numpy()[0]
            if way == "task":
                return proposal
            if way == "recovery":
                return models["recovery"](o).clamp(-1, 1).numpy()[0]
            if way == "scripted":
                return scripted(obs)
            return shield.decide(obs, proposal).action

    def fails_from(snapshot, way: str) -> bool:
        obs = env.restore(snapshot)
        for _ in range(2 * (horizon + 1)):
            obs, _, terminated, truncated, info = env.step(np.clip(act(way, obs), -1, 1))
            if info.get("failure"):
                return True
            if terminated or truncated:
                return False
        return False

    replays = {way: [] for way in WAYS}
    episodes = failures = 0
    while len(replays["task"]) < args.failures and episodes < args.max_episodes:
        obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
        episodes += 1
        snapshots, recovery_only = deque(maxlen=horizon + 1), deque(maxlen=horizon + 1)
        for _ in range(env.max_episode_steps):
            snapshots.append(env.snapshot())
            decision = shield.decide(obs, act("task", obs))
            recovery_only.append(bool(decision.triggered))
            obs, _, terminated, truncated, info = env.step(np.clip(decision.action, -1, 1))
            if info.get("failure"):
                failures += 1
                if len(snapshots) == horizon + 1 and all(recovery_only):
                    for way in WAYS:
                        replays[way].append(fails_from(snapshots[0], way))
                break
            if terminated or truncated:
                break
        print(f"episode {episodes}: {failures} failures, {len(replays['task'])} recovery failures replayed",
              file=sys.stderr, flush=True)

    n = len(replays["task"])
    lines = [f"# Where FARL's recovery failures come from ({args.task})", "",
             f"Command: `{command_line()}`", "", f"Machine: {machine()}", "",
             f"{episodes} shielded episodes, {failures} failures, {n} of them recovery failures (H + 1 = "
             f"{horizon + 1} steps of pi_rec only). Each replayed from H + 1 steps before it for 2 (H + 1) steps:", "",
             "| replayed with | fails again |", "|---|---|"]
    for way in WAYS:
        lines.append(f"| {way} | {sum(replays[way])} of {n} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (RESULTS / f"failurebench_recovery_check_{args.task}.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

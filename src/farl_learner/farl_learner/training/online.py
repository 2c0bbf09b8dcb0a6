"""The online phase: FARL (shield on) and Uni-O4 (shield off) are the same loop.

Read top to bottom like CleanRL's PPO:

    for every step:
        a_task ~ pi_task(s)
        shield: C_H of a_task in the world model; if C_H > eps_safe, a = pi_rec(s)
        execute a, store (s, a, log pi_task(a|s), r, s', terminated)
        every num_steps steps: PPO update of pi_task on the stored (executed) transitions

The stored action is the one executed. When the shield swapped in the
recovery action, PPO sees it as an off-policy sample of pi_task with its
log-probability under pi_task at collection time, so its ratio starts at 1
and is clipped like any other - this is how FARL's "advantage correction"
enters the update: the safer action's (typically higher) advantage pulls
pi_task toward it. pi_rec and the world model are frozen.

Counted (the paper's metrics and the shield's own): failure episodes, failure
state-action pairs (cost = 1 steps), shield triggers, and shield misses - a
failure whose preceding H+1 steps include a task action the shield let through
(C_H <= eps_safe). Failures with only recovery actions in that window are
recovery failures. Needless triggers need a counterfactual the real loop
cannot see; they are measured offline on held-out data (risk.calibrate_epsilon)
or with `count_needless=True` in simulation (replays pi_task from a snapshot).
"""
from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Callable

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from ..agents.ppo import Rollout, make_optimizer, ppo_update
from ..config import PPOConfig
from ..models import GaussianPolicy, ValueNetwork
from ..shield import RECOVERY, TASK, Shield


@dataclass
class OnlineCounters:
    steps: int = 0
    episodes: int = 0
    failure_episodes: int = 0
    failure_steps: int = 0  # failure state-action pairs (the real-robot metric of the paper)
    success_episodes: int = 0
    shield_triggers: int = 0
    shield_misses: int = 0  # failures with a let-through task action in the H+1 steps before
    shield_miss_steps: int = 0  # let-through steps followed by a failure within H steps
    recovery_failures: int = 0  # failures with only recovery actions in that window
    needless_triggers: int = 0  # only counted with count_needless (simulation)
    needless_checked: int = 0
    updates: int = 0
    episode_returns: list = field(default_factory=list)
    episode_failed: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def evaluate(env: gym.Env, policy: GaussianPolicy, episodes: int, seed: int) -> dict[str, float]:
    """Deterministic (mean-action) episodes without the shield: the policy's own return and failure rate."""
    returns, failures, successes = [], 0, 0
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done, failed, succeeded = 0.0, False, False, False
        while not done:
            action = policy(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            failed |= bool(info.get("failure", False))
            succeeded |= bool(info.get("success", False))
            done = terminated or truncated
        returns.append(total)
        failures += failed
        successes += succeeded
    return {"mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
            "failure_rate": failures / episodes, "success_rate": successes / episodes}


def run_online(env: gym.Env, policy: GaussianPolicy, value: ValueNetwork, ppo: PPOConfig, total_steps: int,
               seed: int, shield: Shield | None = None, progress: bool = True, count_needless: bool = False,
               on_update: Callable[[GaussianPolicy, int], None] | None = None) -> tuple[OnlineCounters, list[dict]]:
    """Fine-tune `policy` (in place) for `total_steps`; returns the counters and per-update PPO statistics."""
    torch.manual_seed(seed)
    optimizer = make_optimizer(policy, value, ppo)
    counters, updates = OnlineCounters(), []
    horizon = shield.horizon if shield is not None else 0
    window: deque = deque(maxlen=horizon + 1)  # sources of the last H+1 executed steps
    rollout = Rollout()
    obs, _ = env.reset(seed=seed)
    episode_return, episode_failed = 0.0, False

    bar = tqdm(total=total_steps, desc="finetune" if shield is None else "finetune (shield)",
               disable=not progress, leave=False)
    for _step in range(total_steps):
        # 1. Propose, shield, execute.
        obs_t = torch.as_tensor(obs, dtype=torch.float32)[None]
        with torch.no_grad():
            task_action = policy.distribution(obs_t).sample()[0].numpy()
        action, source = task_action, TASK
        if shield is not None:
            decision = shield.decide(obs, task_action)
            source = decision.source
            if decision.triggered:
                action = decision.action
                counters.shield_triggers += 1
                if count_needless:
                    counters.needless_checked += 1
                    counters.needless_triggers += _task_policy_would_be_safe(env, policy, horizon, task_action)
        with torch.no_grad():
            logprob = float(policy.log_prob(obs_t, torch.as_tensor(action)[None])[0])
        next_obs, reward, terminated, truncated, info = env.step(np.clip(action, -1.0, 1.0))
        episode_end = terminated or truncated
        rollout.add(obs, action, logprob, reward, next_obs, terminated, episode_end)

        # 2. Count.
        counters.steps += 1
        episode_return += float(reward)
        window.append(source)
        if info.get("cost", 0.0) > 0:
            counters.failure_steps += 1
            if shield is not None:
                let_through = sum(s == TASK for s in window)
                counters.shield_miss_steps += let_through
                counters.shield_misses += let_through > 0
                counters.recovery_failures += let_through == 0
        episode_failed |= bool(info.get("failure", False))
        if episode_end:
            counters.episodes += 1
            counters.failure_episodes += episode_failed
            counters.success_episodes += bool(info.get("success", False))
            counters.episode_returns.append(episode_return)
            counters.episode_failed.append(episode_failed)
            next_obs, _ = env.reset()
            episode_return, episode_failed = 0.0, False
            window.clear()
        obs = next_obs

        # 3. Learn.
        if len(rollout) == ppo.num_steps:
            stats = ppo_update(policy, value, optimizer, rollout, ppo)
            counters.updates += 1
            updates.append({"step": counters.steps, **stats})
            rollout = Rollout()
            if on_update is not None:
                on_update(policy, counters.updates)
        bar.update(1)
        if counters.steps % 1000 == 0:
            bar.set_postfix(episodes=counters.episodes, failures=counters.failure_episodes,
                            triggers=counters.shield_triggers)
    bar.close()
    return counters, updates


def _task_policy_would_be_safe(env: gym.Env, policy: GaussianPolicy, horizon: int, task_action: np.ndarray) -> bool:
    """Simulation only: replay a_task then pi_task's mean for H steps from a snapshot; True if no failure.

    Needs an env with snapshot()/restore() (FailureBench); the env is restored
    to the exact state afterwards, so the real episode is unaffected.
    """
    base = env.unwrapped
    snapshot = base.snapshot()
    safe = True
    try:
        action = np.clip(task_action, -1.0, 1.0)
        for _ in range(horizon + 1):
            obs, _, terminated, truncated, info = env.step(action)
            if info.get("cost", 0.0) > 0:
                safe = False
                break
            if terminated or truncated:
                break
            with torch.no_grad():
                action = policy(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
    finally:
        base.restore(snapshot)
    return safe

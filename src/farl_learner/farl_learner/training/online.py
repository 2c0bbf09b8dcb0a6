"""The online phase: FARL (shield on) and Uni-O4 (shield off) are the same loop.

Read top to bottom like CleanRL's PPO (N parallel environments, one core):

    for every step of all N envs:
        a_task ~ pi_task(s)                          [N states, one batched forward pass]
        shield: C_H of a_task in the world model     [one batched H-step rollout for all N]
                if C_H > eps_safe, a = pi_rec(s)
        execute a in each env, store (s, a, log pi_task(a|s), r, s', terminated) in that env's segment
        every num_steps steps in all: PPO update of pi_task on the stored (executed) transitions

The stored action is the one executed. When the shield swapped in the
recovery action, PPO sees it as an off-policy sample of pi_task with its
log-probability under pi_task at collection time, so its ratio starts at 1
and is clipped like any other - this is how FARL's "advantage correction"
enters the update: the safer action's (typically higher) advantage pulls
pi_task toward it. `ppo.recovery_pg_weight` scales that pull (1 = the
paper's update; 0 = recovery steps only shape the value function and the
advantages around them); `ppo.trigger_penalty` > 0 replaces it by learning
on the refused proposal with the penalty subtracted from the step's reward.
pi_rec and the world model are frozen.

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
from typing import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from ..agents.ppo import PPOLearner
from ..agents.ppo import Rollout
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
    episode_end_steps: list = field(default_factory=list)  # counters.steps when each episode ended (curves)

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


def run_online(env: gym.Env | Sequence[gym.Env], policy: GaussianPolicy, value: ValueNetwork, ppo: PPOConfig,
               total_steps: int, seed: int, shield: Shield | None = None, progress: bool = True,
               count_needless: bool = False, on_update: Callable[[GaussianPolicy, int], None] | None = None,
               on_progress: Callable[[OnlineCounters], None] | None = None, progress_every: int = 0,
               learner=None) -> tuple[OnlineCounters, list[dict]]:
    """Fine-tune `policy` (in place) for `total_steps` environment steps; returns the counters and PPO statistics.

    `env` is one environment or N of them (an `EnvBatch`'s list): every loop
    iteration steps all N once, so the policy, the log-probabilities and the
    shield (`Shield.decide_batch`, one world-model rollout for all N states)
    run batched. Each env keeps its own rollout segment; a PPO update takes
    `ppo.num_steps` transitions in all (num_steps // N per env), so the update
    size does not depend on N. When fewer than N steps remain, only the first
    envs step, so exactly `total_steps` steps are taken.
    `on_progress(counters)` is called every `progress_every` steps (learning curves).
    `learner` makes the updates (default PPO: Uni-O4 and FARL); the safe-RL baselines pass theirs
    (agents/constrained.py), which also get the costs of the episodes that ended since the last update.
    """
    envs = EnvBatch(list(env) if isinstance(env, (list, tuple)) else [env])
    n = len(envs)
    torch.manual_seed(seed)
    learner = learner if learner is not None else PPOLearner(policy, value, ppo)
    counters, updates = OnlineCounters(), []
    horizon = shield.horizon if shield is not None else 0
    windows = [deque(maxlen=horizon + 1) for _ in range(n)]  # sources of each env's last H+1 executed steps
    segment = max(1, ppo.num_steps // n)  # steps per env between updates
    rollouts = [Rollout() for _ in range(n)]
    obs = envs.reset(seed)
    episode_return, episode_cost, episode_failed = np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool)
    finished_costs: list[float] = []  # costs of the episodes that ended since the last update
    next_report = progress_every

    bar = tqdm(total=total_steps, desc="finetune" if shield is None else "finetune (shield)",
               disable=not progress, leave=False)
    while counters.steps < total_steps:
        # 1. Propose (batched), shield (one batched rollout), execute.
        active = min(n, total_steps - counters.steps)  # all N but on a last, partial round
        obs_t = torch.as_tensor(obs[:active], dtype=torch.float32)
        with torch.no_grad():
            task_action = policy.distribution(obs_t).sample().numpy()
        action, triggered = task_action, np.zeros(active, dtype=bool)
        if shield is not None:
            decision = shield.decide_batch(obs[:active], task_action)
            triggered = decision.triggered
            action = np.where(triggered[:, None], decision.action, task_action)
            counters.shield_triggers += int(triggered.sum())
            if count_needless:
                for i in np.flatnonzero(triggered):
                    counters.needless_checked += 1
                    counters.needless_triggers += _task_policy_would_be_safe(envs.envs[i], policy, horizon,
                                                                             task_action[i])
        # What PPO learns on: the executed action, or with a trigger penalty the refused proposal.
        punish = triggered if ppo.trigger_penalty > 0.0 else np.zeros(active, dtype=bool)
        learned = np.where(punish[:, None], task_action, action)
        with torch.no_grad():
            logprob = policy.log_prob(obs_t, torch.as_tensor(learned, dtype=torch.float32)).numpy()
        next_obs, reward, terminated, truncated, infos, final_obs = envs.step(np.clip(action, -1.0, 1.0))
        next_obs = np.concatenate([next_obs, obs[active:]]) if active < n else next_obs

        # 2. Store and count, env by env.
        for i in range(active):
            episode_end = bool(terminated[i] or truncated[i])
            rollouts[i].add(obs[i], learned[i], float(logprob[i]), float(reward[i]) - ppo.trigger_penalty * punish[i],
                            final_obs[i], bool(terminated[i]), episode_end,
                            pg_weight=ppo.recovery_pg_weight if triggered[i] and not punish[i] else 1.0,
                            cost=float(infos[i].get("cost", 0.0)))
            counters.steps += 1
            episode_return[i] += float(reward[i])
            episode_cost[i] += float(infos[i].get("cost", 0.0))
            windows[i].append(RECOVERY if triggered[i] else TASK)
            info = infos[i]
            if info.get("cost", 0.0) > 0:
                counters.failure_steps += 1
                if shield is not None:
                    let_through = sum(s == TASK for s in windows[i])
                    counters.shield_miss_steps += let_through
                    counters.shield_misses += let_through > 0
                    counters.recovery_failures += let_through == 0
            episode_failed[i] |= bool(info.get("failure", False))
            if episode_end:
                counters.episodes += 1
                counters.failure_episodes += bool(episode_failed[i])
                counters.success_episodes += bool(info.get("success", False))
                counters.episode_returns.append(float(episode_return[i]))
                counters.episode_failed.append(bool(episode_failed[i]))
                counters.episode_end_steps.append(counters.steps)
                finished_costs.append(float(episode_cost[i]))
                episode_return[i], episode_cost[i], episode_failed[i] = 0.0, 0.0, False
                windows[i].clear()
        obs = next_obs

        # 3. Learn: the N segments, one after the other, are one PPO batch.
        if len(rollouts[0]) >= segment:
            stats = learner.update(join_segments(rollouts), finished_costs)
            finished_costs = []
            counters.updates += 1
            updates.append({"step": counters.steps, **stats})
            rollouts = [Rollout() for _ in range(n)]
            if on_update is not None:
                on_update(policy, counters.updates)
        bar.update(active)
        if progress_every and on_progress is not None and counters.steps >= next_report:
            on_progress(counters)
            next_report += progress_every
        if counters.steps % 1000 < active:
            bar.set_postfix(episodes=counters.episodes, failures=counters.failure_episodes,
                            triggers=counters.shield_triggers)
    bar.close()
    return counters, updates


def join_segments(rollouts: Sequence[Rollout]) -> Rollout:
    """One rollout of N per-env segments in a row, each segment's last step marked as an episode end.

    GAE runs over the joined rollout in order; marking a segment's last step
    as an episode end stops the recursion from running into the next env's
    segment, while `terminated` stays as it was, so an unfinished episode is
    still bootstrapped from V(s') of its own next state, exactly as a single
    env's rollout cut at an update would be.
    """
    joined = Rollout()
    for r in rollouts:
        for k in range(len(r)):
            last = k == len(r) - 1
            joined.add(r.obs[k], r.action[k], r.logprob[k], r.reward[k], r.next_obs[k], r.terminated[k],
                       r.episode_end[k] or last, pg_weight=r.pg_weight[k], cost=r.cost[k])
    return joined


class EnvBatch:
    """N environments stepped one after the other in this process (gymnasium's SyncVectorEnv semantics).

    Equivalent to `gymnasium.vector.SyncVectorEnv(..., autoreset_mode=SAME_STEP)`,
    kept this small instead because the loop needs each env's own `info` dict
    (cost, failure, success at the step a failure ends an episode) and the envs
    themselves (snapshot/restore for needless-trigger counting). An episode
    that ends is reset in the same step: `step` returns the reset observation
    in `obs` and the true last observation in `final_obs`. One core: on 2
    shared cores, subprocess envs would compete with the learner for CPU.
    """

    def __init__(self, envs: Sequence[gym.Env]):
        if not envs:
            raise ValueError("EnvBatch needs at least one env")
        self.envs = list(envs)

    def __len__(self) -> int:
        return len(self.envs)

    def reset(self, seed: int) -> np.ndarray:
        """Env i starts from seed + 1000 i (env 0 from `seed`: one env behaves as before)."""
        return np.stack([np.asarray(e.reset(seed=seed + 1000 * i)[0]) for i, e in enumerate(self.envs)])

    def step(self, actions: np.ndarray):
        """Step the first len(actions) envs (all of them, but on a partial last round)."""
        obs, final_obs, rewards, terminated, truncated, infos = [], [], [], [], [], []
        for env, action in zip(self.envs, actions):
            o, r, term, trunc, info = env.step(action)
            final_obs.append(np.asarray(o))
            if term or trunc:
                o, _ = env.reset()
            obs.append(np.asarray(o))
            rewards.append(r)
            terminated.append(term)
            truncated.append(trunc)
            infos.append(info)
        return (np.stack(obs), np.asarray(rewards, dtype=np.float64), np.asarray(terminated),
                np.asarray(truncated), infos, np.stack(final_obs))


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

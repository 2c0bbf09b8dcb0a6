"""Actors in the training twin: the pretrained policy as the robot side runs it, with or without the shield.

The stack's actor (the shield node, `farl_control.shield.runtime`) samples
a_task ~ pi_task(s) with AR(1)-correlated standard-normal draws
(`farl_common.task_spec.ExplorationNoise`, correlation from the task config),
judges it with C_H and swaps in pi_rec(s) when C_H > eps_safe. `PolicyActor`
and `ShieldedActor` do the same with the torch models in the twin, so that
everything pretraining decides by rollouts - which ensemble member goes online,
whether offline improvement helped, what the policy's own exploration does,
how often the shield fires - is decided on the behaviour the stack will show.

`rollouts(env, actor, episodes, seed)` runs seeded episodes and returns the
stack benchmark's counts (failure episodes, failure state-action pairs,
successes, returns, shield triggers), optionally keeping the episodes
(transitions) and the MuJoCo states a few ticks before each failure (to start
recovery demos from the near-failure states the policy itself reaches).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from farl_common.recovery_hold import RecoveryHold
from farl_common.task_spec import ExplorationNoise

from ..envs.rollout import Episode
from ..models import GaussianPolicy
from ..shield import RECOVERY, Shield


@dataclass(frozen=True)
class ActorStep:
    """One tick of an actor: what was executed, by whom, the risk C_H, and pi_task's proposal.

    The proposal is kept beside the executed action because the online learner
    trains on it where the shield refused it (ppo.trigger_penalty): a caller that
    got only the executed action would have to judge the proposal again.
    """

    action: np.ndarray
    source: str
    risk: float
    proposal: np.ndarray

    def executed(self) -> tuple[np.ndarray, str, float]:
        return self.action, self.source, self.risk


class PolicyActor:
    """pi_task as the shield node runs it: its mean (explore=False) or an AR(1)-correlated sample."""

    def __init__(self, policy: GaussianPolicy, explore: bool, correlation: float = 0.0, seed: int = 0):
        self.policy, self.explore = policy, explore
        self.noise = ExplorationNoise(policy.action_dim, correlation, np.random.default_rng(seed))
        with torch.no_grad():
            self.std = policy.std().numpy().astype(np.float64)

    def reset(self) -> None:
        self.noise.reset()

    @torch.no_grad()
    def propose(self, obs: np.ndarray) -> np.ndarray:
        mean = self.policy(torch.as_tensor(np.asarray(obs, dtype=np.float32))[None])[0].numpy().astype(np.float64)
        sample = mean + self.std * self.noise.sample() if self.explore else mean
        return np.clip(sample, -1.0, 1.0).astype(np.float32)

    def step(self, obs: np.ndarray) -> ActorStep:
        """No shield here: the executed action is the proposal, with risk 0."""
        proposal = self.propose(obs)
        return ActorStep(proposal, "task", 0.0, proposal)

    def act(self, obs: np.ndarray) -> tuple[np.ndarray, str, float]:
        """(executed action, source, C_H)."""
        return self.step(obs).executed()


class ShieldedActor:
    """`PolicyActor` behind the shield: pi_rec's action whenever C_H of the proposal exceeds eps_safe.

    `leak` (data collection in simulation only) lets the task action through
    with that probability when the shield fires: a world model learns what the
    task action does in the states the shield leads to only if it is sometimes
    executed there. `hold` is the shield's hysteresis (risk.recovery_hold_ticks): pi_rec
    keeps control that many ticks after each trigger, as the robot's shield does.
    """

    def __init__(self, actor: PolicyActor, shield: Shield, leak: float = 0.0, seed: int = 0, hold: int = 0):
        self.actor, self.shield, self.leak = actor, shield, leak
        self.hold = RecoveryHold(hold)
        self.rng = np.random.default_rng([seed, 11])

    def reset(self) -> None:
        self.actor.reset()
        self.hold.reset()

    @torch.no_grad()
    def step(self, obs: np.ndarray) -> ActorStep:
        proposal = self.actor.propose(obs)
        decision = self.shield.decide(obs, proposal)
        if decision.triggered and self.leak > 0.0 and self.rng.random() < self.leak:
            self.hold.reset()  # the task action was let through: nothing is held after it
            return ActorStep(decision.task_action, "task", decision.risk, proposal)
        if not self.hold.holds(decision.triggered) or decision.triggered:
            return ActorStep(decision.action, decision.source, decision.risk, proposal)
        held = self.shield.recovery_batch(torch.as_tensor(np.asarray(obs, dtype=np.float32))[None])[0]
        return ActorStep(held.clamp(-1, 1).numpy(), RECOVERY, decision.risk, proposal)

    def act(self, obs: np.ndarray) -> tuple[np.ndarray, str, float]:
        """(executed action, source, C_H)."""
        return self.step(obs).executed()


@dataclass
class RolloutStats:
    """The stack benchmark's counts, from the twin."""

    episodes: int = 0
    successes: int = 0
    failure_episodes: int = 0
    failure_pairs: int = 0
    shield_triggers: int = 0
    steps: int = 0
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    first_trigger_lead: list[int] = field(default_factory=list)
    """Per failure episode with a trigger: ticks from the first trigger to the failure."""

    @property
    def success_rate(self) -> float:
        return self.successes / max(self.episodes, 1)

    @property
    def failure_rate(self) -> float:
        return self.failure_episodes / max(self.episodes, 1)

    def summary(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("returns", "lengths", "first_trigger_lead")}
        out.update(success_rate=self.success_rate, failure_rate=self.failure_rate,
                   mean_return=float(np.mean(self.returns)) if self.returns else float("nan"),
                   mean_length=float(np.mean(self.lengths)) if self.lengths else float("nan"),
                   trigger_rate=self.shield_triggers / max(self.steps, 1))
        return out


@dataclass
class RolloutResult:
    stats: RolloutStats
    episodes: list[Episode]
    near_failure_states: list = field(default_factory=list)
    """(TwinState, obs) pairs `rewind` ticks before a failure, one per failure episode that long."""


def rollouts(env, actor, episodes: int, seed: int, record: bool = False, max_steps: int | None = None,
             rewind: tuple[int, int] | None = None, max_transitions: int | None = None) -> RolloutResult:
    """`episodes` seeded episodes of `actor` (stopping early at `max_transitions` recorded steps).

    Episodes end as on the robot side: success, failure (the task terminates on
    failure), or the time limit (`max_steps` overrides the task's; the last one
    is cut as a timeout when `max_transitions` is reached). With `rewind=(lo, hi)`
    the twin's state `k` ticks before each failure (k uniform in [lo, hi]) is
    kept, so recovery demos can start where this actor gets into trouble.
    """
    rng = np.random.default_rng([seed, 7])
    stats, kept, near = RolloutStats(), [], []
    task_limit = env.max_steps
    env.max_steps = int(max_steps or task_limit)
    total = 0
    try:
        for i in range(episodes):
            if max_transitions is not None and total >= max_transitions:
                break
            obs, _ = env.reset(seed=seed + i)
            actor.reset()
            ep = Episode()
            history = [(env.get_state(), obs)] if rewind else []
            first_trigger = None
            while True:
                action, source, _ = actor.act(obs)
                if source == RECOVERY:
                    stats.shield_triggers += 1
                    first_trigger = ep.length if first_trigger is None else first_trigger
                next_obs, reward, terminated, truncated, info = env.step(action)
                ep.ret += reward
                ep.length += 1
                total += 1
                ep.failed |= bool(info["failure"])
                ep.succeeded |= bool(info["success"])
                stats.failure_pairs += int(info["failure"])
                cut = max_transitions is not None and total >= max_transitions
                timeout = bool(truncated or (cut and not terminated))
                if record:
                    ep.add(obs, action, reward, info["cost"], terminated, timeout, next_obs)
                obs = next_obs
                if rewind and not info["failure"]:
                    history.append((env.get_state(), obs))
                if terminated or timeout:
                    ep.terminated = bool(terminated)
                    break
            stats.episodes += 1
            stats.steps += ep.length
            stats.successes += int(ep.succeeded)
            stats.failure_episodes += int(ep.failed)
            stats.returns.append(float(ep.ret))
            stats.lengths.append(ep.length)
            if ep.failed and first_trigger is not None:
                stats.first_trigger_lead.append(ep.length - 1 - first_trigger)
            if ep.failed and rewind:
                k = int(rng.integers(rewind[0], rewind[1] + 1))
                if len(history) > k:
                    near.append(history[len(history) - k])
            if record:
                kept.append(ep)
    finally:
        env.max_steps = task_limit
    return RolloutResult(stats, kept, near)

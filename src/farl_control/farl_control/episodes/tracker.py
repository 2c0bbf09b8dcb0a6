"""Episode bookkeeping for online learning: reward, cost, success, time limit, counts.

Pure logic (no ROS) so the rules are unit-tested and identical wherever they
run. The episode monitor feeds it one `step` per control tick of the actor
(the shield): the observation and action the actor used at tick t, and what
the actor saw at tick t+1 (its observation and the poses it was built from),
which decides r_t, c_t and whether the episode ends. s_{t+1} of one transition
is therefore exactly s of the next one: the learner never mixes the actor's
view of the world with another node's. Failures are counted both ways the paper reports them: failure
*episodes* (simulation tables) and failure *state–action pairs* (real robot).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping

import numpy as np

from farl_common.task_spec import TaskSpec


@dataclass
class Transition:
    obs: list[float]
    action: list[float]          # executed action in [-1, 1]^n (the operator's during an intervention)
    action_task: list[float]     # what pi_task proposed (== action unless the shield fired)
    log_prob: float              # log pi_task(action_task | obs) at the policy that acted
    source: str                  # "task" or "recovery"
    risk: float
    reward: float = 0.0
    cost: float = 0.0
    next_obs: list[float] = field(default_factory=list)
    done: bool = False           # terminal (failure with termination, or success)
    intervention: bool = False   # the operator drove this step: off-policy for the learner


@dataclass
class EpisodeCounts:
    episodes: int = 0
    failure_episodes: int = 0
    failure_pairs: int = 0
    successes: int = 0
    timeouts: int = 0
    interventions: int = 0
    shield_triggers: int = 0
    steps: int = 0


@dataclass
class EpisodeResult:
    episode: int
    reason: str                  # "success" | "failure" | "timeout" | "aborted"
    steps: int
    episode_return: float
    failure_pairs: int
    shield_triggers: int
    interventions: int
    policy_version: int
    transitions: list[Transition]


class EpisodeTracker:
    """One episode at a time; `step` returns an EpisodeResult when the episode ends."""

    def __init__(self, spec: TaskSpec):
        self.spec = spec
        self.counts = EpisodeCounts()
        self.episode = 0
        self.running = False
        self._reset_episode()

    def _reset_episode(self) -> None:
        self.steps = 0
        self.episode_return = 0.0
        self.episode_failure_pairs = 0
        self.episode_triggers = 0
        self.episode_interventions = 0
        self.failed = False
        self.transitions: list[Transition] = []
        self.policy_version = 0

    def start(self) -> int:
        self.episode += 1
        self._reset_episode()
        self.running = True
        return self.episode

    def note_intervention(self) -> None:
        self.counts.interventions += 1
        self.episode_interventions += 1

    def step(self, obs: np.ndarray, action: np.ndarray, action_task: np.ndarray, log_prob: float, source: str,
             risk: float, next_obs: np.ndarray, next_positions: Mapping[str, np.ndarray], failure: bool,
             policy_version: int = 0, intervention: bool = False) -> EpisodeResult | None:
        """Account for the action taken at obs; the actor now sees `next_obs`, built from `next_positions`.

        `intervention`: the operator's twist drove the arm during this step, so `action` is the
        operator's (what was executed), not the shield's proposal.
        """
        if not self.running:
            return None
        success = self.spec.success(next_positions)
        reward = self.spec.reward(next_positions, success, failure)
        cost = 1.0 if failure else 0.0
        self.steps += 1
        self.counts.steps += 1
        self.policy_version = policy_version
        self.episode_return += reward
        if source == "recovery":
            self.episode_triggers += 1
            self.counts.shield_triggers += 1
        if failure:
            self.episode_failure_pairs += 1
            self.counts.failure_pairs += 1
            self.failed = True
        terminal = success or (failure and self.spec.terminate_on_failure)
        self.transitions.append(Transition(
            obs=[float(v) for v in obs], action=[float(v) for v in action],
            action_task=[float(v) for v in action_task], log_prob=float(log_prob), source=source,
            risk=float(risk), reward=reward, cost=cost,
            next_obs=[float(v) for v in np.asarray(next_obs).reshape(-1)], done=terminal,
            intervention=bool(intervention)))
        if failure and self.spec.terminate_on_failure:
            return self._finish("failure")
        if success:
            return self._finish("success")
        if self.steps >= self.spec.max_steps:
            return self._finish("timeout")
        return None

    def abort(self) -> EpisodeResult | None:
        """End the episode without a verdict (operator stop, shutdown)."""
        return self._finish("aborted") if self.running else None

    def _finish(self, reason: str) -> EpisodeResult:
        self.running = False
        self.counts.episodes += 1
        if self.failed:
            self.counts.failure_episodes += 1
        if reason == "success":
            self.counts.successes += 1
        elif reason == "timeout":
            self.counts.timeouts += 1
        return EpisodeResult(self.episode, reason, self.steps, self.episode_return, self.episode_failure_pairs,
                             self.episode_triggers, self.episode_interventions, self.policy_version,
                             self.transitions)

    def counts_dict(self) -> dict:
        return asdict(self.counts)


def transitions_payload(result: EpisodeResult, task: str) -> dict:
    """The JSON body of one /farl/learner/transitions message (one whole episode).

    Layout: {"task", "episode", "reason", "policy_version", "obs": [[...]], "action",
    "action_task", "log_prob", "source", "risk", "reward", "cost", "next_obs", "done", "intervention"},
    every per-step entry a list over the episode's steps in order.
    """
    columns = {name: [getattr(t, name) for t in result.transitions]
               for name in ("obs", "action", "action_task", "log_prob", "source", "risk", "reward", "cost",
                            "next_obs", "done", "intervention")}
    return {"task": task, "episode": result.episode, "reason": result.reason,
            "policy_version": result.policy_version, "episode_return": result.episode_return, **columns}

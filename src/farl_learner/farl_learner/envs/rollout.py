"""Running one episode of a policy in a FailureBench env, optionally recording it."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .experts import PolicyFn
from .failurebench import FailureBenchEnv


@dataclass
class Episode:
    """One episode (or an episode fragment): per-step arrays are filled only when recorded."""

    ret: float = 0.0
    length: int = 0
    failed: bool = False
    succeeded: bool = False
    #: True when the episode ended with `terminated` (failure or success termination).
    terminated: bool = False
    obs: list[np.ndarray] = field(default_factory=list)
    action: list[np.ndarray] = field(default_factory=list)
    reward: list[float] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    done: list[bool] = field(default_factory=list)
    timeout: list[bool] = field(default_factory=list)
    next_obs: list[np.ndarray] = field(default_factory=list)

    def add(self, obs, action, reward, cost, done, timeout, next_obs) -> None:
        self.obs.append(np.asarray(obs, dtype=np.float32))
        self.action.append(np.asarray(action, dtype=np.float32))
        self.reward.append(float(reward))
        self.cost.append(float(cost))
        self.done.append(bool(done))
        self.timeout.append(bool(timeout))
        self.next_obs.append(np.asarray(next_obs, dtype=np.float32))


def run_episode(env: FailureBenchEnv, policy: PolicyFn, obs: np.ndarray | None = None,
                record: bool = False, max_steps: int | None = None) -> Episode:
    """Roll `policy` from `obs` (None: a fresh `env.reset()`) until termination,
    truncation or `max_steps`; a stop by `max_steps` is recorded as a timeout."""
    if obs is None:
        obs, _ = env.reset()
    episode = Episode()
    while True:
        action = policy(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        episode.ret += reward
        episode.length += 1
        episode.failed |= info["failure"]
        episode.succeeded |= info["success"]
        cut = max_steps is not None and episode.length >= max_steps
        timeout = bool(truncated or (cut and not terminated))
        if record:
            episode.add(obs, action, reward, info["cost"], terminated, timeout, next_obs)
        obs = next_obs
        if terminated or timeout:
            episode.terminated = bool(terminated)
            return episode

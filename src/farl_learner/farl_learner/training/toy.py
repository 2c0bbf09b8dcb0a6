"""A one-dimensional FailureBench stand-in: fast enough for unit tests and a laptop smoke run.

`ReachEnv`: obs = [x, target], action = velocity in [-1, 1], x += 0.1 a.
Reward -|x - target| per step; |x| > 1 is a failure (cost 1, terminates by
default); |x - target| < 0.05 is a success. It has the same `info` keys and
snapshot()/restore() as FailureBench, so every algorithm runs on it unchanged.
`toy_datasets()` makes the three offline datasets the way FailureBench does:
noisy expert task demos, scripted recovery from near-boundary states, and
failure data from a noisy policy that drifts outward.
"""
from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from ..agents.transitions import KIND_FAILURE, KIND_RECOVERY, KIND_TASK, Transitions

BOUND, SPEED, TOLERANCE = 1.0, 0.1, 0.05


@dataclass
class ReachSnapshot:
    x: float
    target: float
    steps: int


class ReachEnv(gym.Env):
    """Reach a target on a line without leaving [-1, 1]."""

    def __init__(self, seed: int | None = None, max_episode_steps: int = 25, terminate_on_failure: bool = True,
                 start_range: float = 0.5, target_range: float = 0.8):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.max_episode_steps, self.terminate_on_failure = max_episode_steps, terminate_on_failure
        self.start_range, self.target_range = start_range, target_range
        self.rng = np.random.default_rng(seed)
        self.x, self.target, self.steps = 0.0, 0.0, 0

    def _obs(self) -> np.ndarray:
        return np.array([self.x, self.target], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.x = float(self.rng.uniform(-self.start_range, self.start_range))
        self.target = float(self.rng.uniform(-self.target_range, self.target_range))
        if options and "x" in options:
            self.x = float(options["x"])
        self.steps = 0
        return self._obs(), {"cost": 0.0, "failure": False, "success": False}

    def step(self, action):
        self.x += SPEED * float(np.clip(np.asarray(action).reshape(-1)[0], -1.0, 1.0))
        self.steps += 1
        failure = abs(self.x) > BOUND
        success = abs(self.x - self.target) < TOLERANCE
        terminated = failure and self.terminate_on_failure
        truncated = not terminated and self.steps >= self.max_episode_steps
        info = {"cost": float(failure), "failure": failure, "success": success}
        return self._obs(), -abs(self.x - self.target), terminated, truncated, info

    def snapshot(self) -> ReachSnapshot:
        return ReachSnapshot(self.x, self.target, self.steps)

    def restore(self, snap: ReachSnapshot) -> np.ndarray:
        self.x, self.target, self.steps = snap.x, snap.target, snap.steps
        return self._obs()


def expert(obs: np.ndarray) -> np.ndarray:
    """Go to the target at full speed, slowing down on the last stretch."""
    return np.clip([(obs[1] - obs[0]) / SPEED], -1.0, 1.0).astype(np.float32)


def _collect(env: ReachEnv, policy, episodes: int, kind: int, rng: np.random.Generator,
             start: tuple[float, float] | None = None, first_id: int = 0) -> Transitions:
    rows: dict[str, list] = {k: [] for k in ("obs", "action", "reward", "cost", "done", "timeout", "kind",
                                             "episode_id", "next_obs")}
    for episode in range(episodes):
        options = {"x": float(rng.choice([-1, 1]) * rng.uniform(*start))} if start else None
        obs, _ = env.reset(seed=int(rng.integers(1 << 30)), options=options)
        done = False
        while not done:
            action = np.clip(policy(obs), -1.0, 1.0)
            next_obs, reward, terminated, truncated, info = env.step(action)
            for key, value in (("obs", obs), ("action", action), ("reward", reward), ("cost", info["cost"]),
                               ("done", terminated), ("timeout", truncated), ("kind", kind),
                               ("episode_id", first_id + episode), ("next_obs", next_obs)):
                rows[key].append(value)
            obs, done = next_obs, terminated or truncated
    return Transitions.from_arrays({k: np.asarray(v) for k, v in rows.items()})


def toy_datasets(seed: int = 0, task_episodes: int = 20, recovery_episodes: int = 40,
                 failure_episodes: int = 150) -> dict[str, Transitions]:
    """task / recovery / failure datasets of ReachEnv, as pretrain() takes them."""
    rng = np.random.default_rng(seed)
    env = ReachEnv(seed=seed)

    def noisy_expert(obs):
        return expert(obs) + rng.normal(0, 0.3, 1)

    recovery_env = ReachEnv(seed=seed + 1, max_episode_steps=8)

    def recover(obs):  # back toward the middle, whatever the target
        return np.array([-np.sign(obs[0])], dtype=np.float32)

    def drifter(obs):  # a noisy policy that sometimes pushes outward
        outward = np.sign(obs[0]) if obs[0] != 0 else 1.0
        return expert(obs) + rng.normal(0, 0.5, 1) + (2.0 * outward if rng.random() < 0.7 else 0.0)

    return {
        "task": _collect(env, noisy_expert, task_episodes, KIND_TASK, rng),
        "recovery": _collect(recovery_env, recover, recovery_episodes, KIND_RECOVERY, rng, start=(0.8, 0.98)),
        "failure": _collect(env, drifter, failure_episodes, KIND_FAILURE, rng),
    }

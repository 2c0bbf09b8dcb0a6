"""What a learning agent sees and does in a task: observation layout, action
scaling, episode rules and reward.

ROS-free and torch-free, so the training twin (farl_learner), the shield node
and the episode monitor (farl_control) build the observation and compute the
reward with the very same code from the same config section — a policy trained
in the twin sees on the robot exactly the vector it was trained on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from farl_common.task_config import TCP, SuccessConfig, TaskConfig

_AXES = {"x": 0, "y": 1, "z": 2}
__all__ = ["TCP", "TaskSpec", "ObservationField", "RewardTerm", "ExplorationNoise"]


@dataclass(frozen=True)
class ObservationField:
    source: str               # "tcp" or a scene object name
    dims: tuple[int, ...]     # indices into the source's position
    quantity: str = "position"  # or "velocity": finite difference between two control ticks


@dataclass(frozen=True)
class RewardTerm:
    source: str
    to: str
    dims: tuple[int, ...]
    weight: float

    def value(self, positions: Mapping[str, np.ndarray]) -> float:
        a = np.asarray(positions[self.source], dtype=np.float64)[list(self.dims)]
        b = np.asarray(positions[self.to], dtype=np.float64)[list(self.dims)]
        d = a - b
        distance = float(np.hypot(d[0], d[1])) if len(d) == 2 else float(np.linalg.norm(d))
        return self.weight * distance


@dataclass(frozen=True)
class TaskSpec:
    task: str
    fields: tuple[ObservationField, ...]
    action_scale: tuple[float, float, float]
    max_steps: int
    terminate_on_failure: bool
    reward_terms: tuple[RewardTerm, ...]
    success_bonus: float
    pushed_object: str
    """The object the success test is about (the pushed block, the ball)."""
    success_test: SuccessConfig
    failure_penalty: float = 0.0
    exploration_correlation: float = 0.0
    """AR(1) coefficient of the actor's exploration noise (0 = white; see `ExplorationNoise`)."""
    control_period_s: float = 0.1
    """Time between two control ticks (1 / control.rate_hz): the twin's step and the stack's tick."""

    @property
    def target(self) -> str | None:
        return self.success_test.target

    @property
    def success_tolerance(self) -> float | None:
        return self.success_test.tolerance

    @property
    def obs_dim(self) -> int:
        return sum(len(f.dims) for f in self.fields)

    @property
    def action_dim(self) -> int:
        return len(self.action_scale)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.source for f in self.fields))

    @property
    def required_sources(self) -> tuple[str, ...]:
        """Every position the observation, the reward and the success test read."""
        names = [*self.sources, self.pushed_object, *(n for n in [self.target] if n is not None)]
        names += [name for t in self.reward_terms for name in (t.source, t.to)]
        return tuple(dict.fromkeys(names))

    @property
    def has_velocity(self) -> bool:
        """Whether the observation needs the previous tick's positions (a `velocity` field)."""
        return any(f.quantity == "velocity" for f in self.fields)

    def layout(self) -> list[str]:
        """Names of the observation entries, e.g. ['tcp.x', …, 'ball.vx'] (for manifests)."""
        inverse = {v: k for k, v in _AXES.items()}
        prefix = {"position": "", "velocity": "v"}
        return [f"{f.source}.{prefix[f.quantity]}{inverse[d]}" for f in self.fields for d in f.dims]

    def build_observation(self, positions: Mapping[str, np.ndarray],
                          previous: Mapping[str, np.ndarray] | None = None,
                          dt: float | Mapping[str, float] | None = None) -> np.ndarray:
        """positions: source name → xyz position now. Raises KeyError for a missing source.

        A `velocity` field is (positions − previous) / dt: previous are the
        positions of the last control tick, dt the time between the two (default: one
        control period), either one figure or one per source (`velocity_intervals`:
        the time between the two pose *samples*, which on the robot is not the time
        between the ticks). The twin, the shield node and the demo converter all
        difference the same two ticks, so the policy sees on the robot the velocity it
        was trained on. Without `previous` (the first tick of an episode, when
        everything is at rest after the reset) a velocity is zero.
        """
        def interval(source: str) -> float:
            value = (dt.get(source, self.control_period_s) if isinstance(dt, Mapping)
                     else self.control_period_s if dt is None else dt)
            if float(value) <= 0.0:
                raise ValueError(f"dt must be > 0, got {value} for {source!r}")
            return float(value)

        parts = []
        for f in self.fields:
            now = np.asarray(positions[f.source], dtype=np.float64)[list(f.dims)]
            if f.quantity == "position":
                parts.append(now)
            elif previous is None or f.source not in previous:
                parts.append(np.zeros_like(now))
            else:
                parts.append((now - np.asarray(previous[f.source], dtype=np.float64)[list(f.dims)])
                             / interval(f.source))
        return np.concatenate(parts).astype(np.float32)

    def velocity_intervals(self, sampled: Mapping[str, float], previously_sampled: Mapping[str, float],
                           fallback: float) -> dict[str, float]:
        """Per source, the time between the two pose samples a velocity differences.

        Poses arrive at their own rate (30 Hz from the simulator or a camera) and a tick
        uses the newest, so two ticks 0.1 s apart can difference poses taken 0.067 or
        0.133 s apart: dividing by the ticks' interval put ±33 % of noise on every
        velocity, which the world model's rollout then carried H steps on. A source
        without both sample times (an unstamped pose) uses `fallback`, the ticks'
        interval. Floored at half a control period, so two poses stamped almost
        together cannot blow a velocity up.
        """
        floor = 0.5 * self.control_period_s
        out = {}
        for source, now in sampled.items():
            before = previously_sampled.get(source)
            span = now - before if (before is not None and before > 0.0 and now > 0.0) else fallback
            out[source] = max(float(span), floor)
        return out

    def action_to_velocity(self, action: np.ndarray) -> np.ndarray:
        """Policy action in [-1, 1]^n → TCP linear velocity (m/s)."""
        return np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0) * np.asarray(self.action_scale)

    def velocity_to_action(self, velocity: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(velocity, dtype=np.float64) / np.asarray(self.action_scale), -1.0, 1.0)

    def success(self, positions: Mapping[str, np.ndarray]) -> bool:
        """The task file's success test (`success.kind`) on these positions."""
        a = np.asarray(positions[self.pushed_object])
        test = self.success_test
        if test.kind == "inside_region":
            return test.region.contains(float(a[0]), float(a[1]))  # type: ignore[union-attr]
        b = np.asarray(positions[test.target])
        return float(np.hypot(a[0] - b[0], a[1] - b[1])) <= test.tolerance  # type: ignore[operator]

    def reward(self, positions: Mapping[str, np.ndarray], success: bool, failure: bool = False) -> float:
        """The task file's reward: its dense distance terms, a bonus on success, a penalty on failure.

        The penalty makes a failure cost more than the steps it cuts short: with a
        per-step reward below zero and episodes that end at a failure, failing
        early would otherwise *raise* the return (an intervention is what the
        task exists to avoid).
        """
        dense = 0.0
        for term in self.reward_terms:
            dense += term.value(positions)
        return dense + (self.success_bonus if success else 0.0) - (self.failure_penalty if failure else 0.0)

    @staticmethod
    def from_config(config: TaskConfig) -> "TaskSpec":
        """The runtime view of the task file's observation, action, episode, exploration, success and reward."""
        return TaskSpec(
            task=config.task,
            fields=tuple(ObservationField(f.source, tuple(_AXES[d] for d in f.dims), f.quantity)
                         for f in config.observation.fields),
            control_period_s=1.0 / config.control.rate_hz,
            action_scale=config.action.linear_velocity_scale,
            max_steps=config.episode.max_steps,
            terminate_on_failure=config.episode.terminate_on_failure,
            reward_terms=tuple(RewardTerm(t.source, t.to, tuple(_AXES[d] for d in t.dims), t.weight)
                               for t in config.reward.terms),
            success_bonus=config.reward.success_bonus,
            failure_penalty=config.reward.failure_penalty,
            exploration_correlation=config.exploration.noise_correlation,
            pushed_object=config.success.object,
            success_test=config.success,
        )


class ExplorationNoise:
    """Temporally correlated sampling of the policy's own Gaussian: a ~ N(mu(s), sigma^2) at every step.

    z_t = rho z_{t-1} + sqrt(1 - rho^2) eps_t,  eps_t ~ N(0, I),  a_t = mu(s_t) + sigma * z_t.

    Each z_t is standard normal, so every executed action is distributed
    exactly as pi(.|s_t) and its log-probability (what PPO's ratio uses) is the
    policy's own; only successive samples are correlated. White noise (rho = 0)
    at a cloned policy's sigma is undone by a closed-loop pusher one tick
    later, so it explores little and almost never reaches a failure; drifts
    that last a few ticks (rho ~ 0.9) are how an imperfect policy actually
    goes wrong. `reset()` at every episode start.
    """

    def __init__(self, action_dim: int, correlation: float, rng: np.random.Generator):
        if not 0.0 <= correlation < 1.0:
            raise ValueError(f"correlation must be in [0, 1), got {correlation}")
        self.action_dim, self.rho, self.rng = action_dim, float(correlation), rng
        self.z: np.ndarray | None = None

    def reset(self) -> None:
        self.z = None

    def sample(self) -> np.ndarray:
        eps = self.rng.standard_normal(self.action_dim)
        self.z = eps if self.z is None else self.rho * self.z + np.sqrt(1.0 - self.rho**2) * eps
        return self.z.copy()

"""Scripted experts of the FailureBench tasks (Meta-World's hand-written policies).

The expert defines 100 on the normalized-return scale and, with noise, is the
"medium" expert that produces the task demos. A policy here is any callable
obs (39,) -> action (4,) in [-1, 1].
"""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
from metaworld.policies import SawyerPushV3Policy, SawyerPushWallV3Policy, SawyerSoccerV3Policy

#: obs -> action in [-1, 1]^4; the policy interface used across FailureBench.
PolicyFn = Callable[[np.ndarray], np.ndarray]

#: Goal position in the observation; experts read their target from here.
GOAL = slice(36, 39)

_EXPERT_CLASSES = {
    "push": SawyerPushV3Policy,
    "soccer": SawyerSoccerV3Policy,
    "push_wall": SawyerPushWallV3Policy,
}



#: The experts stop moving once the object is this close to the goal (m),
#: inside every task's success radius (push 0.05, soccer and push-wall 0.07).
HOLD_RADIUS = 0.04
OBJ = slice(4, 7)


def expert_policy(name: str) -> PolicyFn:
    """The scripted expert `name` (see `spec.EXPERTS`), with actions clipped to [-1, 1].

    Meta-World's experts use proportional gains that exceed the action range;
    the env clips anyway, clipping here keeps recorded actions in the space.
    Once the object is within `HOLD_RADIUS` of the goal the expert holds still
    (keeping its grip): left alone, Meta-World's push expert keeps nudging the
    puck at the goal and, after ~100 steps there, can lift it and carry it off,
    which would count as a boundary failure of the reference policy.
    """
    policy = _EXPERT_CLASSES[name]()
    grip = 0.0

    def act(obs: np.ndarray) -> np.ndarray:
        nonlocal grip
        obs = np.asarray(obs, dtype=np.float64)
        if np.linalg.norm(obs[OBJ] - obs[GOAL]) < HOLD_RADIUS:
            return np.array([0.0, 0.0, 0.0, grip], dtype=np.float32)
        with warnings.catch_warnings():
            # Meta-World warns on every call that its gains exceed the action
            # range; the action is clipped right here, so it says nothing new.
            warnings.simplefilter("ignore", UserWarning)
            raw = policy.get_action(obs)
        action = np.clip(raw, -1.0, 1.0).astype(np.float32)
        grip = float(action[3])
        return action

    return act


def with_goal(policy: PolicyFn, goal: np.ndarray) -> PolicyFn:
    """`policy` told that the goal is `goal` (used to lure an expert toward a failure)."""
    goal = np.asarray(goal, dtype=np.float64)

    def act(obs: np.ndarray) -> np.ndarray:
        lured = np.array(obs, dtype=np.float64, copy=True)
        lured[GOAL] = goal
        return policy(lured)

    return act


def noisy(policy: PolicyFn, rng: np.random.Generator, noise_std: float, random_action_prob: float = 0.0,
          correlation: float = 0.0) -> PolicyFn:
    """`policy` plus Gaussian action noise and, with probability `random_action_prob`,
    a uniformly random action instead; clipped to [-1, 1].

    `correlation` in [0, 1) makes the noise an AR(1) process with that
    per-step coefficient and stationary std `noise_std`. White noise is mostly
    cancelled by the experts' high proportional gains; correlated noise makes
    the sustained drifts (a puck wandering off sideways) that an imperfect
    learned policy shows, so it is what produces realistic failures.
    """
    state = np.zeros(4)
    innovation = noise_std * np.sqrt(1.0 - correlation**2)

    def act(obs: np.ndarray) -> np.ndarray:
        nonlocal state
        state = correlation * state + rng.normal(0.0, innovation, size=4) if noise_std > 0.0 else state
        if random_action_prob > 0.0 and rng.random() < random_action_prob:
            return rng.uniform(-1.0, 1.0, size=4).astype(np.float32)
        action = np.asarray(policy(obs), dtype=np.float64) + state
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    return act


def random_policy(rng: np.random.Generator) -> PolicyFn:
    """Uniform random actions in [-1, 1]^4: the 0 of the normalized-return scale."""

    def act(obs: np.ndarray) -> np.ndarray:
        return rng.uniform(-1.0, 1.0, size=4).astype(np.float32)

    return act

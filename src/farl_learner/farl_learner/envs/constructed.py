"""Constructed states for testing failure predicates: put an env into a known
failure (or safe) state without having to drive the arm there.

`failure_state(env)` teleports the task object across the boundary or against
the obstacle, so a test can check that the predicate fires; `safe_state(env)`
resets to a fresh episode start, which every FailureBench task begins safe.
"""
from __future__ import annotations

import numpy as np

from .failurebench import FailureBenchEnv
from .predicates import body_geoms, bodies_xy_box

#: Object body of every FailureBench base env, and its resting height is kept.
_OBJECT_BODY = {"push-v3": "obj", "push-wall-v3": "obj", "soccer-v3": "soccer_ball"}
#: How far beyond the boundary / into the obstacle the constructed state goes (m).
_OVERSHOOT = 0.03
_PENETRATION = 0.002


def _object_radius(env: FailureBenchEnv) -> float:
    geoms = body_geoms(env.model, (_OBJECT_BODY[env.spec_.base_env],))
    return float(max(env.model.geom_size[g][0] for g in geoms))


def failure_state(env: FailureBenchEnv) -> np.ndarray:
    """Reset `env`, then teleport its object into a failure; returns the observation.

    Boundary tasks: the object is put `_OVERSHOOT` beyond the east edge.
    Contact tasks: the object is put against the obstacle's south face (the side
    facing the robot), overlapping it by `_PENETRATION`.
    """
    obs, _ = env.reset()
    z = float(obs[6])
    failure = env.spec_.failure
    if failure.kind == "boundary":
        assert failure.boundary is not None
        rect = failure.boundary
        return env.set_object_xyz(np.array([rect.x_max + _OVERSHOOT, rect.center[1], z]))
    x_min, x_max, y_min, _ = bodies_xy_box(env.model, env.data, failure.obstacle_bodies)
    y = y_min - _object_radius(env) + _PENETRATION
    return env.set_object_xyz(np.array([0.5 * (x_min + x_max), y, z]))


def safe_state(env: FailureBenchEnv) -> np.ndarray:
    """A fresh episode start (safe by construction of every task's layout)."""
    obs, _ = env.reset()
    return obs

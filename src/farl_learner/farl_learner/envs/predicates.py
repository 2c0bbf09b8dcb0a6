"""Failure predicates C(s) in {0, 1} of the FailureBench tasks, and their margins.

A predicate answers two questions about the current MuJoCo state:
`is_failure` (the binary constraint of the paper's CMDP) and `margin` (a signed
distance to the constraint in metres: > 0 safe, <= 0 violated). The margin is
not part of the paper's formulation; recovery-demo generation uses it to accept
only demos that end clearly safe, and learners may use it for diagnostics.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import mujoco
import numpy as np

from .spec import ANY_BODY, FailureSpec, Rect

#: Object (x, y) in the 39-d Meta-World observation.
OBJ_XY = slice(4, 6)
#: Geom distances are searched up to this far (m); anything farther reads as this.
_DISTANCE_HORIZON = 0.5


class FailurePredicate(Protocol):
    def is_failure(self, model: mujoco.MjModel, data: mujoco.MjData, obs: np.ndarray) -> bool: ...

    def margin(self, model: mujoco.MjModel, data: mujoco.MjData, obs: np.ndarray) -> float: ...


@dataclass(frozen=True)
class BoundaryPredicate:
    """Failure when the task object's (x, y) leaves the rectangle drawn on the table."""

    rect: Rect

    def is_failure(self, model: mujoco.MjModel, data: mujoco.MjData, obs: np.ndarray) -> bool:
        x, y = obs[OBJ_XY]
        return not self.rect.contains(float(x), float(y))

    def margin(self, model: mujoco.MjModel, data: mujoco.MjData, obs: np.ndarray) -> float:
        x, y = obs[OBJ_XY]
        return self.rect.margin(float(x), float(y))


def body_geoms(model: mujoco.MjModel, body_names: tuple[str, ...]) -> np.ndarray:
    """Ids of the geoms attached directly to the named bodies (KeyError names a missing body)."""
    ids = []
    for name in body_names:
        body_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
        if body_id < 0:
            raise KeyError(f"body {name!r} is not in the model")
        ids.extend(np.flatnonzero(model.geom_bodyid == body_id).tolist())
    return np.asarray(sorted(ids), dtype=np.int64)


def bodies_xy_box(model: mujoco.MjModel, data: mujoco.MjData, bodies: tuple[str, ...]) -> tuple[float, float, float, float]:
    """x_min, x_max, y_min, y_max (world) bounding the geoms of `bodies` in the current state."""
    lo, hi = np.full(2, np.inf), np.full(2, -np.inf)
    for g in body_geoms(model, bodies):
        center = data.geom_xpos[g][:2]
        if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_CYLINDER:
            half = np.full(2, model.geom_size[g][0])
        else:  # box-like: the world-axis extent of the rotated half-sizes
            half = np.abs(data.geom_xmat[g].reshape(3, 3))[:2] @ model.geom_size[g]
        lo, hi = np.minimum(lo, center - half), np.maximum(hi, center + half)
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def _can_collide(model: mujoco.MjModel, g1: int, g2: int) -> bool:
    return bool((model.geom_contype[g1] & model.geom_conaffinity[g2])
                or (model.geom_contype[g2] & model.geom_conaffinity[g1]))


class ContactPredicate:
    """Failure when a subject geom touches an obstacle geom (MuJoCo contact list).

    The contact list reflects the last physics sub-step of an env step; an
    object moves at most about a centimetre per env step, so a touch that starts
    and ends within one step's sub-steps is practically impossible, and a
    resting or pushing contact is always seen.
    """

    def __init__(self, model: mujoco.MjModel, failure: FailureSpec):
        self.tolerance = failure.touch_tolerance
        self.obstacle = body_geoms(model, failure.obstacle_bodies)
        if failure.subject_bodies == (ANY_BODY,):
            # Every movable colliding geom: static geoms (table, floor, other
            # fixtures welded to the world) never count as touching.
            movable = model.body_weldid[model.geom_bodyid] != 0
            colliding = (model.geom_contype != 0) | (model.geom_conaffinity != 0)
            subject = np.setdiff1d(np.flatnonzero(colliding & movable), self.obstacle)
        else:
            subject = body_geoms(model, failure.subject_bodies)
        self.subject = subject
        self._obstacle_mask = np.zeros(model.ngeom, dtype=bool)
        self._obstacle_mask[self.obstacle] = True
        self._subject_mask = np.zeros(model.ngeom, dtype=bool)
        self._subject_mask[self.subject] = True
        self.pairs = [(int(a), int(b)) for a in self.subject for b in self.obstacle if _can_collide(model, a, b)]
        if not self.pairs:
            raise ValueError("no subject geom can collide with an obstacle geom: the predicate could never fire")

    def is_failure(self, model: mujoco.MjModel, data: mujoco.MjData, obs: np.ndarray) -> bool:
        n = data.ncon
        if n == 0:
            return False
        geoms = data.contact.geom[:n]
        dist = data.contact.dist[:n]
        g1, g2 = geoms[:, 0], geoms[:, 1]
        hit = ((self._subject_mask[g1] & self._obstacle_mask[g2]) | (self._subject_mask[g2] & self._obstacle_mask[g1]))
        return bool(np.any(hit & (dist <= self.tolerance)))

    def margin(self, model: mujoco.MjModel, data: mujoco.MjData, obs: np.ndarray) -> float:
        """Smallest signed distance between any subject and obstacle geom (m)."""
        best = _DISTANCE_HORIZON
        for a, b in self.pairs:
            best = min(best, mujoco.mj_geomDistance(model, data, a, b, _DISTANCE_HORIZON, None))
        return float(best - self.tolerance)


def make_predicate(model: mujoco.MjModel, failure: FailureSpec) -> FailurePredicate:
    if failure.kind == "boundary":
        assert failure.boundary is not None
        return BoundaryPredicate(failure.boundary)
    return ContactPredicate(model, failure)

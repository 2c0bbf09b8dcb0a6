"""What the scripted experts keep the pushed object away from: the task's failure, seen from the object.

The experts, the recovery controller and the lure that makes failure data
were written for one failure, Fragile Push Wall's wall. The other real-robot
tasks fail differently (an obstacle a person moves; a boundary the ball must
not leave), so the geometry is one small interface with one class per kind
of failure, chosen from the task file's `failure.predicates`:

- `WallGeometry`: a fixed box the object must not touch (contact with a static object);
- `ObstacleHazard`: a box that moves (contact with a kinematic object, the
  object or the arm), read from the observation;
- `BoundaryHazard`: a rectangle the object's centre must stay in (outside).

Each answers, for an observation: how much room is left (`clearance`), which
way is safe (`escape`), whether the push must wait (`blocks`), and where a
lured push would have to aim to fail (`lure`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from farl_common.task_config import ARM, TaskConfig
from farl_common.task_spec import TCP, TaskSpec


class Hazard(Protocol):
    def clearance(self, obs: np.ndarray) -> float:
        """Free distance (m) between the object (or the arm, where it counts) and the failure."""

    def escape(self, obs: np.ndarray) -> np.ndarray:
        """Unit xy vector: the way from the failure toward safety, at the object."""

    def blocks(self, obs: np.ndarray, margin: float) -> bool:
        """Does the failure stand in the object's way to its target (the push must wait)?"""

    def lure(self, obs: np.ndarray, rng: np.random.Generator, beyond: float, jitter: float,
             target_xy=None, object_xy=None) -> np.ndarray:
        """A target xy that a push toward it ends in the failure (`target_xy`: the task's target)."""


def _xy(obs: np.ndarray, layout: list[str], name: str) -> np.ndarray:
    return np.asarray(obs, dtype=np.float64)[[layout.index(f"{name}.x"), layout.index(f"{name}.y")]]


def _half_xy(config: TaskConfig, name: str) -> np.ndarray:
    obj = config.scene.object(name)
    return np.asarray(obj.size[:2] if obj.shape == "box" else (obj.size[0], obj.size[0]), dtype=np.float64)


@dataclass(frozen=True)
class WallGeometry:
    """The wall as seen from the pushed object: which axis it blocks, where its face is."""

    axis: int            # 0: the wall's thin side is along x, 1: along y
    sign: float          # +1: the object lies on the + side of the face, -1: on the - side
    face: float          # face coordinate along `axis`
    span: tuple[float, float]  # wall extent along the other axis
    half_object: float   # pushed object's half size along `axis`
    object_index: tuple[int, int] = (3, 4)  # the pushed object's x, y in the observation

    def gap(self, xy: np.ndarray) -> float:
        """Free distance between the object's side and the wall face (inf when beside the wall)."""
        other = 1 - self.axis
        if not (self.span[0] - self.half_object <= xy[other] <= self.span[1] + self.half_object):
            return float("inf")
        return float(self.sign * (xy[self.axis] - self.face) - self.half_object)

    def away(self) -> np.ndarray:
        """Unit xy vector pointing from the wall face toward the object side."""
        v = np.zeros(2)
        v[self.axis] = self.sign
        return v

    # ---- the Hazard interface
    def clearance(self, obs: np.ndarray) -> float:
        return self.gap(np.asarray(obs, dtype=np.float64)[list(self.object_index)])

    def escape(self, obs: np.ndarray) -> np.ndarray:
        return self.away()

    def blocks(self, obs: np.ndarray, margin: float) -> bool:
        return False  # the wall runs along the path: bend away from it, never wait for it

    def lure(self, obs, rng, beyond, jitter, target_xy=None, object_xy=None) -> np.ndarray:
        """Behind the face by `beyond`; along the wall uniformly between the object and the target (± jitter).
        `object_xy`: the object's exact position (the observation holds it in float32)."""
        block = np.asarray(obs, dtype=np.float64)[list(self.object_index)] if object_xy is None else \
            np.asarray(object_xy, dtype=np.float64)
        target = block if target_xy is None else np.asarray(target_xy, dtype=np.float64)
        other = 1 - self.axis
        point = np.zeros(2)
        point[self.axis] = self.face - self.sign * beyond
        along = block[other] + rng.uniform(0.0, 1.0) * (target[other] - block[other])
        point[other] = np.clip(along + rng.uniform(-jitter, jitter),
                               self.span[0] + self.half_object, self.span[1] - self.half_object)
        return point

    @staticmethod
    def from_config(config: TaskConfig, wall: str, pushed: str) -> "WallGeometry":
        w, o = config.scene.object(wall), config.scene.object(pushed)
        if w.shape != "box" or o.shape != "box":
            raise ValueError(f"the wall {wall!r} and the pushed object {pushed!r} must be boxes")
        axis = 0 if w.size[0] <= w.size[1] else 1
        sign = 1.0 if o.pos[axis] >= w.pos[axis] else -1.0
        other = 1 - axis
        layout = TaskSpec.from_config(config).layout()
        return WallGeometry(axis=axis, sign=sign, face=w.pos[axis] + sign * w.size[axis],
                            span=(w.pos[other] - w.size[other], w.pos[other] + w.size[other]),
                            half_object=o.size[axis],
                            object_index=(layout.index(f"{pushed}.x"), layout.index(f"{pushed}.y")))


class ObstacleHazard:
    """A moving box (Disturbed Push's obstacle) that neither the object nor the hand may touch.

    Distances are between axis-aligned footprints: the object's, the obstacle's,
    and the hand's (`hand_half_extent` around the TCP, which the arm's links
    above it stay within for a hand pointing down)."""

    def __init__(self, config: TaskConfig, spec: TaskSpec, obstacle: str, hand_half_extent, arm_counts: bool):
        self.layout = spec.layout()
        self.obstacle, self.pushed, self.target = obstacle, spec.pushed_object, spec.target
        self.half_obstacle = _half_xy(config, obstacle)
        self.half_object = _half_xy(config, spec.pushed_object)
        self.half_hand = np.asarray(hand_half_extent, dtype=np.float64)
        self.arm_counts = arm_counts

    @staticmethod
    def _box_gap(a: np.ndarray, half_a: np.ndarray, b: np.ndarray, half_b: np.ndarray) -> float:
        d = np.abs(a - b) - half_a - half_b
        outside = np.maximum(d, 0.0)
        return float(np.linalg.norm(outside)) if np.any(d > 0) else float(np.max(d))

    def _parts(self, obs: np.ndarray):
        o = _xy(obs, self.layout, self.obstacle)
        parts = [(_xy(obs, self.layout, self.pushed), self.half_object)]
        if self.arm_counts:
            parts.append((_xy(obs, self.layout, TCP), self.half_hand))
        return o, parts

    def clearance(self, obs: np.ndarray) -> float:
        o, parts = self._parts(obs)
        return min(self._box_gap(p, h, o, self.half_obstacle) for p, h in parts)

    def escape(self, obs: np.ndarray) -> np.ndarray:
        o, parts = self._parts(obs)
        nearest = min(parts, key=lambda ph: self._box_gap(ph[0], ph[1], o, self.half_obstacle))[0]
        d = nearest - o
        n = np.linalg.norm(d)
        return d / n if n > 1e-9 else np.array([-1.0, 0.0])

    def blocks(self, obs: np.ndarray, margin: float) -> bool:
        """The obstacle within `margin` of the strip the object sweeps on its way to the target."""
        o = _xy(obs, self.layout, self.obstacle)
        b, g = _xy(obs, self.layout, self.pushed), _xy(obs, self.layout, self.target)
        seg = g - b
        length = float(np.linalg.norm(seg))
        if length < 1e-6:
            return False
        u = seg / length
        rel = o - b
        along = float(rel @ u)
        across = abs(float(rel @ np.array([-u[1], u[0]])))
        touch = float(np.max(self.half_object)) + float(np.max(self.half_obstacle))
        reach = touch + margin
        return -touch < along < length + reach and across < reach  # beside or ahead, never behind

    def lure(self, obs, rng, beyond, jitter, target_xy=None, object_xy=None) -> np.ndarray:
        """The obstacle itself (± jitter): a push toward it drives the object into it."""
        return _xy(obs, self.layout, self.obstacle) + rng.uniform(-jitter, jitter, 2) * 0.25


class BoundaryHazard:
    """A rectangle the object's centre must stay inside (Bounded Soccer's boundary)."""

    def __init__(self, spec: TaskSpec, region):
        self.layout = spec.layout()
        self.pushed = spec.pushed_object
        self.lo, self.hi = np.asarray(region.min, dtype=np.float64), np.asarray(region.max, dtype=np.float64)
        self._normals = (np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([-1.0, 0.0]), np.array([0.0, -1.0]))

    def _edges(self, xy: np.ndarray) -> np.ndarray:
        """Distance to the x-min, y-min, x-max, y-max edges (negative: outside)."""
        return np.array([xy[0] - self.lo[0], xy[1] - self.lo[1], self.hi[0] - xy[0], self.hi[1] - xy[1]])

    def clearance(self, obs: np.ndarray) -> float:
        return float(np.min(self._edges(_xy(obs, self.layout, self.pushed))))

    def escape(self, obs: np.ndarray) -> np.ndarray:
        return self._normals[int(np.argmin(self._edges(_xy(obs, self.layout, self.pushed))))].copy()

    def blocks(self, obs: np.ndarray, margin: float) -> bool:
        return False

    def lure(self, obs, rng, beyond, jitter, target_xy=None, object_xy=None) -> np.ndarray:
        """Beyond a side line (or the far end) by `beyond`, somewhere along it between the object and the target."""
        b = _xy(obs, self.layout, self.pushed)
        edge = int(rng.integers(0, 4))
        point = b + rng.uniform(0.0, 1.0) * ((np.asarray(target_xy) if target_xy is not None else b) - b)
        point = point + rng.uniform(-jitter, jitter, 2)
        axis = edge % 2
        point[axis] = (self.lo[axis] - beyond) if edge < 2 else (self.hi[axis] + beyond)
        return point


def hazard_for(config: TaskConfig, spec: TaskSpec, wall: str | None = None,
               hand_half_extent=(0.03, 0.06)) -> Hazard:
    """The task's failure as its experts see it, from `failure.predicates` (or the named wall)."""
    pushed = spec.pushed_object
    if wall is not None:
        return WallGeometry.from_config(config, wall, pushed)
    for predicate in config.failure.predicates:
        if predicate.kind == "outside" and predicate.object == pushed:
            return BoundaryHazard(spec, predicate.region)
    pairs = config.failure.contact_pairs
    for a, b in pairs:
        if pushed in (a, b):
            other = b if a == pushed else a
            obj = config.scene.object(other)
            if obj.kinematic:
                arm = any(ARM in pair and other in pair for pair in pairs)
                return ObstacleHazard(config, spec, other, hand_half_extent, arm)
            return WallGeometry.from_config(config, other, pushed)
    raise ValueError(f"{config.path}: failure.predicates: no predicate about the pushed object {pushed!r} "
                     "that the twin's experts know (contact with a fixed or kinematic box, outside a region)")

"""Failure predicates computed from object positions (no simulator, no ROS).

On the real arm nothing reports that the fragile block touched the wall; the
episode monitor has to decide it from the poses perception gives it. The same
functions run in simulation with `perception:=aruco`, where
`benchmarks/perceived_failure.py` counts how often they agree with MuJoCo's
contacts.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from farl_common.task_config import PerceivedFailureConfig, TaskConfig


def quat_xyzw_matrix(q: Sequence[float]) -> np.ndarray:
    x, y, z, w = np.asarray(q, float) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def rotated_half_extents(half: Sequence[float], quat_xyzw: Sequence[float] | None) -> np.ndarray:
    """Half extents, in base, of the axis-aligned box around a box turned by `quat_xyzw` (|R| @ half).

    A block turned 20 degrees on the table reaches further toward the wall than its
    unturned half width: its corner, not its face, touches first.
    """
    h = np.asarray(half, float)
    return h if quat_xyzw is None else np.abs(quat_xyzw_matrix(quat_xyzw)) @ h


def box_gap(center_a: Sequence[float], half_a: Sequence[float], center_b: Sequence[float],
            half_b: Sequence[float]) -> float:
    """Distance (m) between two axis-aligned boxes; 0 when they overlap or touch."""
    separation = np.abs(np.asarray(center_a, float) - np.asarray(center_b, float)) \
        - (np.asarray(half_a, float) + np.asarray(half_b, float))
    return float(np.linalg.norm(np.maximum(separation, 0.0)))


class PerceivedFailure:
    """`failure.perceived` of a task config, evaluated on positions by object name."""

    def __init__(self, config: TaskConfig):
        if config.failure.perceived is None:
            raise ValueError(f"{config.path}: failure.perceived: missing; the monitor needs it to compute "
                             "failures from perceived poses (add it, see config/tasks/fragile_push_wall.yaml)")
        self.predicate: PerceivedFailureConfig = config.failure.perceived
        self.objects = tuple(self.predicate.objects)
        self.half_extents = {name: tuple(config.scene.object(name).size) for name in self.objects}

    def gap(self, positions: Mapping[str, Sequence[float]],
            orientations: Mapping[str, Sequence[float]] | None = None) -> float | None:
        """The gap between the two objects (m), each turned by its orientation (x, y, z, w) when given;
        None while a position is missing."""
        a, b = self.objects
        if a not in positions or b not in positions:
            return None
        turn = orientations or {}
        return box_gap(positions[a], rotated_half_extents(self.half_extents[a], turn.get(a)),
                       positions[b], rotated_half_extents(self.half_extents[b], turn.get(b)))

    def __call__(self, positions: Mapping[str, Sequence[float]],
                 orientations: Mapping[str, Sequence[float]] | None = None) -> bool:
        """True when the gap is at or below the margin (False while a position is missing)."""
        gap = self.gap(positions, orientations)
        return gap is not None and gap <= self.predicate.margin

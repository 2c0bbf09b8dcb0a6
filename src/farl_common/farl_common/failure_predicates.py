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

    def gap(self, positions: Mapping[str, Sequence[float]]) -> float | None:
        """The gap between the two objects (m); None while a position is missing."""
        a, b = self.objects
        if a not in positions or b not in positions:
            return None
        return box_gap(positions[a], self.half_extents[a], positions[b], self.half_extents[b])

    def __call__(self, positions: Mapping[str, Sequence[float]]) -> bool:
        """True when the gap is at or below the margin (False while a position is missing)."""
        gap = self.gap(positions)
        return gap is not None and gap <= self.predicate.margin

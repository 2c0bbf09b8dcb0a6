"""The scripted operator: a teleop device that drives the TCP through waypoints.

It stands in for a human with a SpaceMouse wherever a repeatable operator is
needed (the main job's demo motion, tests, scripted demo collection). Pure
logic, no ROS: it maps the measured TCP position to a velocity command.
"""
from __future__ import annotations

import numpy as np

from farl_common.task_config import ScriptedOperatorConfig

__all__ = ["ScriptedOperator", "ScriptedOperatorConfig"]  # its settings: the task file's scripted_operator section


class ScriptedOperator:
    """Visits the waypoints in order; `command(tcp)` returns the linear velocity to send."""

    def __init__(self, config: ScriptedOperatorConfig):
        self.config = config
        self.index = 0

    @property
    def done(self) -> bool:
        return self.index >= len(self.config.waypoints)

    @property
    def target(self) -> np.ndarray:
        return np.asarray(self.config.waypoints[min(self.index, len(self.config.waypoints) - 1)])

    def reached(self, tcp: np.ndarray) -> bool:
        return float(np.linalg.norm(self.target - tcp)) <= self.config.tolerance

    def advance(self) -> None:
        self.index += 1

    def command(self, tcp: np.ndarray) -> np.ndarray:
        """Proportional approach to the current waypoint, capped at the configured speed."""
        if self.done:
            return np.zeros(3)
        error = self.target - np.asarray(tcp, dtype=float)
        velocity = self.config.gain * error
        speed = float(np.linalg.norm(velocity))
        if speed > self.config.speed:
            velocity *= self.config.speed / speed
        return velocity

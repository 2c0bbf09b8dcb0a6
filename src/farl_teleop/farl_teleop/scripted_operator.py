"""The scripted operator: a teleop device that drives the TCP through waypoints.

It stands in for a human with a SpaceMouse wherever a repeatable operator is
needed (the main job's demo motion, tests, scripted demo collection). Pure
logic, no ROS: it maps the measured TCP position to a velocity command.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farl_common.config import Section


@dataclass(frozen=True)
class ScriptedOperatorConfig:
    waypoints: tuple[tuple[float, float, float], ...]
    gain: float
    speed: float
    tolerance: float
    waypoint_timeout_s: float

    @staticmethod
    def from_section(s: Section) -> "ScriptedOperatorConfig":
        raw = s._raw("waypoints", None)
        if not isinstance(raw, list) or not raw:
            raise s.error("waypoints", "expected a non-empty list of [x, y, z] points")
        points = []
        for i, _ in enumerate(raw):
            points.append(Section({"p": raw[i]}, s.path, s.key(f"waypoints[{i}]")).vector("p", 3))
        return ScriptedOperatorConfig(
            waypoints=tuple(points),  # type: ignore[arg-type]
            gain=s.number("gain", positive=True),
            speed=s.number("speed", positive=True),
            tolerance=s.number("tolerance", positive=True),
            waypoint_timeout_s=s.number("waypoint_timeout_s", positive=True),
        )


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

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

    def __init__(self, config: ScriptedOperatorConfig, kind: str = "task"):
        self.config = config
        self.waypoints = config.waypoints_for(kind)
        self.index = 0

    @property
    def done(self) -> bool:
        return self.index >= len(self.waypoints)

    @property
    def target(self) -> np.ndarray:
        return np.asarray(self.waypoints[min(self.index, len(self.waypoints) - 1)])

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


class ScriptedDemo:
    """The scripted operator running whole labelled episodes, as a person at the device would.

    Each `tick(now, tcp, success, failure)` returns (linear velocity or None, operator actions):
    it starts an episode (after the reset), follows the kind's waypoints, marks a
    failure when it sees one (sim ground truth, as a person sees the block touch the
    wall), marks success when it sees the task's success, and stops after the last waypoint. Then it
    waits for `reset_done()` (the node calls it when the arm is home and the scene
    reset) before the next episode. A waypoint not reached within
    waypoint_timeout_s ends the episode too (stopped unlabelled).
    """

    def __init__(self, config: ScriptedOperatorConfig, kind: str, episodes: int):
        self.config, self.kind, self.episodes = config, kind, episodes
        self.started = 0
        self.operator: ScriptedOperator | None = None
        self.ready = True  # reset done
        self.waypoint_since = 0.0
        self.failure_marked = False
        self.success_marked = False

    @property
    def finished(self) -> bool:
        return self.started >= self.episodes and self.operator is None

    def reset_done(self) -> None:
        self.ready = True

    def tick(self, now: float, tcp: np.ndarray | None, success: bool, failure: bool
             ) -> tuple[np.ndarray | None, list[str]]:
        if self.operator is None:
            if self.ready and self.started < self.episodes and tcp is not None:
                self.operator = ScriptedOperator(self.config, self.kind)
                self.started += 1
                self.ready, self.failure_marked, self.success_marked = False, False, False
                self.waypoint_since = now
                return None, ["start"]
            return None, []
        actions = []
        if failure and not self.failure_marked:
            self.failure_marked = True
            actions.append("failure")
        if success and not self.success_marked and not self.failure_marked:
            self.success_marked = True  # as a person marks it: when the object reaches the target
            actions.append("success")
        if tcp is None:
            return None, actions
        op = self.operator
        if op.reached(tcp):
            op.advance()
            self.waypoint_since = now
        timed_out = now - self.waypoint_since > self.config.waypoint_timeout_s
        if op.done or timed_out:
            actions.append("stop")
            self.operator = None
            return np.zeros(3), actions
        return op.command(tcp), actions

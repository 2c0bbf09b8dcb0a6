"""Calibration pairs an image with the TCP pose only when both show the arm standing still.

On a loaded machine the camera's image lags the TCP pose; an arm still settling
after its move then pairs a marker seen in one place with a TCP in another. The
gate admits only images stamped after the arm stopped where it stands now.
"""
from __future__ import annotations

import numpy as np

from farl_perception.calibration.stillness import StillnessGate
from farl_perception.geometry import axis_angle_matrix, transform


def _tcp(x: float, yaw_deg: float = 0.0) -> np.ndarray:
    return transform(axis_angle_matrix((0, 0, 1), np.radians(yaw_deg)), (x, 0.0, 0.1))


def test_no_image_is_admitted_before_the_first_tcp_pose():
    assert not StillnessGate().admits(10.0)


def test_an_image_older_than_the_moment_the_arm_stopped_is_refused():
    gate = StillnessGate()
    gate.tcp(1.0, _tcp(0.50))
    gate.tcp(1.1, _tcp(0.51))          # still moving at 1.1
    assert gate.tcp(1.2, _tcp(0.5102))  # stopped (0.2 mm since 1.1)
    assert gate.still_since == 1.1
    assert not gate.admits(1.05)       # rendered while it moved
    assert gate.admits(1.15)


def test_a_move_or_a_turn_restarts_the_still_period():
    gate = StillnessGate()
    gate.tcp(1.0, _tcp(0.50))
    assert gate.tcp(1.5, _tcp(0.5003))
    assert not gate.tcp(2.0, _tcp(0.502))  # 2 mm: moved
    assert gate.still_since == 2.0 and not gate.admits(1.9)
    assert not gate.tcp(2.5, _tcp(0.502, yaw_deg=0.5))  # turned half a degree
    assert gate.still_since == 2.5

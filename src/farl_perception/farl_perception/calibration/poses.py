"""The TCP poses `farl calibrate camera` visits: spread in position, tilted about several axes.

Hand-eye calibration is only as good as the rotation diversity of its poses
(rotations about one axis leave the translation along it unobservable), so each
pose tilts the gripper away from pointing down about a different horizontal
axis, with a yaw as well. Deterministic: the same config gives the same poses.
"""
from __future__ import annotations

import math

import numpy as np

from farl_perception.config import CalibrationConfig
from farl_perception.geometry import axis_angle_matrix, transform

# The gripper pointing down with the fingers along base y (the task's home orientation).
DOWN = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def calibration_poses(config: CalibrationConfig, down: np.ndarray = DOWN) -> list[np.ndarray]:
    """`config.poses` TCP poses (4x4, base) around `config.center`."""
    poses = []
    spread = np.asarray(config.position_spread, float)
    tilt = math.radians(config.tilt_deg)
    for i in range(config.poses):
        # A low-discrepancy walk over the box, and tilt axes turning by the golden angle.
        u = np.array([(i * GOLDEN) % 1.0, (i * GOLDEN * 2.0 + 0.5) % 1.0, (i * GOLDEN * 3.0 + 0.25) % 1.0])
        position = np.asarray(config.center, float) + spread * (2.0 * u - 1.0)
        axis_angle = 2.0 * math.pi * ((i * GOLDEN) % 1.0)
        tilt_axis = (math.cos(axis_angle), math.sin(axis_angle), 0.0)
        yaw = tilt * (1.0 if i % 2 else -1.0) * (0.5 + 0.5 * ((i * GOLDEN * 5.0) % 1.0))
        R = axis_angle_matrix(tilt_axis, tilt * (0.6 + 0.4 * ((i * GOLDEN * 7.0) % 1.0))) \
            @ axis_angle_matrix((0.0, 0.0, 1.0), yaw) @ down
        poses.append(transform(R, position))
    return poses

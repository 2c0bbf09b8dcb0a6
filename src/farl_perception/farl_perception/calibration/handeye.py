"""Eye-to-hand calibration math: camera->base from (gripper pose, marker-in-camera pose) pairs (no ROS).

The camera is fixed in the scene and the marker is fixed to the gripper, so for
every pose i:  T_base_gripper_i @ T_gripper_marker = T_base_camera @ T_camera_marker_i,
with T_gripper_marker and T_base_camera unknown. `cv2.calibrateHandEye` solves
the eye-in-hand form; the eye-to-hand form is the same problem with the robot's
poses inverted (base->gripper in, camera->base out), as OpenCV documents.

The residual says how well one rigid pair explains every pose: the marker's
pose through the arm (T_base_gripper_i @ T_gripper_marker) against through the
camera (T_base_camera @ T_camera_marker_i), RMS over the poses, in mm and degrees.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from farl_perception.geometry import invert, rotation_angle_deg, transform

METHODS = {"park": cv2.CALIB_HAND_EYE_PARK, "tsai": cv2.CALIB_HAND_EYE_TSAI, "horaud": cv2.CALIB_HAND_EYE_HORAUD,
           "andreff": cv2.CALIB_HAND_EYE_ANDREFF, "daniilidis": cv2.CALIB_HAND_EYE_DANIILIDIS}


@dataclass(frozen=True)
class HandEyeResult:
    T_base_camera: np.ndarray
    T_gripper_marker: np.ndarray
    residual_mm: float
    residual_deg: float
    per_pose_mm: tuple[float, ...]


def mean_rotation(rotations: Sequence[np.ndarray]) -> np.ndarray:
    """The rotation closest (Frobenius) to the arithmetic mean of `rotations` (SVD projection)."""
    U, _, Vt = np.linalg.svd(np.mean(rotations, axis=0))
    R = U @ Vt
    if np.linalg.det(R) < 0:
        U[:, -1] *= -1
        R = U @ Vt
    return R


def solve_eye_to_hand(T_base_gripper: Sequence[np.ndarray], T_camera_marker: Sequence[np.ndarray],
                      method: str = "park") -> HandEyeResult:
    if len(T_base_gripper) != len(T_camera_marker):
        raise ValueError("one marker pose per gripper pose")
    if len(T_base_gripper) < 3:
        raise ValueError(f"hand-eye calibration needs >= 3 poses, got {len(T_base_gripper)}")
    T_gripper_base = [invert(T) for T in T_base_gripper]
    R, t = cv2.calibrateHandEye([T[:3, :3] for T in T_gripper_base], [T[:3, 3] for T in T_gripper_base],
                                [T[:3, :3] for T in T_camera_marker], [T[:3, 3] for T in T_camera_marker],
                                method=METHODS[method])
    T_base_camera = transform(R, np.asarray(t).ravel())
    estimates = [invert(Tg) @ T_base_camera @ Tc for Tg, Tc in zip(T_base_gripper, T_camera_marker)]
    T_gripper_marker = transform(mean_rotation([T[:3, :3] for T in estimates]),
                                 np.mean([T[:3, 3] for T in estimates], axis=0))
    errors_mm, errors_deg = [], []
    for Tg, Tc in zip(T_base_gripper, T_camera_marker):
        via_arm, via_camera = Tg @ T_gripper_marker, T_base_camera @ Tc
        errors_mm.append(float(np.linalg.norm(via_arm[:3, 3] - via_camera[:3, 3]) * 1000.0))
        errors_deg.append(rotation_angle_deg(via_arm[:3, :3], via_camera[:3, :3]))
    return HandEyeResult(T_base_camera, T_gripper_marker, float(np.sqrt(np.mean(np.square(errors_mm)))),
                         float(np.sqrt(np.mean(np.square(errors_deg)))), tuple(errors_mm))

"""Rigid transforms as 4x4 matrices, and the quaternion conventions at the edges.

Poses in this package are homogeneous 4x4 matrices `T_a_b` that map points of
frame b into frame a (p_a = T_a_b @ p_b). ROS messages carry quaternions as
(x, y, z, w); MuJoCo as (w, x, y, z): the conversions live here and nowhere else.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def transform(rotation: np.ndarray, translation: Sequence[float]) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = rotation
    T[:3, 3] = translation
    return T


def invert(T: np.ndarray) -> np.ndarray:
    R, t = T[:3, :3], T[:3, 3]
    return transform(R.T, -R.T @ t)


def translation_of(offset: Sequence[float]) -> np.ndarray:
    return transform(np.eye(3), offset)


def quat_xyzw_to_matrix(q: Sequence[float]) -> np.ndarray:
    x, y, z, w = np.asarray(q, float) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quat_xyzw(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) with w >= 0 (Shepperd's method, stable for every rotation)."""
    m = np.asarray(R, float)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = np.array([(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4])
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = np.array([s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s])
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = np.array([(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s])
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = np.array([(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s])
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def wxyz_to_xyzw(q: Sequence[float]) -> np.ndarray:
    return np.array([q[1], q[2], q[3], q[0]], float)


def xyzw_to_wxyz(q: Sequence[float]) -> np.ndarray:
    return np.array([q[3], q[0], q[1], q[2]], float)


def rotation_angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    """The angle of the rotation that takes Rb to Ra, degrees."""
    cos = (np.trace(Ra @ Rb.T) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def axis_angle_matrix(axis: Sequence[float], angle_rad: float) -> np.ndarray:
    """Rodrigues: rotation by `angle_rad` about `axis`."""
    a = np.asarray(axis, float)
    a = a / np.linalg.norm(a)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * K + (1 - np.cos(angle_rad)) * K @ K


def rotation_vector(R: np.ndarray) -> np.ndarray:
    """The axis * angle (rad) of R (the inverse of axis_angle_matrix)."""
    angle = np.arccos(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0))
    if angle < 1e-9:
        return np.zeros(3)
    if np.pi - angle < 1e-6:  # half turn: the axis from the symmetric part
        axis = np.sqrt(np.maximum((np.diag(R) + 1.0) / 2.0, 0.0))
        i = int(np.argmax(axis))
        axis[(i + 1) % 3] = np.copysign(axis[(i + 1) % 3], R[i, (i + 1) % 3])
        axis[(i + 2) % 3] = np.copysign(axis[(i + 2) % 3], R[i, (i + 2) % 3])
        return axis / np.linalg.norm(axis) * angle
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / (2.0 * np.sin(angle))
    return w * angle


def look_at_rotation(position: Sequence[float], target: Sequence[float],
                     up: Sequence[float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """Rotation camera->base of a camera at `position` looking at `target`, OpenCV optical axes
    (x right, y down, z forward), with `up` (base) pointing up in the image."""
    z = np.asarray(target, float) - np.asarray(position, float)
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, float))
    if np.linalg.norm(x) < 1e-6:  # looking straight along `up`: any right vector will do
        x = np.cross(z, (0.0, 1.0, 0.0))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.column_stack([x, y, z])


def face_rotation(normal: Sequence[float]) -> np.ndarray:
    """Rotation marker->object of a marker printed on the object's face with outward `normal` (object frame).

    On the top face ([0, 0, 1]) the marker frame is the object's. On a side face the printed marker
    stands upright: its y (up on the print) is the object's +z, its z the normal, x = y cross z.
    """
    z = np.asarray(normal, float)
    z = z / np.linalg.norm(z)
    if abs(z[2]) > 1.0 - 1e-9:  # top or bottom: keep the object's x (the bottom flips it)
        x = np.array([1.0, 0.0, 0.0]) if z[2] > 0 else np.array([-1.0, 0.0, 0.0])
        return np.column_stack([x, np.cross(z, x), z])
    up = np.array([0.0, 0.0, 1.0])
    y = up - (up @ z) * z
    y /= np.linalg.norm(y)
    return np.column_stack([np.cross(y, z), y, z])


def slerp(qa: Sequence[float], qb: Sequence[float], weight_b: float) -> np.ndarray:
    """Spherical interpolation of unit quaternions (any order convention), `weight_b` toward qb."""
    a, b = np.asarray(qa, float), np.asarray(qb, float)
    dot = float(np.dot(a, b))
    if dot < 0:
        b, dot = -b, -dot
    if dot > 0.9995:
        q = a + weight_b * (b - a)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1 - weight_b) * theta) * a + np.sin(weight_b * theta) * b) / np.sin(theta)

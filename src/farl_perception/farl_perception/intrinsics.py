"""Pinhole intrinsics: what CameraInfo carries, built from a RealSense or from the sim camera's field of view."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)
    """k1, k2, t1, t2, k3 (ROS's plumb_bob); the RealSense colour stream reports ~0."""

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def D(self) -> np.ndarray:
        return np.asarray(self.distortion, float)

    @staticmethod
    def from_fovy(width: int, height: int, fovy_deg: float) -> "Intrinsics":
        """MuJoCo's camera: square pixels, the principal point at the image centre."""
        f = (height / 2.0) / math.tan(math.radians(fovy_deg) / 2.0)
        return Intrinsics(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)

    def project(self, points_camera: np.ndarray) -> np.ndarray:
        """Pixel coordinates (N x 2) of camera-frame points (N x 3), no distortion."""
        p = np.asarray(points_camera, float)
        return np.column_stack([self.fx * p[:, 0] / p[:, 2] + self.cx, self.fy * p[:, 1] / p[:, 2] + self.cy])

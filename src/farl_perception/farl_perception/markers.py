"""ArUco markers: the images to print (or to texture in the sim), detection, and one marker's pose.

`solvePnP` with `SOLVEPNP_IPPE_SQUARE` is the pose solver (OpenCV 5 dropped
`estimatePoseSingleMarkers`). Marker frame: origin at the centre of the black
square, x to the right and y up as printed, z out of the marker; corners in
ArUco's order (top-left, top-right, bottom-right, bottom-left).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from farl_perception.geometry import transform
from farl_perception.intrinsics import Intrinsics


def dictionary(name: str):
    """A predefined ArUco dictionary by its OpenCV name (e.g. DICT_4X4_50)."""
    return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name))


def marker_image(dictionary_name: str, marker_id: int, pixels: int, margin_fraction: float = 0.125) -> np.ndarray:
    """A printable marker: the black-bordered square plus a white quiet zone, uint8 grayscale.

    `margin_fraction` of `pixels` on each side is white: the detector needs a light
    surround to find the black border. The black square is `pixels * (1 - 2 * margin)` wide.
    """
    margin = int(round(pixels * margin_fraction))
    inner = pixels - 2 * margin
    square = cv2.aruco.generateImageMarker(dictionary(dictionary_name), marker_id, inner)
    out = np.full((pixels, pixels), 255, np.uint8)
    out[margin:margin + inner, margin:margin + inner] = square
    return out


def marker_corners(size: float) -> np.ndarray:
    """The 4 corners of a marker of side `size` in its own frame, in ArUco's order (IPPE_SQUARE's)."""
    h = size / 2.0
    return np.array([[-h, h, 0.0], [h, h, 0.0], [h, -h, 0.0], [-h, -h, 0.0]])


@dataclass(frozen=True)
class MarkerPose:
    marker_id: int
    T_camera_marker: np.ndarray
    reprojection_px: float
    """RMS distance between the detected corners and the solved pose's reprojection."""
    corners: np.ndarray  # 4 x 2 pixels


class MarkerDetector:
    """Finds markers of one dictionary and solves each one's pose from its known size."""

    def __init__(self, dictionary_name: str):
        parameters = cv2.aruco.DetectorParameters()
        # Sub-pixel corners: the pose's accuracy is the corners' accuracy.
        parameters.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        self.detector = cv2.aruco.ArucoDetector(dictionary(dictionary_name), parameters)

    def detect(self, gray: np.ndarray) -> dict[int, np.ndarray]:
        """id -> 4 x 2 corner pixels, for every marker found (a duplicated id is dropped: ambiguous)."""
        corners, ids, _ = self.detector.detectMarkers(gray)
        found: dict[int, np.ndarray] = {}
        duplicated: set[int] = set()
        if ids is None:
            return found
        for c, i in zip(corners, ids.ravel()):
            marker_id = int(i)
            if marker_id in found:
                duplicated.add(marker_id)
            found[marker_id] = np.asarray(c, float).reshape(4, 2)
        for marker_id in duplicated:
            del found[marker_id]
        return found

    @staticmethod
    def poses(marker_id: int, corners: np.ndarray, size: float, intrinsics: Intrinsics) -> list[MarkerPose]:
        """Both IPPE_SQUARE solutions, best reprojection first (a small or oblique marker is ambiguous:
        the second, mirrored tilt can reproject almost as well; `ObjectPoseEstimator` chooses with what it
        knows of the object)."""
        object_points = marker_corners(size)
        count, rvecs, tvecs, _ = cv2.solvePnPGeneric(object_points, corners.astype(np.float64), intrinsics.K,
                                                     intrinsics.D, flags=cv2.SOLVEPNP_IPPE_SQUARE)
        out = []
        for rvec, tvec in zip(rvecs[:count], tvecs[:count]):
            projected, _ = cv2.projectPoints(object_points, rvec, tvec, intrinsics.K, intrinsics.D)
            error = float(np.sqrt(np.mean(np.sum((projected.reshape(4, 2) - corners) ** 2, axis=1))))
            R, _ = cv2.Rodrigues(rvec)
            out.append(MarkerPose(marker_id, transform(R, np.asarray(tvec).ravel()), error, corners))
        return sorted(out, key=lambda p: p.reprojection_px)

    @staticmethod
    def pose(marker_id: int, corners: np.ndarray, size: float, intrinsics: Intrinsics) -> MarkerPose | None:
        """The marker's pose in the camera frame (IPPE_SQUARE's best solution), None if the solver fails."""
        candidates = MarkerDetector.poses(marker_id, corners, size, intrinsics)
        return candidates[0] if candidates else None


def draw_detections(image_rgb: np.ndarray, poses: list[MarkerPose], sizes: dict[int, float],
                    intrinsics: Intrinsics) -> np.ndarray:
    """A copy of the image with each marker's outline, id and axes (x red, y green, z blue)."""
    out = np.ascontiguousarray(image_rgb.copy())
    if poses:
        cv2.aruco.drawDetectedMarkers(out, [p.corners.reshape(1, 4, 2).astype(np.float32) for p in poses],
                                      np.array([[p.marker_id] for p in poses], np.int32))
    for p in poses:
        rvec, _ = cv2.Rodrigues(p.T_camera_marker[:3, :3])
        cv2.drawFrameAxes(out, intrinsics.K, intrinsics.D, rvec, p.T_camera_marker[:3, 3], sizes[p.marker_id] * 0.75, 2)
    return out

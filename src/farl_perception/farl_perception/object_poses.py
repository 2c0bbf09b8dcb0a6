"""One image in, the tracked objects' poses in base out (the core of object_pose_node, no ROS).

For each marker object: detect -> IPPE_SQUARE pose in the camera -> camera->base
extrinsic -> marker-to-object offset -> `ObjectTracker`. Fixed objects (fixtures
with no marker) get the pose the task config gives them, for every frame in
which the camera delivers an image: when the camera stops, they stop too.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from farl_common.task_config import TaskConfig
from farl_perception.config import PerceptionConfig
from farl_perception.geometry import face_rotation, transform
from farl_perception.intrinsics import Intrinsics
from farl_perception.markers import MarkerDetector, MarkerPose
from farl_perception.tracking import ObjectTracker, TrackResult


@dataclass(frozen=True)
class FrameResult:
    objects: dict[str, TrackResult]
    detections: list[MarkerPose]
    """Every configured marker found in the image (for the debug image)."""


class ObjectPoseEstimator:
    def __init__(self, config: PerceptionConfig, task: TaskConfig, T_base_camera: np.ndarray):
        self.config = config
        self.T_base_camera = np.asarray(T_base_camera, float)
        self.detector = MarkerDetector(config.dictionary)
        self.markers = {o.marker_id: o for o in config.markers}
        # marker -> object: the object's centre at `offset` in the marker frame, turned by the marker's face.
        self.offsets = {o.name: transform(face_rotation(o.face).T, o.offset) for o in config.markers}
        self.trackers = {o.name: ObjectTracker(config.filter) for o in config.markers}
        self.fixed = {o.name: transform(np.eye(3), task.scene.object(o.name).pos)
                      for o in config.objects if o.fixed}

    @property
    def sizes(self) -> dict[int, float]:
        return {marker_id: float(o.marker_size) for marker_id, o in self.markers.items()}  # type: ignore[arg-type]

    def _choose(self, obj, candidates: list[MarkerPose]) -> tuple[MarkerPose, float | None]:
        """IPPE's two solutions: without `up` the better reprojection; with it, among those that reproject
        within max_reprojection_px, the one whose marker normal is closest to `up` (and that tilt, degrees)."""
        if obj.up is None:
            return candidates[0], None
        up = np.asarray(obj.up, float) / np.linalg.norm(obj.up)

        def tilt(p: MarkerPose) -> float:
            normal = self.T_base_camera[:3, :3] @ p.T_camera_marker[:3, 2]
            return float(np.degrees(np.arccos(np.clip(normal @ up, -1.0, 1.0))))

        plausible = [p for p in candidates if p.reprojection_px <= self.config.filter.max_reprojection_px]
        best = min(plausible or candidates[:1], key=tilt)
        return best, tilt(best)

    def process(self, image_rgb: np.ndarray, stamp_s: float, intrinsics: Intrinsics) -> FrameResult:
        gray = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
        found = self.detector.detect(gray)
        detections: list[MarkerPose] = []
        results: dict[str, TrackResult] = {}
        for marker_id, obj in self.markers.items():
            corners = found.get(marker_id)
            candidates = [] if corners is None else MarkerDetector.poses(marker_id, corners, obj.marker_size,
                                                                         intrinsics)
            if not candidates:
                results[obj.name] = self.trackers[obj.name].update(stamp_s, None)
                continue
            pose, tilt = self._choose(obj, candidates)
            detections.append(pose)
            if tilt is not None and tilt > obj.max_tilt_deg:
                results[obj.name] = TrackResult(None, "rejected", f"marker tilted {tilt:.0f} deg from up "
                                                                  f"(> max_tilt_deg {obj.max_tilt_deg:g})")
                continue
            T_base_object = self.T_base_camera @ pose.T_camera_marker @ self.offsets[obj.name]
            results[obj.name] = self.trackers[obj.name].update(stamp_s, T_base_object, pose.reprojection_px)
        for name, T in self.fixed.items():
            results[name] = TrackResult(T, "seen", "fixture: pose from the task config")
        return FrameResult(results, detections)

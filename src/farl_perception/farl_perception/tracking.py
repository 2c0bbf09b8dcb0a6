"""Per-object pose filter: outlier rejection, a light exponential filter, and 'lost' bookkeeping.

A single bad frame (a corner on the gripper's edge, IPPE's mirrored solution)
must not move the block by centimetres in the policy's observation, and a
relocated block must not be ignored forever. So a measurement is an outlier
when its reprojection error is large, or when it lies further from the last
accepted pose than the object can have moved (`max_jump_m` + `max_speed_mps` x
elapsed time); `confirm_frames` consecutive outliers that agree with each other
are taken as the truth and restart the filter. Accepted measurements are
blended into the estimate with weight 1 - exp(-dt / time_constant_s) (position:
linear; rotation: slerp): the lag stays about time_constant_s when frames come
slower, instead of growing with the frame interval as a fixed weight's would. A gap longer than `lost_after_s` forgets the estimate: a lost object
has no pose, and its next detection starts afresh, never blended with a stale one.

No ROS here; object_pose_node calls `update` once per frame and per object.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from farl_perception.config import FilterConfig
from farl_perception.geometry import matrix_to_quat_xyzw, quat_xyzw_to_matrix, slerp, transform


@dataclass(frozen=True)
class TrackResult:
    pose: np.ndarray | None
    """The filtered pose (4x4, base) to publish for this frame, or None: publish nothing."""
    state: str
    """seen | rejected (why in `reason`) | missing (not detected in this frame) | lost (missing past lost_after_s)"""
    reason: str = ""


class ObjectTracker:
    def __init__(self, config: FilterConfig):
        self.config = config
        self.position: np.ndarray | None = None
        self.quat: np.ndarray | None = None
        self.last_accepted_s: float | None = None
        self.last_seen_s: float | None = None
        self.candidates: list[np.ndarray] = []

    def _forget(self) -> None:
        self.position = self.quat = None
        self.candidates = []

    def _accept(self, T: np.ndarray, stamp_s: float, restart: bool) -> TrackResult:
        q_new = matrix_to_quat_xyzw(T[:3, :3])
        if restart or self.position is None or self.config.time_constant_s == 0:
            self.position, self.quat = T[:3, 3].copy(), q_new
        else:
            dt = max(stamp_s - (self.last_accepted_s or stamp_s), 0.0)
            a = 1.0 - math.exp(-dt / self.config.time_constant_s)
            self.position = (1 - a) * self.position + a * T[:3, 3]
            self.quat = slerp(self.quat, q_new, a)
        self.last_accepted_s = stamp_s
        self.candidates = []
        return TrackResult(transform(quat_xyzw_to_matrix(self.quat), self.position), "seen")

    def update(self, stamp_s: float, measured: np.ndarray | None, reprojection_px: float = 0.0) -> TrackResult:
        """One frame at image time `stamp_s`: the measured pose (4x4, base) or None if not detected."""
        c = self.config
        if self.last_accepted_s is not None and stamp_s - self.last_accepted_s > c.lost_after_s:
            self._forget()
        if measured is None:
            if self.last_seen_s is None or stamp_s - self.last_seen_s > c.lost_after_s:
                return TrackResult(None, "lost", "marker not detected")
            return TrackResult(None, "missing", "marker not detected in this frame")
        self.last_seen_s = stamp_s
        if reprojection_px > c.max_reprojection_px:
            return TrackResult(None, "rejected", f"reprojection {reprojection_px:.2f} px > {c.max_reprojection_px:g}")
        if self.position is None:
            return self._accept(measured, stamp_s, restart=True)
        allowed = c.max_jump_m + c.max_speed_mps * max(stamp_s - (self.last_accepted_s or stamp_s), 0.0)
        jump = float(np.linalg.norm(measured[:3, 3] - self.position))
        if jump <= allowed:
            return self._accept(measured, stamp_s, restart=False)
        # An outlier, or the object really moved: believe it once enough frames agree.
        if self.candidates and np.linalg.norm(measured[:3, 3] - self.candidates[-1][:3, 3]) > c.max_jump_m:
            self.candidates = []
        self.candidates.append(measured)
        if len(self.candidates) >= c.confirm_frames:
            return self._accept(measured, stamp_s, restart=True)
        return TrackResult(None, "rejected", f"jump {jump * 1000:.0f} mm > {allowed * 1000:.0f} mm "
                                             f"({len(self.candidates)}/{c.confirm_frames} to confirm)")

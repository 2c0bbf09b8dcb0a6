"""Driving a running robot side through the calibration poses and collecting (arm, marker) pairs.

Talks to the stack over ROS only: the arm moves through the control node
(/farl/robot/command velocity servoing, so the workspace box, the speed limits
and the watchdog apply to calibration as to everything else), the TCP pose comes
from /farl/robot/ee_pose and the marker from the scene camera's images. So the
same code calibrates the real camera and the sim render.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, Image

from farl_common import interface as api
from farl_control.ros.client import RobotClient
from farl_control.ros.endpoints import subscription
from farl_perception.config import PerceptionConfig
from farl_perception.geometry import quat_xyzw_to_matrix, rotation_angle_deg, rotation_vector, transform
from farl_perception.calibration.handeye import mean_rotation
from farl_perception.calibration.stillness import StillnessGate
from farl_perception.markers import MarkerDetector
from farl_perception.ros_images import image_array, intrinsics_of, stamp_seconds

SERVO_RATE_HZ = 20.0
POSITION_GAIN = 2.0    # 1/s
ROTATION_GAIN = 2.0    # 1/s
MAX_SPEED = 0.08       # m/s
MAX_ANGULAR = 0.4      # rad/s
REACHED_M = 0.003
REACHED_DEG = 1.0


@dataclass(frozen=True)
class PoseSample:
    T_base_gripper: np.ndarray
    T_camera_marker: np.ndarray
    reprojection_px: float


def _pose_matrix(msg: PoseStamped) -> np.ndarray:
    p, q = msg.pose.position, msg.pose.orientation
    return transform(quat_xyzw_to_matrix((q.x, q.y, q.z, q.w)), (p.x, p.y, p.z))


def _average(poses: list[np.ndarray]) -> np.ndarray:
    return transform(mean_rotation([T[:3, :3] for T in poses]), np.mean([T[:3, 3] for T in poses], axis=0))


class CalibrationSession:
    def __init__(self, config: PerceptionConfig, log=print):
        self.config = config
        self.log = log
        self.client = RobotClient("farl_calibrate_camera")
        self.detector = MarkerDetector(config.dictionary)
        self._lock = threading.Lock()
        self._ee: PoseStamped | None = None
        self._info: CameraInfo | None = None
        self._images: list[Image] = []
        node = self.client.node
        subscription(node, api.EE_POSE, self._on_ee, api.NEWEST)
        subscription(node, api.CAMERA_INFO, self._on_info, api.NEWEST)
        subscription(node, api.CAMERA_IMAGE, self._on_image, api.NEWEST)

    def _on_ee(self, msg: PoseStamped) -> None:
        with self._lock:
            self._ee = msg

    def _on_info(self, msg: CameraInfo) -> None:
        with self._lock:
            self._info = msg

    def _on_image(self, msg: Image) -> None:
        with self._lock:
            self._images = (self._images + [msg])[-2:]

    def tcp(self) -> np.ndarray | None:
        with self._lock:
            return None if self._ee is None else _pose_matrix(self._ee)

    def wait_ready(self, timeout_s: float) -> str | None:
        """None once the arm is active and images flow; else what is missing (one line with the fix)."""
        if not self.client.wait_until_active(timeout_s):
            return (f"no active control node ({api.EE_POSE.name} / {api.ROBOT_STATUS.name}): start the robot side, "
                    "e.g. `farl launch <task> autonomy:=false perception:=aruco` (in sim also calibration_marker:=true)")
        if not self.client.wait_for(lambda: self._info is not None and bool(self._images), timeout_s):
            return (f"no images on {api.CAMERA_IMAGE.name}: start the camera (perception:=aruco starts it) "
                    "and check it with `farl doctor`")
        return None

    def move_to(self, target: np.ndarray, timeout_s: float) -> bool:
        """Servo the TCP to `target` (4x4, base) with velocity commands; stop; True if reached."""
        period = 1.0 / SERVO_RATE_HZ
        end = time.monotonic() + timeout_s
        reached = False
        while time.monotonic() < end:
            T = self.tcp()
            if T is None:
                time.sleep(period)
                continue
            dp = target[:3, 3] - T[:3, 3]
            dr = rotation_vector(target[:3, :3] @ T[:3, :3].T)  # base frame
            if np.linalg.norm(dp) < REACHED_M and np.degrees(np.linalg.norm(dr)) < REACHED_DEG:
                reached = True
                break
            v = POSITION_GAIN * dp
            w = ROTATION_GAIN * dr
            v *= min(1.0, MAX_SPEED / max(np.linalg.norm(v), 1e-9))
            w *= min(1.0, MAX_ANGULAR / max(np.linalg.norm(w), 1e-9))
            self.client.send(v, w)
            time.sleep(period)
        for _ in range(3):
            self.client.send((0.0, 0.0, 0.0))
            time.sleep(period)
        return reached

    def sample(self, samples: int, timeout_s: float = 5.0) -> PoseSample | None:
        """Average `samples` fresh images' marker poses and the TCP poses at the same time (None: not seen).

        Only images taken while the arm stood where it stands now count (`StillnessGate`); a
        TCP that moves again throws the samples so far away.
        """
        c = self.config.calibration
        markers, tcps, errors = [], [], []
        seen_stamps: set[tuple[int, int]] = set()
        gate = StillnessGate()
        end = time.monotonic() + timeout_s
        while len(markers) < samples and time.monotonic() < end:
            with self._lock:
                image = self._images[-1] if self._images else None
                info, ee = self._info, self._ee
            if image is None or info is None or ee is None:
                time.sleep(0.02)
                continue
            if not gate.tcp(stamp_seconds(ee.header.stamp), _pose_matrix(ee)):
                markers, tcps, errors = [], [], []  # the arm moved: what was sampled shows another pose
            key = (image.header.stamp.sec, image.header.stamp.nanosec)
            if key in seen_stamps or not gate.admits(stamp_seconds(image.header.stamp)):
                time.sleep(0.01)
                continue
            seen_stamps.add(key)
            gray = cv2.cvtColor(image_array(image), cv2.COLOR_RGB2GRAY)
            corners = self.detector.detect(gray).get(c.marker_id)
            if corners is None:
                continue
            pose = MarkerDetector.pose(c.marker_id, corners, c.marker_size, intrinsics_of(info))
            if pose is None:
                continue
            markers.append(pose.T_camera_marker)
            tcps.append(_pose_matrix(ee))
            errors.append(pose.reprojection_px)
        if len(markers) < samples:
            return None
        return PoseSample(_average(tcps), _average(markers), float(np.mean(errors)))

    def close(self) -> None:
        self.client.close()


def pose_error(T_a: np.ndarray, T_b: np.ndarray) -> tuple[float, float]:
    """(position error mm, rotation error deg) between two transforms."""
    return (float(np.linalg.norm(T_a[:3, 3] - T_b[:3, 3]) * 1000.0), rotation_angle_deg(T_a[:3, :3], T_b[:3, :3]))


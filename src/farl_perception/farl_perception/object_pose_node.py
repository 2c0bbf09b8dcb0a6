"""object_pose node: ArUco markers in the scene camera's image -> object poses in the robot's base frame.

For each colour image (and the CameraInfo of the same stamp) it runs
`ObjectPoseEstimator`: detection, IPPE_SQUARE pose per marker, the camera->base
extrinsic (config/calibration/*.yaml, written by `farl calibrate camera`), the
marker-to-object offset, outlier rejection and a light filter. Each object seen
in the image is published on /farl/objects/<name>, stamped with the image's
time; an object whose marker is not found (or whose pose was rejected) gets no
message for that image, never an old pose with a new stamp: consumers see it
go stale (the shield stops acting after its pose_timeout_s, the arm's watchdog
stops it). /farl/perception/status says which object is lost and why.

Frames are processed newest-first: a subscription of depth 1, so a slow frame
drops the ones behind it instead of adding latency.

Parameters
  task_config, perception_config (string)  task and perception YAML, relative to config/
  extrinsic_file (string)   camera->base file, relative to config/ ('' = the perception config's)
  debug_every (int)         draw /farl/camera/debug_image for every n-th frame (0 = never); only while
                            someone subscribes
Subscribes
  /farl/camera/color/image_raw, /farl/camera/color/camera_info
Publishes
  /farl/objects/<name>      geometry_msgs/PoseStamped, frame base, stamp = the image's
  /farl/perception/status   diagnostic_msgs/DiagnosticArray: one status per object (OK seen, WARN lost ...)
  /farl/camera/debug_image  sensor_msgs/Image rgb8, markers with their axes
"""
from __future__ import annotations

import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from farl_common import interface as api
from farl_common.interface import Qos
from farl_common.task_config import load_task_config
from farl_control.ros.endpoints import publisher, subscription
from farl_control.ros.messages import make_pose
from farl_control.ros.node_main import run_node
from farl_perception.config import load_extrinsic, load_perception_config
from farl_perception.geometry import matrix_to_quat_xyzw
from farl_perception.markers import draw_detections
from farl_perception.object_poses import ObjectPoseEstimator
from farl_perception.ros_images import image_array, image_message, intrinsics_of, stamp_seconds

PROGRAM = "object_pose_node"
NEWEST_FRAME = Qos(depth=1, reliable=False)
STATUS_PERIOD_S = 0.2


class ObjectPoseNode(Node):
    def __init__(self) -> None:
        super().__init__("object_pose")
        describe = lambda text: ParameterDescriptor(description=text)  # noqa: E731
        self.declare_parameter("task_config", "tasks/fragile_push_wall.yaml",
                               describe("Task YAML: a task name or a path relative to config/"))
        self.declare_parameter("perception_config", "perception/fragile_push_wall.yaml",
                               describe("Perception YAML (markers, offsets, filter), relative to config/"))
        self.declare_parameter("extrinsic_file", "", describe(
            "camera->base extrinsic YAML relative to config/ ('' = extrinsic_file of the perception config)"))
        self.declare_parameter("debug_every", 3, describe(
            "Publish the debug image for every n-th frame (0 = never); only while it has a subscriber"))
        task = load_task_config(self.get_parameter("task_config").value)
        self.config = load_perception_config(self.get_parameter("perception_config").value, task)
        self.extrinsic = load_extrinsic(str(self.get_parameter("extrinsic_file").value) or self.config.extrinsic_file)
        self.debug_every = int(self.get_parameter("debug_every").value)
        self.estimator = ObjectPoseEstimator(self.config, task, self.extrinsic.matrix)
        self._lock = threading.Lock()
        self._info: CameraInfo | None = None
        self.frames = 0
        self.last_image = None  # monotonic time of the last image
        self.latency_ms = 0.0
        self.process_ms = 0.0
        self.states: dict[str, tuple[str, str, float | None]] = {
            o.name: ("waiting", "no image yet", None) for o in self.config.objects}

        self.pose_pubs = {o.name: publisher(self, api.object_topic(o.name)) for o in self.config.objects}
        self.status_pub = publisher(self, api.PERCEPTION_STATUS)
        self.debug_pub = publisher(self, api.CAMERA_DEBUG_IMAGE)
        subscription(self, api.CAMERA_INFO, self._on_info, NEWEST_FRAME)
        subscription(self, api.CAMERA_IMAGE, self._on_image, NEWEST_FRAME)
        self.create_timer(STATUS_PERIOD_S, self._publish_status)
        residual = ("not calibrated" if self.extrinsic.residual_mm is None else
                    f"residual {self.extrinsic.residual_mm:.1f} mm / {self.extrinsic.residual_deg:.2f} deg")
        self.get_logger().info(f"markers {', '.join(f'{o.name}={o.marker_id}' for o in self.config.markers)}; "
                               f"extrinsic {self.extrinsic.path} ({residual})")

    def _on_info(self, msg: CameraInfo) -> None:
        with self._lock:
            self._info = msg

    def _on_image(self, msg: Image) -> None:
        started = time.monotonic()
        with self._lock:
            info = self._info
        if info is None:
            return
        try:
            pixels = image_array(msg)
        except ValueError as error:
            self.get_logger().error(f"{api.CAMERA_IMAGE.name}: {error}", throttle_duration_sec=5.0)
            return
        intrinsics = intrinsics_of(info)
        stamp_s = stamp_seconds(msg.header.stamp)
        result = self.estimator.process(pixels, stamp_s, intrinsics)
        for name, track in result.objects.items():
            if track.pose is not None:
                self.pose_pubs[name].publish(make_pose(track.pose[:3, 3], matrix_to_quat_xyzw(track.pose[:3, :3]),
                                                       msg.header.stamp))
            with self._lock:
                previous = self.states[name]
                since = stamp_s if track.state != previous[0] or previous[2] is None else previous[2]
                self.states[name] = (track.state, track.reason, since)
        now_s = stamp_seconds(self.get_clock().now().to_msg())
        self.last_image = time.monotonic()
        elapsed_ms = (time.monotonic() - started) * 1000.0
        self.frames += 1
        self.process_ms = elapsed_ms if self.frames == 1 else 0.9 * self.process_ms + 0.1 * elapsed_ms
        self.latency_ms = (now_s - stamp_s) * 1000.0
        if self.debug_every and self.frames % self.debug_every == 0 and self.debug_pub.get_subscription_count():
            image = draw_detections(pixels, result.detections, self.estimator.sizes, intrinsics)
            self.debug_pub.publish(image_message(image, msg.header.stamp, msg.header.frame_id))

    def _publish_status(self) -> None:
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        with self._lock:
            states = dict(self.states)
        stamp_now = stamp_seconds(array.header.stamp)
        if self.last_image is not None and time.monotonic() - self.last_image > self.config.filter.lost_after_s:
            silent = time.monotonic() - self.last_image
            states = {name: ("lost", f"no image from the camera for {silent:.1f} s", None) for name in states}
        for name, (state, reason, since) in states.items():
            status = DiagnosticStatus()
            status.name = f"farl/objects/{name}"
            status.hardware_id = "object_pose"
            status.level = DiagnosticStatus.OK if state == "seen" else DiagnosticStatus.WARN
            lasting = "" if since is None or state == "seen" else f" for {max(stamp_now - since, 0.0):.1f} s"
            status.message = state if state == "seen" else f"{state}{lasting}: {reason}"
            status.values = [KeyValue(key="state", value=state), KeyValue(key="reason", value=reason),
                             KeyValue(key="frames", value=str(self.frames)),
                             KeyValue(key="latency_ms", value=f"{self.latency_ms:.1f}"),
                             KeyValue(key="process_ms", value=f"{self.process_ms:.1f}")]
            array.status.append(status)
        self.status_pub.publish(array)


def main(args: list[str] | None = None) -> None:
    # The node's callbacks share its default (mutually exclusive) group: one frame at a time, newest first.
    run_node(PROGRAM, ObjectPoseNode, args, threads=2)


if __name__ == "__main__":
    main(sys.argv)

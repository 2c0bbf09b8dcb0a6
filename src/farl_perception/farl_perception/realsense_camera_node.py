"""realsense_camera node: the scene camera on the real arm (Intel RealSense, colour stream).

Publishes each colour frame as it arrives (30 Hz) with its intrinsics, stamped
with the host time at arrival; while the camera is missing or has dropped off
USB it publishes nothing (object_pose then stops publishing poses, the shield
stops acting on stale ones, and the control node's watchdog holds the arm).

Device handling (`farl_perception.realsense`): one error line naming the fix
when no device (or not the one with `serial`) is found, repeated only when the
reason changes; a retry every camera.reconnect_period_s; no frame for
camera.frame_timeout_s = a USB drop: the stream is closed and the device looked
for again.

Parameters
  perception_config (string)  perception YAML, relative to config/
  serial (string)             RealSense serial ('' = camera.serial of the config, '' there = the only one)
Publishes
  /farl/camera/color/image_raw    sensor_msgs/Image rgb8
  /farl/camera/color/camera_info  sensor_msgs/CameraInfo (the device's intrinsics), same stamp
  /farl/perception/status         diagnostic_msgs/DiagnosticArray: streaming | no device (why) | reconnecting
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Callable, Sequence

from diagnostic_msgs.msg import DiagnosticStatus
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from farl_common import interface as api
from farl_control.ros.endpoints import publisher
from farl_control.ros.messages import make_status
from farl_control.ros.node_main import run_node
from farl_perception.config import load_perception_config
from farl_perception.realsense import CameraError, RealSenseColor, usb_devices
from farl_perception.ros_images import camera_info_message, image_message

PROGRAM = "realsense_camera_node"
STATUS_NAME = "farl/camera"


class RealSenseCameraNode(Node):
    def __init__(self, find_devices: Callable[[], Sequence] = usb_devices) -> None:
        super().__init__("scene_camera")
        self.declare_parameter("perception_config", "perception/fragile_push_wall.yaml", ParameterDescriptor(
            description="Perception YAML (camera stream, markers), relative to config/"))
        # Dynamic typing: a serial of digits arrives from a launch argument as an integer.
        self.declare_parameter("serial", "", ParameterDescriptor(
            description="Serial number of the RealSense to use ('' = the config's camera.serial; "
                        "'' there too = the only RealSense connected)", dynamic_typing=True))
        self.config = load_perception_config(self.get_parameter("perception_config").value)
        cam = self.config.camera
        serial = str(self.get_parameter("serial").value) or cam.serial
        self.camera = RealSenseColor(find_devices, serial, cam.width, cam.height, cam.rate_hz)
        self.image_pub = publisher(self, api.CAMERA_IMAGE)
        self.info_pub = publisher(self, api.CAMERA_INFO)
        self.status_pub = publisher(self, api.PERCEPTION_STATUS)
        self.state = "starting"
        self.frames = 0
        self.reconnects = 0
        self._last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="realsense", daemon=True)
        self.create_timer(1.0, self._publish_status)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        cam = self.config.camera
        while not self._stop.is_set():
            try:
                intrinsics = self.camera.open()
            except (CameraError, RuntimeError) as error:  # RuntimeError: librealsense's own (busy, gone)
                self._report(f"{error}")
                self.state = "no device"
                self._stop.wait(cam.reconnect_period_s)
                continue
            self._last_error = ""
            self.state = "streaming"
            self.get_logger().info(f"RealSense {self.camera.device_serial}: {cam.width}x{cam.height} RGB8 at "
                                   f"{cam.rate_hz:g} Hz, fx {intrinsics.fx:.1f} fy {intrinsics.fy:.1f}")
            while not self._stop.is_set():
                frame = self.camera.read(cam.frame_timeout_s)
                if frame is None:
                    break
                stamp = self.get_clock().now().to_msg()
                self.image_pub.publish(image_message(frame.pixels, stamp, cam.frame_id))
                self.info_pub.publish(camera_info_message(intrinsics, stamp, cam.frame_id))
                self.frames += 1
            self.camera.close()
            if not self._stop.is_set():
                self.reconnects += 1
                self.state = "reconnecting"
                self.get_logger().error(f"RealSense {self.camera.device_serial}: no frame for "
                                        f"{cam.frame_timeout_s:g} s (USB drop?): closed, looking for it again")

    def _report(self, line: str) -> None:
        """One error line per distinct reason, not one per retry."""
        if line != self._last_error:
            self._last_error = line
            self.get_logger().error(line)

    def _publish_status(self) -> None:
        level = DiagnosticStatus.OK if self.state == "streaming" else DiagnosticStatus.ERROR
        message = self.state if self.state == "streaming" else f"{self.state}: {self._last_error}".rstrip(": ")
        self.status_pub.publish(make_status(STATUS_NAME, level, message, {
            "serial": self.camera.device_serial, "frames": self.frames, "reconnects": self.reconnects},
            self.get_clock().now().to_msg(), hardware_id=self.camera.device_serial))

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=3.0)
        self.camera.close()


def main(args: list[str] | None = None) -> None:
    run_node(PROGRAM, RealSenseCameraNode, args, on_start=lambda node: node.start())


if __name__ == "__main__":
    main(sys.argv)

"""The RealSense camera code, driven through pyrealsense2's software_device (mocked only at USB).

`RealSenseColor` and `RealSenseCameraNode` are the code that runs on the robot
PC; only the device list is replaced: a software device whose colour sensor
receives frames the test makes. Device choice by serial, the one-line errors
that name the fix, frames and intrinsics, and reconnection after a USB drop.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pyrealsense2 as rs
import pytest

from farl_perception.realsense import CameraError, RealSenseColor

WIDTH, HEIGHT, FPS = 640, 480, 30


class SoftwareCamera:
    """A RealSense that exists only in software: one RGB8 colour stream with known intrinsics."""

    def __init__(self, serial: str = "817612070001"):
        self.device = rs.software_device()
        self.device.register_info(rs.camera_info.name, "Intel RealSense D435 (software)")
        self.device.register_info(rs.camera_info.serial_number, serial)
        self.sensor = self.device.add_sensor("RGB Camera")
        intrinsics = rs.intrinsics()
        intrinsics.width, intrinsics.height = WIDTH, HEIGHT
        intrinsics.fx, intrinsics.fy, intrinsics.ppx, intrinsics.ppy = 615.0, 614.0, 321.5, 238.5
        intrinsics.model = rs.distortion.brown_conrady
        intrinsics.coeffs = [0.01, -0.02, 0.0, 0.0, 0.0]
        stream = rs.video_stream()
        stream.type, stream.index, stream.uid = rs.stream.color, 0, 0
        stream.width, stream.height, stream.fps, stream.bpp = WIDTH, HEIGHT, FPS, 3
        stream.fmt, stream.intrinsics = rs.format.rgb8, intrinsics
        self.profile = self.sensor.add_video_stream(stream).as_video_stream_profile()
        self.number = 0

    def push(self, value: int) -> None:
        """One frame of a uniform colour `value` (what arrives is checked against it)."""
        self.number += 1
        frame = rs.software_video_frame()
        frame.pixels = np.full((HEIGHT, WIDTH, 3), value, np.uint8)
        frame.bpp, frame.stride = 3, WIDTH * 3
        frame.timestamp = time.time() * 1000.0
        frame.domain = rs.timestamp_domain.system_time
        frame.frame_number = self.number
        frame.profile = self.profile
        self.sensor.on_video_frame(frame)


def test_frames_and_intrinsics_come_through_from_the_device():
    camera = SoftwareCamera()
    color = RealSenseColor(lambda: [camera.device], "", WIDTH, HEIGHT, FPS)
    intrinsics = color.open()
    assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == (615.0, 614.0, 321.5, 238.5)
    assert intrinsics.distortion[:2] == pytest.approx((0.01, -0.02))
    camera.push(77)
    frame = color.read(2.0)
    assert frame is not None and frame.pixels.shape == (HEIGHT, WIDTH, 3) and int(frame.pixels.mean()) == 77
    assert color.read(0.1) is None  # no frame: read times out instead of blocking
    color.close()


def test_no_device_is_one_line_that_names_the_fix():
    with pytest.raises(CameraError) as error:
        RealSenseColor(lambda: [], "", WIDTH, HEIGHT, FPS).open()
    text = str(error.value)
    assert "\n" not in text and "no Intel RealSense found" in text and "USB 3" in text


def test_a_wrong_serial_lists_the_connected_ones():
    camera = SoftwareCamera("111")
    with pytest.raises(CameraError, match="no RealSense with serial '222' .connected: 111."):
        RealSenseColor(lambda: [camera.device], "222", WIDTH, HEIGHT, FPS).open()


def test_a_stream_the_device_lacks_is_refused_naming_the_config_keys():
    camera = SoftwareCamera()
    with pytest.raises(CameraError, match="no 1280x720 RGB8 colour stream.*camera.width"):
        RealSenseColor(lambda: [camera.device], "", 1280, 720, FPS).open()


def test_after_a_drop_the_stream_opens_again():
    camera = SoftwareCamera()
    color = RealSenseColor(lambda: [camera.device], "", WIDTH, HEIGHT, FPS)
    color.open()
    assert color.read(0.2) is None  # the device went quiet: the node closes and reconnects
    color.close()
    color.open()
    camera.push(12)
    frame = color.read(2.0)
    assert frame is not None and int(frame.pixels.mean()) == 12
    color.close()


@pytest.mark.ros
def test_the_camera_node_publishes_software_device_frames_and_reconnects_after_a_usb_drop():
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node

    from farl_common import interface as api
    from farl_control.ros.endpoints import subscription
    from farl_perception.realsense_camera_node import RealSenseCameraNode
    from farl_perception.ros_images import image_array

    camera = SoftwareCamera()
    present = threading.Event()
    present.set()
    rclpy.init()
    node = RealSenseCameraNode(find_devices=lambda: [camera.device] if present.is_set() else [])
    listener = Node("camera_listener")
    images, infos = [], []
    subscription(listener, api.CAMERA_IMAGE, images.append)
    subscription(listener, api.CAMERA_INFO, infos.append)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    executor.add_node(listener)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        node.start()

        def feed_until(predicate, value, timeout_s=10.0):
            end = time.monotonic() + timeout_s
            while time.monotonic() < end and not predicate():
                camera.push(value)
                time.sleep(1.0 / FPS)
            return predicate()

        time.sleep(1.0)  # discovery
        assert feed_until(lambda: len(images) >= 5, 40)
        assert int(image_array(images[-1]).mean()) == 40 and images[-1].encoding == "rgb8"
        assert infos and infos[-1].k[0] == 615.0 and infos[-1].header.stamp == images[-1].header.stamp
        # USB drop: no frames, and the device gone from the list for a while.
        present.clear()
        deadline = time.monotonic() + node.config.camera.frame_timeout_s + 3.0
        while node.state == "streaming" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert node.state in ("reconnecting", "no device")
        present.set()
        count = len(images)
        assert feed_until(lambda: len(images) >= count + 5 and node.state == "streaming", 99, timeout_s=15.0)
        assert int(image_array(images[-1]).mean()) == 99 and node.reconnects >= 1
    finally:
        node.shutdown()
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
        listener.destroy_node()
        rclpy.try_shutdown()

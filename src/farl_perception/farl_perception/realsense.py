"""One colour stream from an Intel RealSense, through pyrealsense2 (no ROS).

The device is found through `find_devices`, the one seam tests replace: on the
robot PC it lists the USB devices (`rs.context().query_devices()`); a test hands
it an `rs.software_device`, and everything else (choosing the device by serial,
opening the colour sensor's stream profile, reading frames and intrinsics,
closing) is the code that runs on the robot. The colour sensor is opened
directly (`sensor.open` + a frame queue) rather than through `rs.pipeline`, so
hardware and software devices take the same path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pyrealsense2 as rs

from farl_perception.intrinsics import Intrinsics

FIX_NO_DEVICE = ("plug the camera into a USB 3 port, check that `lsusb` lists it (vendor 8086) and that "
                 "librealsense's udev rules are installed (docs/BRINGUP.md)")


class CameraError(Exception):
    """The camera cannot be used; the message is one line that names the fix."""


def usb_devices() -> Sequence:
    """The RealSense devices on USB (the robot PC's `find_devices`)."""
    return list(rs.context().query_devices())


def _serial(device) -> str:
    return device.get_info(rs.camera_info.serial_number) if device.supports(rs.camera_info.serial_number) else "?"


@dataclass(frozen=True)
class Frame:
    pixels: np.ndarray  # height x width x 3, RGB
    number: int


class RealSenseColor:
    """Open the colour stream of the RealSense with `serial` ('' = the only one), read frames, close."""

    def __init__(self, find_devices: Callable[[], Sequence], serial: str, width: int, height: int, fps: float):
        self.find_devices = find_devices
        self.serial = serial
        self.width, self.height, self.fps = width, height, int(round(fps))
        self.sensor = None
        self.queue: rs.frame_queue | None = None
        self.device_serial = ""
        self.intrinsics: Intrinsics | None = None

    def _device(self):
        devices = list(self.find_devices())
        if not devices:
            raise CameraError(f"no Intel RealSense found on USB: {FIX_NO_DEVICE}")
        serials = [_serial(d) for d in devices]
        if self.serial:
            for device, serial in zip(devices, serials):
                if serial == self.serial:
                    return device
            raise CameraError(f"no RealSense with serial {self.serial!r} (connected: {', '.join(serials)}): "
                              f"set the camera node's serial parameter to one of them")
        if len(devices) > 1:
            raise CameraError(f"{len(devices)} RealSense cameras connected ({', '.join(serials)}): "
                              "set the camera node's serial parameter to the scene camera's")
        return devices[0]

    def open(self) -> Intrinsics:
        """Find the device and start its colour stream; CameraError (one line with the fix) if it cannot."""
        device = self._device()
        for sensor in device.query_sensors():
            for profile in sensor.get_stream_profiles():
                if profile.stream_type() != rs.stream.color or profile.format() != rs.format.rgb8:
                    continue
                video = profile.as_video_stream_profile()
                if (video.width(), video.height(), video.fps()) == (self.width, self.height, self.fps):
                    return self._start(device, sensor, video)
        raise CameraError(f"RealSense {_serial(device)} has no {self.width}x{self.height} RGB8 colour stream at "
                          f"{self.fps} Hz: change camera.width/height/rate_hz in the perception config")

    def _start(self, device, sensor, profile) -> Intrinsics:
        i = profile.get_intrinsics()
        self.intrinsics = Intrinsics(i.width, i.height, i.fx, i.fy, i.ppx, i.ppy, tuple(float(c) for c in i.coeffs))
        self.queue = rs.frame_queue(2)  # the newest frames only: a slow reader drops, never lags
        sensor.open(profile)
        try:
            sensor.start(self.queue)
        except Exception:
            sensor.close()
            raise
        self.sensor = sensor
        self.device_serial = _serial(device)
        return self.intrinsics

    def read(self, timeout_s: float) -> Frame | None:
        """The next frame, or None if none came within `timeout_s` (the device may have dropped off USB)."""
        if self.queue is None:
            return None
        ok, frame = self.queue.try_wait_for_frame(int(timeout_s * 1000))
        if not ok:
            return None
        pixels = np.asanyarray(frame.get_data()).reshape(self.height, self.width, 3).copy()
        return Frame(pixels, int(frame.get_frame_number()))

    def close(self) -> None:
        """Stop and close the stream; safe after a USB drop (the device may already be gone)."""
        sensor, self.sensor, self.queue = self.sensor, None, None
        if sensor is None:
            return
        for step in (sensor.stop, sensor.close):
            try:
                step()
            except RuntimeError:  # the device is gone: nothing left to stop
                pass

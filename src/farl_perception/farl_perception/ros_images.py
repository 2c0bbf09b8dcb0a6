"""numpy images and `Intrinsics` <-> sensor_msgs Image / CameraInfo (one place for encodings and the K/P layout)."""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, Image

from farl_perception.intrinsics import Intrinsics

ENCODINGS = {"rgb8": 3, "bgr8": 3, "mono8": 1}


def image_message(pixels: np.ndarray, stamp: Time, frame_id: str, encoding: str = "rgb8") -> Image:
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(msg.width * ENCODINGS[encoding])
    msg.data = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    return msg


def image_array(msg: Image) -> np.ndarray:
    """The pixels of an rgb8 / bgr8 / mono8 image as an RGB (or mono) uint8 array; ValueError otherwise."""
    channels = ENCODINGS.get(msg.encoding)
    if channels is None:
        raise ValueError(f"image encoding {msg.encoding!r} is not one of {', '.join(ENCODINGS)}")
    rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
    pixels = rows[:, :msg.width * channels].reshape(msg.height, msg.width, channels)
    if msg.encoding == "bgr8":
        pixels = pixels[:, :, ::-1]
    return pixels if channels == 3 else pixels[:, :, 0]


def camera_info_message(intrinsics: Intrinsics, stamp: Time, frame_id: str) -> CameraInfo:
    msg = CameraInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.width, msg.height = intrinsics.width, intrinsics.height
    msg.distortion_model = "plumb_bob"
    msg.d = [float(v) for v in intrinsics.distortion]
    msg.k = [float(v) for v in intrinsics.K.ravel()]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [intrinsics.fx, 0.0, intrinsics.cx, 0.0, 0.0, intrinsics.fy, intrinsics.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def intrinsics_of(msg: CameraInfo) -> Intrinsics:
    k = list(msg.k)
    return Intrinsics(int(msg.width), int(msg.height), k[0], k[4], k[2], k[5], tuple(float(v) for v in msg.d))


def stamp_seconds(stamp) -> float:
    """A builtin_interfaces/Time as seconds (float)."""
    return stamp.sec + stamp.nanosec * 1e-9

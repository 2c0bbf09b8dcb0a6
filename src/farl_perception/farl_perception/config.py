"""Typed perception configuration: config/perception/<task>.yaml and the camera extrinsic file.

What the camera is (resolution, rate, RealSense serial), where the rendered sim
camera sits, which marker sits on which object and where the object's centre is
from it, how the pose filter rejects outliers, and how `farl calibrate camera`
moves the arm. The camera->base extrinsic lives in its own file
(`extrinsic_file`), because `farl calibrate camera` rewrites it: a generated
file, never hand-edited next to comments.

Read with `farl_common.config`, so a bad file fails at start-up with one line
naming the file and the key (a duplicate marker id, a marker without a size).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from farl_common.config import ConfigProblem, derived, load, setting
from farl_common.errors import ConfigError
from farl_common.paths import config_dir, resolve_config_path
from farl_common.task_config import TaskConfig
from farl_perception.geometry import look_at_rotation, matrix_to_quat_xyzw, quat_xyzw_to_matrix, transform

Vec3 = tuple[float, float, float]
DICTIONARIES = ("DICT_4X4_50", "DICT_4X4_100", "DICT_5X5_50", "DICT_5X5_100", "DICT_6X6_50", "DICT_6X6_250")


@dataclass(frozen=True)
class CameraConfig:
    """The scene camera's image stream (the RealSense and the sim render publish the same)."""

    width: int = setting(640, minimum=16)
    height: int = setting(480, minimum=16)
    rate_hz: float = setting(30.0, positive=True, maximum=90.0)
    """Colour frames per second (the RealSense's stream rate; the sim render aims at it)."""
    frame_id: str = "scene_camera_optical"
    """frame_id of images and CameraInfo (OpenCV optical convention: x right, y down, z forward)."""
    serial: str = ""
    """RealSense serial number; empty = the only RealSense connected (the node's `serial` parameter overrides)."""
    frame_timeout_s: float = setting(1.0, positive=True)
    """No frame for this long = the device dropped off USB: the node closes it and reconnects."""
    reconnect_period_s: float = setting(1.0, positive=True)
    """How often the node looks for the device again while it is gone."""


@dataclass(frozen=True)
class SimCameraConfig:
    """The rendered camera in simulation: a pinhole at `position` looking at `look_at` (base frame)."""

    position: Vec3
    look_at: Vec3
    fovy_deg: float = 50.0
    """Vertical field of view; with a centred principal point and square pixels it fixes the intrinsics."""
    rate_hz: float = 30.0
    """Render rate it aims at; frames it cannot render in time are skipped, never queued."""
    nice: int = 10
    """The renderer's process lowers its priority by this much: a slow frame costs camera frames, not sim steps."""

    def check(self) -> None:
        if not 1.0 <= self.fovy_deg <= 150.0:
            raise ConfigProblem("fovy_deg", f"must be in [1, 150], got {self.fovy_deg}")
        if self.rate_hz <= 0:
            raise ConfigProblem("rate_hz", f"must be > 0, got {self.rate_hz}")
        if np.linalg.norm(np.subtract(self.look_at, self.position)) < 1e-6:
            raise ConfigProblem("look_at", "must differ from position")

    def camera_to_base(self) -> np.ndarray:
        """The true camera->base transform (4x4) of the rendered camera, optical convention."""
        return transform(look_at_rotation(self.position, self.look_at), self.position)


@dataclass(frozen=True)
class TrackedObject:
    """One object of the task as perception sees it: a marker on it, or a fixture of known pose."""

    name: str
    marker_id: int | None = None
    """ArUco id of the marker on the object (in `dictionary`)."""
    marker_size: float | None = None
    """Side of the marker's black square, metres."""
    offset: Vec3 = (0.0, 0.0, 0.0)
    """The object's centre in the marker frame (x right, y up on the printed marker, z out of it), metres."""
    face: Vec3 = (0.0, 0.0, 1.0)
    """The marker's outward normal in the object's frame: [0, 0, 1] on the top face, e.g. [0, 1, 0] on the
    side facing +y (printed upright). A face the gripper never covers: over a pushed block's top face
    hovers the hand."""
    fixed: bool = False
    """No marker: a fixture (bolted to the table) whose pose is the task config's scene `pos`."""
    up: Vec3 | None = None
    """Where the marker's normal points in base when the object is as it should be (a block on the table:
    [0, 0, 1]). Chooses between IPPE's two solutions for an oblique marker; None: the better reprojection."""
    max_tilt_deg: float = 30.0
    """With `up`: a pose whose marker normal is further than this from `up` is rejected (the block does not tip)."""

    def check(self) -> None:
        if self.fixed:
            if self.marker_id is not None:
                raise ConfigProblem("marker_id", "a fixed object has no marker: remove marker_id or fixed")
            return
        if self.marker_id is None:
            raise ConfigProblem("marker_id", "missing required key (or `fixed: true` for a fixture)")
        if self.marker_id < 0:
            raise ConfigProblem("marker_id", f"must be >= 0, got {self.marker_id}")
        if self.marker_size is None:
            raise ConfigProblem("marker_size", "missing required key (side of the marker's black square, m)")
        if self.marker_size <= 0:
            raise ConfigProblem("marker_size", f"must be > 0, got {self.marker_size}")
        if np.linalg.norm(self.face) < 1e-6:
            raise ConfigProblem("face", "must be a non-zero direction (the marker's normal in the object frame)")


@dataclass(frozen=True)
class FilterConfig:
    """Outlier rejection and the light temporal filter of object_pose."""

    max_reprojection_px: float = 2.0
    """A marker pose whose corners reproject further than this (RMS, pixels) is rejected."""
    max_jump_m: float = 0.03
    """A position further than this (+ max_speed x elapsed time) from the last accepted one is an outlier ..."""
    max_speed_mps: float = 0.5
    confirm_frames: int = 3
    """... unless that many consecutive frames agree on it: then the object really moved and the filter restarts."""
    time_constant_s: float = 0.02
    """Of the exponential filter: a measurement dt after the last one gets weight 1 - exp(-dt / this), so the
    filter lags by about this long whatever the frame rate (0 = no filtering)."""
    lost_after_s: float = 0.25
    """Without a detection for this long the object is reported lost and the filter forgets it."""

    def check(self) -> None:
        if self.time_constant_s < 0:
            raise ConfigProblem("time_constant_s", f"must be >= 0, got {self.time_constant_s}")
        if self.confirm_frames < 1:
            raise ConfigProblem("confirm_frames", f"must be >= 1, got {self.confirm_frames}")
        for key in ("max_reprojection_px", "max_jump_m", "lost_after_s"):
            if getattr(self, key) <= 0:
                raise ConfigProblem(key, f"must be > 0, got {getattr(self, key)}")


@dataclass(frozen=True)
class CalibrationConfig:
    """`farl calibrate camera`: a marker held by the gripper, moved through `poses` TCP poses."""

    marker_id: int
    marker_size: float
    center: Vec3
    """TCP position (base) the poses are spread around: in view of the camera, clear of the objects."""
    position_spread: Vec3 = (0.08, 0.08, 0.06)
    """Half ranges (m) of the TCP positions around `center`."""
    tilt_deg: float = 20.0
    """Largest tilt of the gripper away from pointing down; hand-eye needs rotations about several axes."""
    poses: int = 12
    settle_s: float = 0.6
    """Wait after each move before sampling (the arm and the filter settle)."""
    samples: int = 5
    """Images averaged per pose."""
    sim_marker_in_hand: Vec3 = (0.0, -0.15, 0.06)
    """Sim only: where the rendered calibration marker's centre sits in the hand frame (franky-sim's
    `hand` body); the solver does not know it, it estimates it."""
    sim_marker_normal_in_hand: Vec3 = (0.35, -0.75, -0.55)
    """Sim only: the direction the rendered marker faces, in the hand frame (toward the camera)."""

    def check(self) -> None:
        if self.poses < 3:
            raise ConfigProblem("poses", f"hand-eye calibration needs >= 3 poses, got {self.poses}")
        if self.marker_size <= 0:
            raise ConfigProblem("marker_size", f"must be > 0, got {self.marker_size}")


@dataclass(frozen=True)
class PerceptionConfig:
    task: str
    camera: CameraConfig
    sim_camera: SimCameraConfig
    objects: tuple[TrackedObject, ...]
    calibration: CalibrationConfig
    extrinsic_file: str = "calibration/scene_camera.yaml"
    """The camera->base extrinsic, relative to config/ (written by `farl calibrate camera`)."""
    dictionary: str = "DICT_4X4_50"
    filter: FilterConfig = FilterConfig()
    path: Path = derived()

    def check(self) -> None:
        if self.dictionary not in DICTIONARIES:
            raise ConfigProblem("dictionary", f"{self.dictionary!r} is not one of {', '.join(DICTIONARIES)}")
        names = [o.name for o in self.objects]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ConfigProblem(f"objects[{i}].name", f"{name!r} appears twice")
        seen: dict[int, str] = {}
        for i, obj in enumerate(self.objects):
            if obj.marker_id is None:
                continue
            if obj.marker_id in seen:
                raise ConfigProblem(f"objects[{i}].marker_id",
                                    f"id {obj.marker_id} is also {seen[obj.marker_id]}'s: every marker needs its own id")
            seen[obj.marker_id] = obj.name
        if self.calibration.marker_id in seen:
            raise ConfigProblem("calibration.marker_id",
                                f"id {self.calibration.marker_id} is {seen[self.calibration.marker_id]}'s marker")

    @property
    def markers(self) -> tuple[TrackedObject, ...]:
        return tuple(o for o in self.objects if not o.fixed)

    @property
    def extrinsic_path(self) -> Path:
        return resolve_config_path(self.extrinsic_file)

    def check_against(self, task: TaskConfig) -> None:
        """Every object must be a tracked object of the task, every tracked object perceived."""
        tracked = {o.name for o in task.scene.tracked}
        for i, obj in enumerate(self.objects):
            if obj.name not in tracked:
                raise ConfigError(self.path, f"{obj.name!r} is not a tracked scene object of {task.path}",
                                  key=f"objects[{i}].name")
        missing = sorted(tracked - {o.name for o in self.objects})
        if missing:
            raise ConfigError(self.path, f"no entry for tracked object(s) {', '.join(missing)}: the stack would "
                                         "wait for their poses forever", key="objects")


@dataclass(frozen=True)
class Extrinsic:
    """camera->base: p_base = R p_camera + t, with the calibration's residual (None: not calibrated)."""

    translation: Vec3
    rotation_xyzw: tuple[float, float, float, float]
    residual_mm: float | None = None
    residual_deg: float | None = None
    poses: int | None = None
    source: str = ""
    """What produced it: the command line of the calibration, or how it was measured."""
    path: Path = derived()

    def check(self) -> None:
        if abs(np.linalg.norm(self.rotation_xyzw) - 1.0) > 1e-3:
            raise ConfigProblem("rotation_xyzw", f"not a unit quaternion (norm {np.linalg.norm(self.rotation_xyzw):.4f})")

    @property
    def matrix(self) -> np.ndarray:
        return transform(quat_xyzw_to_matrix(self.rotation_xyzw), self.translation)

    @staticmethod
    def from_matrix(T: np.ndarray, **fields) -> "Extrinsic":
        return Extrinsic(tuple(float(v) for v in T[:3, 3]),  # type: ignore[arg-type]
                         tuple(float(v) for v in matrix_to_quat_xyzw(T[:3, :3])), **fields)  # type: ignore[arg-type]


def perception_config_path(task: str) -> Path:
    return config_dir() / "perception" / f"{task}.yaml"


def load_perception_config(path: str | Path, task: TaskConfig | None = None) -> PerceptionConfig:
    """Read a perception config (a path relative to config/ or a task name); checked against `task` if given."""
    text = str(path)
    resolved = resolve_config_path(text) if text.endswith((".yaml", ".yml")) else perception_config_path(text)
    config = dataclasses.replace(load(PerceptionConfig, resolved), path=resolved)
    if task is not None:
        config.check_against(task)
    return config


def load_extrinsic(path: str | Path) -> Extrinsic:
    resolved = resolve_config_path(path)
    return dataclasses.replace(load(Extrinsic, resolved), path=resolved)

"""Typed per-task configuration (config/tasks/<task>.yaml).

Everything a node needs to know about a task (where the arm may go, how fast,
what the scene holds, what counts as failure and success) is read here once and
validated, so nodes hold no magic numbers and a bad file fails at start-up with
one line naming the file and key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from farl_common.errors import ConfigError
from farl_common.paths import config_dir, task_config_path
from farl_common.config import Section, load_yaml_mapping


@dataclass(frozen=True)
class RobotConfig:
    home_joints: tuple[float, ...]
    relative_dynamics_factor: float
    torque_threshold: float
    force_threshold: float
    # How long the control node keeps retrying to reach the arm (franky-sim may still be starting).
    connect_timeout_s: float = 15.0
    # Upper bound on a blocking joint motion (go home) before it is reported as failed.
    motion_timeout_s: float = 30.0
    # Before the joint motion home, a TCP below this height (m, base frame) first moves
    # straight up to it, so going home never sweeps the hand through the objects. None: no lift.
    reset_lift_z: float | None = None

    @staticmethod
    def from_section(s: Section) -> "RobotConfig":
        return RobotConfig(
            home_joints=s.vector("home_joints", 7),
            relative_dynamics_factor=s.number("relative_dynamics_factor", positive=True, maximum=1.0),
            torque_threshold=s.number("torque_threshold", positive=True),
            force_threshold=s.number("force_threshold", positive=True),
            connect_timeout_s=s.number("connect_timeout_s", 15.0, positive=True),
            motion_timeout_s=s.number("motion_timeout_s", 30.0, positive=True),
            reset_lift_z=(s.number("reset_lift_z", positive=True) if s.data.get("reset_lift_z") is not None
                          else None),
        )


@dataclass(frozen=True)
class ControlConfig:
    rate_hz: float
    workspace_min: tuple[float, float, float]
    workspace_max: tuple[float, float, float]
    max_linear_speed: float
    max_angular_speed: float
    command_timeout_s: float
    teleop_hold_s: float
    absurd_factor: float
    accepted_frames: tuple[str, ...]
    state_rate_hz: float
    status_rate_hz: float
    boundary_margin: float
    # How long the arm takes to follow a velocity change (jerk-limited ramp + state latency);
    # the workspace rule looks one control period plus this far ahead.
    response_time_s: float = 0.15

    @staticmethod
    def from_section(s: Section) -> "ControlConfig":
        lo = s.vector("workspace_min", 3)
        hi = s.vector("workspace_max", 3)
        for axis, (a, b) in zip("xyz", zip(lo, hi)):
            if a >= b:
                raise s.error("workspace_min", f"{axis}: min {a} must be < workspace_max {b}")
        return ControlConfig(
            rate_hz=s.number("rate_hz", positive=True, maximum=1000.0),
            workspace_min=lo,  # type: ignore[arg-type]
            workspace_max=hi,  # type: ignore[arg-type]
            max_linear_speed=s.number("max_linear_speed", positive=True, maximum=2.0),
            max_angular_speed=s.number("max_angular_speed", positive=True, maximum=2.5),
            command_timeout_s=s.number("command_timeout_s", positive=True),
            teleop_hold_s=s.number("teleop_hold_s", positive=True),
            absurd_factor=s.number("absurd_factor", minimum=1.0),
            accepted_frames=s.strings("accepted_frames"),
            state_rate_hz=s.number("state_rate_hz", positive=True),
            status_rate_hz=s.number("status_rate_hz", positive=True),
            boundary_margin=s.number("boundary_margin", minimum=0.0),
            response_time_s=s.number("response_time_s", 0.15, minimum=0.0),
        )


@dataclass(frozen=True)
class SceneObject:
    name: str
    shape: str
    size: tuple[float, ...]
    pos: tuple[float, float, float]
    rgba: tuple[float, float, float, float]
    free: bool
    tracked: bool
    visual_only: bool
    mass: float | None = None
    friction: tuple[float, ...] | None = None

    @staticmethod
    def from_section(s: Section) -> "SceneObject":
        shape = s.string("shape", choices=("box", "cylinder", "sphere"))
        n_size = {"box": 3, "cylinder": 2, "sphere": 1}[shape]
        free = s.boolean("free", False)
        return SceneObject(
            name=s.string("name"),
            shape=shape,
            size=s.vector("size", n_size),
            pos=s.vector("pos", 3),  # type: ignore[arg-type]
            rgba=s.vector("rgba", 4, default=[0.7, 0.7, 0.7, 1.0]),  # type: ignore[arg-type]
            free=free,
            tracked=s.boolean("tracked", False),
            visual_only=s.boolean("visual_only", False),
            mass=s.number("mass", positive=True) if free else None,
            friction=s.vector("friction", 3) if "friction" in s.data else None,
        )


@dataclass(frozen=True)
class SceneConfig:
    objects: tuple[SceneObject, ...]
    reset_jitter: tuple[float, float]
    # Rate at which the simulated robot publishes object poses and scene state.
    publish_rate_hz: float = 30.0

    def object(self, name: str) -> SceneObject:
        for obj in self.objects:
            if obj.name == name:
                return obj
        raise KeyError(name)

    @property
    def tracked(self) -> tuple[SceneObject, ...]:
        return tuple(o for o in self.objects if o.tracked)

    @staticmethod
    def from_section(s: Section) -> "SceneConfig":
        objects = tuple(SceneObject.from_section(o) for o in s.sections("objects"))
        names = [o.name for o in objects]
        if len(set(names)) != len(names):
            raise s.error("objects", f"object names must be unique, got {names}")
        return SceneConfig(
            objects=objects,
            reset_jitter=s.vector("reset_jitter", 2, default=[0.0, 0.0]),  # type: ignore[arg-type]
            publish_rate_hz=s.number("publish_rate_hz", 30.0, positive=True),
        )


@dataclass(frozen=True)
class FailureConfig:
    """The intervention-requiring failure predicate C(s, a)."""

    kind: str
    bodies: tuple[str, ...]

    @staticmethod
    def from_section(s: Section) -> "FailureConfig":
        kind = s.string("kind", choices=("contact",))
        bodies = s.strings("bodies")
        if len(bodies) != 2:
            raise s.error("bodies", f"a contact failure names exactly 2 bodies, got {len(bodies)}")
        return FailureConfig(kind=kind, bodies=bodies)


@dataclass(frozen=True)
class SuccessConfig:
    object: str
    target: str
    tolerance: float

    @staticmethod
    def from_section(s: Section) -> "SuccessConfig":
        return SuccessConfig(
            object=s.string("object"), target=s.string("target"), tolerance=s.number("tolerance", positive=True)
        )


@dataclass(frozen=True)
class TaskConfig:
    task: str
    description: str
    robot: RobotConfig
    control: ControlConfig
    scene: SceneConfig
    failure: FailureConfig
    success: SuccessConfig
    path: Path = field(compare=False)
    raw: dict = field(compare=False, repr=False)

    @staticmethod
    def from_file(path: str | Path) -> "TaskConfig":
        path = Path(path)
        root = Section(load_yaml_mapping(path), path)
        config = TaskConfig(
            task=root.string("task"),
            description=root.string("description", ""),
            robot=RobotConfig.from_section(root.section("robot")),
            control=ControlConfig.from_section(root.section("control")),
            scene=SceneConfig.from_section(root.section("scene")),
            failure=FailureConfig.from_section(root.section("failure")),
            success=SuccessConfig.from_section(root.section("success")),
            path=path,
            raw=root.data,
        )
        names = {o.name for o in config.scene.objects}
        for body in config.failure.bodies:
            if body not in names:
                raise ConfigError(path, f"names {body!r}, which is not a scene object", key="failure.bodies")
        for key in ("object", "target"):
            if getattr(config.success, key) not in names:
                raise ConfigError(path, f"{getattr(config.success, key)!r} is not a scene object", key=f"success.{key}")
        return config


def known_tasks() -> list[str]:
    return sorted(p.stem for p in (config_dir() / "tasks").glob("*.yaml"))


def load_task_config(task_or_path: str | Path) -> TaskConfig:
    """Load a task by name (config/tasks/<name>.yaml) or by path to its YAML file."""
    text = str(task_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        from farl_common.paths import resolve_config_path

        return TaskConfig.from_file(resolve_config_path(text))
    path = task_config_path(text)
    if not path.is_file():
        raise ConfigError(path, f"unknown task {text!r}; known tasks: {', '.join(known_tasks()) or 'none'}")
    return TaskConfig.from_file(path)

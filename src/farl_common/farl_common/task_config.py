"""Typed per-task configuration (config/tasks/<task>.yaml), every section of the file.

Everything a node needs to know about a task (where the arm may go, how fast,
what the scene holds, what counts as failure and success, what a policy sees
and does) is read here once, with `farl_common.config`, and validated, so nodes
hold no magic numbers and a bad file fails at start-up with one line naming the
file and key. Each class below is one section of the file; its fields are the
keys, with their types, defaults and limits.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from farl_common.config import (ConfigProblem, apply_overrides, build_with_overrides, derived, load_yaml_mapping,
                                 setting)
from farl_common.errors import ConfigError
from farl_common.paths import config_dir, resolve_config_path, task_config_path

Vec3 = tuple[float, float, float]
SHAPE_SIZES = {"box": 3, "cylinder": 2, "sphere": 1}  # half extents / radius + half height / radius
TCP = "tcp"  # the observation source that is the robot's tool centre point
REALTIME_MODES = ("enforce", "ignore")


@dataclass(frozen=True)
class RealtimeConfig:
    """libfranka's real-time mode per robot mode (`robot:=real` / `robot:=sim`).

    The real FR3 closes a 1 kHz loop over FCI: on a kernel without PREEMPT_RT a
    missed deadline is a communication_constraints_violation reflex mid-motion,
    so `enforce` (libfranka's RealtimeConfig.Enforce) makes the control node
    refuse to start on such a kernel; the franka node's `allow_non_rt_kernel`
    parameter is the operator's explicit, loudly logged override. franky-sim
    shares the machine with the stack, where real-time priority would starve the
    simulator, hence `ignore` there.
    """

    real: str = setting("enforce", choices=REALTIME_MODES)
    sim: str = setting("ignore", choices=REALTIME_MODES)

    def mode(self, simulated: bool) -> str:
        return self.sim if simulated else self.real


@dataclass(frozen=True)
class RobotConfig:
    home_joints: tuple[float, ...] = setting(length=7)
    """Joint configuration `reset` drives to (rad)."""
    relative_dynamics_factor: float = setting(positive=True, maximum=1.0)
    """franky: scales max velocity/acceleration/jerk of every motion."""
    torque_threshold: float = setting(positive=True)
    force_threshold: float = setting(positive=True)
    connect_timeout_s: float = setting(15.0, positive=True)
    """How long the control node keeps retrying to reach the arm (franky-sim may still be starting)."""
    motion_timeout_s: float = setting(30.0, positive=True)
    """Upper bound on a blocking joint motion (go home) before it is reported as failed."""
    reset_lift_z: float | None = setting(None, positive=True)
    """Before the joint motion home, a TCP below this height (m, base frame) first moves
    straight up to it, so going home never sweeps the hand through the objects. None: no lift."""
    realtime: RealtimeConfig = dataclasses.field(default_factory=RealtimeConfig)
    """Real-time mode of the arm's connection, per robot mode (see RealtimeConfig)."""


@dataclass(frozen=True)
class ControlConfig:
    """The control node's limits and rates (the command filter, `robot.safety`, enforces them)."""

    rate_hz: float = setting(positive=True, maximum=1000.0)
    workspace_min: Vec3 = setting()
    workspace_max: Vec3 = setting()
    max_linear_speed: float = setting(positive=True, maximum=2.0)
    max_angular_speed: float = setting(positive=True, maximum=2.5)
    command_timeout_s: float = setting(positive=True)
    teleop_hold_s: float = setting(positive=True)
    absurd_factor: float = setting(minimum=1.0)
    accepted_frames: tuple[str, ...] = setting()
    state_rate_hz: float = setting(positive=True)
    status_rate_hz: float = setting(positive=True)
    boundary_margin: float = setting(minimum=0.0)
    response_time_s: float = setting(0.15, minimum=0.0)
    """How long the arm takes to follow a velocity change (jerk-limited ramp + state latency);
    the workspace rule looks one control period plus this far ahead."""

    @property
    def lookahead_s(self) -> float:
        """The workspace rule's horizon: one control period plus the arm's response time."""
        return 1.0 / self.rate_hz + self.response_time_s

    def check(self) -> None:
        for axis, a, b in zip("xyz", self.workspace_min, self.workspace_max):
            if a >= b:
                raise ConfigProblem("workspace_min", f"{axis}: min {a} must be < workspace_max {b}")


@dataclass(frozen=True)
class RegionConfig:
    """An axis-aligned rectangle on the table (base frame, x and y)."""

    min: tuple[float, float] = setting()
    max: tuple[float, float] = setting()

    def check(self) -> None:
        for axis, a, b in zip("xy", self.min, self.max):
            if a >= b:
                raise ConfigProblem("min", f"{axis}: min {a} must be < max {b}")

    def contains(self, x: float, y: float) -> bool:
        return self.min[0] <= x <= self.max[0] and self.min[1] <= y <= self.max[1]


@dataclass(frozen=True)
class SceneObject:
    name: str = setting()
    shape: str = setting(choices=tuple(SHAPE_SIZES))
    size: tuple[float, ...] = setting(positive=True)
    pos: Vec3 = setting()
    rgba: tuple[float, float, float, float] = setting((0.7, 0.7, 0.7, 1.0), minimum=0.0, maximum=1.0)
    free: bool = False
    """A free joint: the object moves, and is put back to `pos` on reset."""
    tracked: bool = False
    """Its pose is published on /farl/objects/<name>."""
    visual_only: bool = False
    """No collisions (a target marker)."""
    mass: float | None = setting(None, positive=True)
    friction: tuple[float, float, float] | None = None
    """MuJoCo's (sliding, torsional, rolling) friction; rolling needs `condim: 6`."""
    condim: int | None = setting(None, choices=None)
    """MuJoCo contact dimensionality (1, 3, 4 or 6; 6 adds rolling friction: a ball on turf)."""
    kinematic: bool = False
    """Moved by the simulator along a path (a MuJoCo mocap body), not by contacts: the disturber's obstacle."""

    def check(self) -> None:
        if self.condim is not None and self.condim not in (1, 3, 4, 6):
            raise ConfigProblem("condim", f"must be 1, 3, 4 or 6, got {self.condim}")
        if self.free and self.kinematic:
            raise ConfigProblem("kinematic", "an object is either free (moved by contacts) or kinematic, not both")
        if len(self.size) != SHAPE_SIZES[self.shape]:
            raise ConfigProblem("size", f"a {self.shape} takes {SHAPE_SIZES[self.shape]} numbers, got {len(self.size)}")
        if self.free and self.mass is None:
            raise ConfigProblem("mass", "missing required key (a free object needs a mass)")


@dataclass(frozen=True)
class DisturberConfig:
    """Simulation only: the person of the paper's Disturbed Push, who moves an obstacle into the way.

    Per episode (seeded by the reset's seed) a number of moves, each starting at a
    random time, along a short straight path at a hand's speed: with
    probability `into_path_prob` toward a random point of the pushed object's
    path to its target, else in a random direction; held there for `dwell_s`,
    then taken back the same way. The obstacle's centre never leaves `region`. On the real arm a person does this; nothing here runs.
    """

    object: str = setting()
    """A kinematic scene object (the obstacle)."""
    region: RegionConfig = setting()
    """The obstacle's centre (x, y) stays inside this rectangle."""
    moves: tuple[int, int] = setting((1, 2), minimum=0)
    """Moves per episode: uniform in [min, max]."""
    start_s: tuple[float, float] = setting((1.0, 6.0), minimum=0.0)
    """A move starts at a uniform time in this window (s after the reset); later ones wait for the earlier."""
    distance: tuple[float, float] = setting((0.04, 0.10), positive=True)
    """Path length (m), uniform in this range."""
    speed: float = setting(0.05, positive=True)
    """m/s along the path."""
    into_path_prob: float = setting(0.7, minimum=0.0, maximum=1.0)
    path_from: str | None = None
    """The pushed object; `path_to` its target: moves into the path head for a point between them."""
    path_to: str | None = None
    path_fraction: tuple[float, float] = setting((0.3, 0.8), minimum=0.0, maximum=1.0)
    """Where on the path (fraction from `path_from` to `path_to`) such a move aims."""
    min_ahead: float = setting(0.0, minimum=0.0)
    """An into-path move aims at least this far ahead of `path_from` (a person puts the obstacle in
    the way, not into the object); with less path than this left, the move is skipped."""
    dwell_s: tuple[float, float] = setting((1.0, 3.0), minimum=0.0)
    """The obstacle is held at the end of a move this long (uniform), then taken back along its path."""

    def check(self) -> None:
        for key in ("moves", "start_s", "distance", "path_fraction", "dwell_s"):
            a, b = getattr(self, key)
            if a > b:
                raise ConfigProblem(key, f"expected [min, max], got [{a}, {b}]")
        if (self.path_from is None) != (self.path_to is None):
            raise ConfigProblem("path_to" if self.path_to is None else "path_from",
                                "path_from and path_to go together (or neither: random directions only)")


@dataclass(frozen=True)
class TerrainConfig:
    """Simulation only: uneven turf under a rolling object, drawn anew at every reset (seeded).

    The paper kicks its ball on uneven turf; here each episode scales the ball's
    friction (sliding and rolling) by a random factor and tilts the ground by a
    random slope in a random direction (a force m g sin(slope) on the rolling
    ball; the arm keeps its own gravity model), so the same kick rolls differently.
    """

    object: str = setting()
    friction_scale: tuple[float, float] = setting((1.0, 1.0), positive=True)
    """Factor on the object's friction, uniform in [min, max] per episode."""
    slope_deg: tuple[float, float] = setting((0.0, 0.0), minimum=0.0, maximum=5.0)
    """Slope magnitude (degrees), uniform in [min, max]; direction uniform in the plane."""
    rolling_speed: float = setting(0.01, minimum=0.0)
    """The slope pulls only a ball rolling faster than this (m/s). Turf holds a ball at rest;
    MuJoCo's soft rolling friction does not (measured: 0.5 deg drifted a resting 6 cm ball 20 cm in 5 s)."""

    def check(self) -> None:
        for key in ("friction_scale", "slope_deg"):
            a, b = getattr(self, key)
            if a > b:
                raise ConfigProblem(key, f"expected [min, max], got [{a}, {b}]")


@dataclass(frozen=True)
class SceneConfig:
    objects: tuple[SceneObject, ...] = setting()
    reset_jitter: tuple[float, float] = setting((0.0, 0.0), minimum=0.0)
    """Object start positions are jittered uniformly by ± this (x, y) on reset."""
    publish_rate_hz: float = setting(30.0, positive=True)
    """Rate at which the simulated robot publishes object poses and scene state."""
    disturber: DisturberConfig | None = None
    """Simulation only: an obstacle moved into the way (Disturbed Push)."""
    terrain: TerrainConfig | None = None
    """Simulation only: per-episode friction and slope noise under a rolling object (Bounded Soccer)."""

    def object(self, name: str) -> SceneObject:
        for obj in self.objects:
            if obj.name == name:
                return obj
        raise KeyError(name)

    @property
    def tracked(self) -> tuple[SceneObject, ...]:
        return tuple(o for o in self.objects if o.tracked)

    def check(self) -> None:
        names = [o.name for o in self.objects]
        if len(set(names)) != len(names):
            raise ConfigProblem("objects", f"object names must be unique, got {names}")
        if self.disturber is not None:
            d = self.disturber
            if d.object not in names or not self.object(d.object).kinematic:
                raise ConfigProblem("disturber.object", f"{d.object!r} must be a kinematic scene object")
            for key in ("path_from", "path_to"):
                if getattr(d, key) is not None and getattr(d, key) not in names:
                    raise ConfigProblem(f"disturber.{key}", f"{getattr(d, key)!r} is not a scene object")
        if self.terrain is not None:
            t = self.terrain
            if t.object not in names or not self.object(t.object).free:
                raise ConfigProblem("terrain.object", f"{t.object!r} must be a free scene object")


ARM = "arm"  # in a contact pair: any body of the robot (franky-sim's robot0_* bodies)
AXES = ("x", "y", "z")


@dataclass(frozen=True)
class FailurePredicateConfig:
    """One intervention-requiring failure: `contact` (any listed body pair touches) or
    `outside` (an object's centre leaves a region)."""

    kind: str = setting(choices=("contact", "outside"))
    pairs: tuple[tuple[str, str], ...] = ()
    """contact: body pairs; a name is a scene object or `arm` (any body of the robot)."""
    object: str | None = None
    """outside: the object whose centre (x, y) must stay in `region`."""
    region: RegionConfig | None = None

    def check(self) -> None:
        if self.kind == "contact":
            if not self.pairs:
                raise ConfigProblem("pairs", "a contact predicate needs at least one [body, body] pair")
            if self.object is not None or self.region is not None:
                raise ConfigProblem("kind", "a contact predicate takes only `pairs` (object/region are for outside)")
        else:
            if self.object is None or self.region is None:
                raise ConfigProblem("object" if self.object is None else "region",
                                    "missing required key (an outside predicate needs object and region)")
            if self.pairs:
                raise ConfigProblem("pairs", "an outside predicate takes object and region, not pairs")


PERCEIVED_FAILURE_KINDS = ("gap_below",)


@dataclass(frozen=True)
class PerceivedFailureConfig:
    """A failure predicate computed from object poses, for where there is no contact to read.

    The real arm has no contact sensor between the block and the wall; what the
    stack can compute is geometry from the perceived poses. `gap_below`: the gap
    between the two objects' boxes (half extents from their scene `size`, turned
    by the perceived orientation, boxed axis-aligned in base) is at most `margin`
    metres. The margin absorbs the perception error.
    Evaluated by `farl_common.failure_predicates`.
    """

    objects: tuple[str, ...] = setting()
    margin: float = setting(minimum=0.0)
    """Metres: a gap at or below this counts as the failure."""
    kind: str = setting("gap_below", choices=PERCEIVED_FAILURE_KINDS)

    def check(self) -> None:
        if len(self.objects) != 2:
            raise ConfigProblem("objects", f"a gap_below predicate names exactly 2 objects, got {len(self.objects)}")


@dataclass(frozen=True)
class FailureConfig:
    """The intervention-requiring failure C(s, a): any of `predicates` holds."""

    predicates: tuple[FailurePredicateConfig, ...] = setting()
    perceived: PerceivedFailureConfig | None = None
    """The same failure as the episode monitor computes it from perceived poses (perception:=aruco,
    the real arm), where MuJoCo's contacts do not exist."""

    def check(self) -> None:
        if not self.predicates:
            raise ConfigProblem("predicates", "expected at least one failure predicate")

    @property
    def contact_pairs(self) -> tuple[tuple[str, str], ...]:
        return tuple(pair for p in self.predicates if p.kind == "contact" for pair in p.pairs)

    @property
    def regions(self) -> tuple[tuple[str, RegionConfig], ...]:
        """(object, region) of every `outside` predicate."""
        return tuple((p.object, p.region) for p in self.predicates if p.kind == "outside")  # type: ignore[misc]


@dataclass(frozen=True)
class SuccessConfig:
    """The success test: `near_target` (the object's centre within `tolerance` of the target's,
    in x, y) or `inside_region` (the object's centre inside `region`)."""

    object: str = setting()
    kind: str = setting("near_target", choices=("near_target", "inside_region"))
    target: str | None = None
    tolerance: float | None = setting(None, positive=True)
    region: RegionConfig | None = None

    def check(self) -> None:
        if self.kind == "near_target" and (self.target is None or self.tolerance is None):
            raise ConfigProblem("target" if self.target is None else "tolerance",
                                "missing required key (near_target needs target and tolerance)")
        if self.kind == "inside_region" and self.region is None:
            raise ConfigProblem("region", "missing required key (inside_region needs a region)")


@dataclass(frozen=True)
class ScriptedOperatorConfig:
    """The scripted operator (farl_teleop): TCP waypoints visited in order with a proportional controller."""

    waypoints: tuple[Vec3, ...] = setting()
    gain: float = setting(positive=True)
    speed: float = setting(positive=True)
    tolerance: float = setting(positive=True)
    waypoint_timeout_s: float = setting(positive=True)
    recovery_waypoints: tuple[Vec3, ...] = ()
    """Scripted *recovery* demos: drive the block toward the failure, then steer it back (empty: task waypoints)."""
    failure_waypoints: tuple[Vec3, ...] = ()
    """Scripted *failure* demos: waypoints that end in the failure (empty: task waypoints)."""

    def check(self) -> None:
        if not self.waypoints:
            raise ConfigProblem("waypoints", "expected a non-empty list of [x, y, z] points")

    def waypoints_for(self, kind: str) -> tuple[Vec3, ...]:
        """The waypoints of a demo kind (task / recovery / failure)."""
        chosen = {"recovery": self.recovery_waypoints, "failure": self.failure_waypoints}.get(kind, ())
        return chosen or self.waypoints


@dataclass(frozen=True)
class TeleopConfig:
    """Human teleoperation (farl_teleop): how device input scales to a TCP twist, and when it stops.

    Full deflection of the SpaceMouse, or a held key, commands `max_linear_speed`
    times the current speed scale; the operator steps the scale through
    `speed_scales` with the device. No input means no command at all (deadman):
    the control node's watchdog then stops the arm within control.command_timeout_s.
    """

    max_linear_speed: float = setting(0.10, positive=True)
    """m/s at full deflection and speed scale 1 (the control node clips to control.max_linear_speed anyway)."""
    max_angular_speed: float = setting(0.0, minimum=0.0)
    """rad/s at full deflection; 0 keeps the gripper pointing down (the tasks' policies never rotate)."""
    speed_scales: tuple[float, ...] = setting((0.25, 0.5, 1.0), positive=True)
    """Speed scale steps the operator cycles through (device buttons / keyboard + and -)."""
    initial_scale_index: int = setting(1, minimum=0)
    rate_hz: float = setting(30.0, positive=True, maximum=200.0)
    """Rate of /farl/teleop/command while the operator gives input."""
    deadband: float = setting(0.08, minimum=0.0, below=1.0)
    """SpaceMouse: deflection below this fraction of full scale counts as no input."""
    spacemouse_full_scale: float = setting(350.0, positive=True)
    """SpaceMouse: raw axis value that counts as full deflection (3Dconnexion devices report about +-350)."""
    input_timeout_s: float = setting(0.15, positive=True)
    """SpaceMouse: no HID report for this long = no input (the device stops reporting when released)."""
    key_hold_s: float = setting(0.6, positive=True)
    """Keyboard: a motion key keeps commanding this long after its last byte; longer than the terminal's
    auto-repeat delay (typically 0.25-0.5 s), so a held key gives one unbroken motion and a released one stops."""

    def check(self) -> None:
        if not self.speed_scales:
            raise ConfigProblem("speed_scales", "expected a non-empty list of positive factors")
        if self.initial_scale_index >= len(self.speed_scales):
            raise ConfigProblem("initial_scale_index", f"must index speed_scales (0..{len(self.speed_scales) - 1})")


OBSERVATION_QUANTITIES = ("position", "velocity")


@dataclass(frozen=True)
class ObservationFieldConfig:
    source: str = setting()
    """`tcp` or a scene object's name."""
    dims: tuple[str, ...] = setting(choices=("x", "y", "z"))
    quantity: str = setting("position", choices=OBSERVATION_QUANTITIES)
    """`position` (m, base frame) or `velocity` (m/s): the source's displacement since the previous
    control tick over the time between the ticks. A dynamic task needs it: one frame of a rolling ball
    or a carried obstacle does not say where it is going."""

    def check(self) -> None:
        if not self.dims:
            raise ConfigProblem("dims", "expected a non-empty list of x, y, z")


@dataclass(frozen=True)
class ObservationConfig:
    fields: tuple[ObservationFieldConfig, ...] = setting()


@dataclass(frozen=True)
class ActionConfig:
    linear_velocity_scale: Vec3 = setting(positive=True)
    """Policy actions in [-1, 1]^3 times this = TCP linear velocity (m/s, base frame)."""


@dataclass(frozen=True)
class EpisodeConfig:
    max_steps: int = setting(minimum=1)
    terminate_on_failure: bool = setting()


@dataclass(frozen=True)
class ExplorationConfig:
    noise_correlation: float = setting(0.0, minimum=0.0, below=1.0)
    """AR(1) coefficient of the actor's exploration noise (0 = white; see task_spec.ExplorationNoise)."""


@dataclass(frozen=True)
class RewardTermConfig:
    """weight * |from - to| over `dims` (a dense shaping term; negative weights penalise distance)."""

    source: str = setting()
    """`tcp` or a scene object."""
    to: str = setting()
    weight: float = setting()
    dims: tuple[str, ...] = setting(("x", "y", "z"), choices=AXES)


@dataclass(frozen=True)
class RewardConfig:
    """r = sum of the terms + success_bonus on success - failure_penalty on failure."""

    terms: tuple[RewardTermConfig, ...] = setting()
    success_bonus: float = setting(minimum=0.0)
    failure_penalty: float = setting(0.0, minimum=0.0)


@dataclass(frozen=True)
class TaskConfig:
    task: str = setting()
    robot: RobotConfig = setting()
    control: ControlConfig = setting()
    scene: SceneConfig = setting()
    failure: FailureConfig = setting()
    success: SuccessConfig = setting()
    observation: ObservationConfig = setting()
    action: ActionConfig = setting()
    episode: EpisodeConfig = setting()
    reward: RewardConfig = setting()
    description: str = ""
    exploration: ExplorationConfig = ExplorationConfig()
    scripted_operator: ScriptedOperatorConfig | None = None
    teleop: TeleopConfig = TeleopConfig()
    path: Path = derived()
    """The file it was read from."""
    raw: dict = derived()
    """The mapping it was built from (overrides applied), e.g. to write the effective file for nodes."""

    def check(self) -> None:
        names = {o.name for o in self.scene.objects}
        for i, predicate in enumerate(self.failure.predicates):
            for body in (b for pair in predicate.pairs for b in pair):
                if body != ARM and body not in names:
                    raise ConfigProblem(f"failure.predicates[{i}].pairs",
                                        f"names {body!r}, which is neither {ARM!r} nor a scene object")
            if predicate.object is not None and predicate.object not in names:
                raise ConfigProblem(f"failure.predicates[{i}].object", f"{predicate.object!r} is not a scene object")
        if self.failure.perceived is not None:
            for i, name in enumerate(self.failure.perceived.objects):
                if name not in names:
                    raise ConfigProblem(f"failure.perceived.objects[{i}]", f"{name!r} is not a scene object")
                if self.scene.object(name).shape != "box":
                    raise ConfigProblem(f"failure.perceived.objects[{i}]",
                                        f"{name!r} is a {self.scene.object(name).shape}; gap_below needs boxes")
        for key in ("object", "target"):
            value = getattr(self.success, key)
            if value is not None and value not in names:
                raise ConfigProblem(f"success.{key}", f"{value!r} is not a scene object")
        for i, term in enumerate(self.reward.terms):
            for key in ("source", "to"):
                value = getattr(term, key)
                if value != TCP and value not in names:
                    raise ConfigProblem(f"reward.terms[{i}].{key}", f"{value!r} is neither {TCP!r} nor a scene object")
                if value != TCP and not self.scene.object(value).tracked:
                    raise ConfigProblem(f"reward.terms[{i}].{key}", f"{value!r} is not tracked: the stack sees "
                                        "only tracked objects (/farl/objects/<name>); set its tracked: true")
        for key in ("object", "target"):
            value = getattr(self.success, key)
            if value is not None and not self.scene.object(value).tracked:
                raise ConfigProblem(f"success.{key}", f"{value!r} is not tracked: the stack sees only tracked "
                                    "objects (/farl/objects/<name>); set its tracked: true")
        for i, f in enumerate(self.observation.fields):
            if f.source != TCP and f.source not in names:
                raise ConfigProblem(f"observation.fields[{i}].source",
                                    f"{f.source!r} is neither {TCP!r} nor a scene object")
            if f.source != TCP and not self.scene.object(f.source).tracked:
                raise ConfigProblem(f"observation.fields[{i}].source", f"{f.source!r} is not tracked: the stack sees "
                                    "only tracked objects (/farl/objects/<name>); set its tracked: true")
        if max(self.action.linear_velocity_scale) > self.control.max_linear_speed:
            raise ConfigProblem("action.linear_velocity_scale",
                                f"exceeds control.max_linear_speed {self.control.max_linear_speed}")

    @staticmethod
    def from_file(path: str | Path, overrides: Mapping[str, Any] | None = None) -> "TaskConfig":
        path = Path(path)
        data = load_yaml_mapping(path)
        if overrides:
            data = apply_overrides(data, overrides, f"{path} (--set)", TaskConfig)
        return dataclasses.replace(build_with_overrides(TaskConfig, data, path, overrides or {}), raw=data)


def known_tasks() -> list[str]:
    return sorted(p.stem for p in (config_dir() / "tasks").glob("*.yaml"))


def load_task_config(task_or_path: str | Path, overrides: Mapping[str, Any] | None = None) -> TaskConfig:
    """Load a task by name (config/tasks/<name>.yaml) or by path to its YAML file, with dotted overrides."""
    text = str(task_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return TaskConfig.from_file(resolve_config_path(text), overrides)
    path = task_config_path(text)
    if not path.is_file():
        raise ConfigError(path, f"unknown task {text!r}; known tasks: {', '.join(known_tasks()) or 'none'}")
    return TaskConfig.from_file(path, overrides)

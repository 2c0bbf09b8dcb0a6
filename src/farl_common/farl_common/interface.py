"""The ROS interface of the FARL stack, in one place: names, QoS contract, JSON payload schemas.

Every node, tool and test takes topic and service names, message types and QoS
from here, so a publisher and its subscribers can never disagree on them.

Custom .msg types do not build from the PyPI ROS wheels (a rosidl interface
package fails at CMake generate time on include paths baked into the wheels'
exports), so the learning payloads travel as JSON inside `std_msgs/String`, or
as key/value pairs inside `diagnostic_msgs/DiagnosticStatus` (the shield's
decision, readable in any diagnostics viewer). Each payload has a `Schema` here:
its fields, their types and a `schema_version`. Publisher and subscriber use the
same `Schema` to encode and to decode; a subscriber reads through a
`PayloadReader`, which counts and reports a payload that does not validate
instead of raising, so one bad message never takes a node down.

Importable without rclpy (the learner's algorithms and offline tools use the
schemas): `Qos.profile()` and `Topic.msg_class()` import rclpy and the message
packages only when a node asks for them.
"""
from __future__ import annotations

import importlib
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

VERSION_KEY = "schema_version"


class PayloadError(ValueError):
    """A payload that does not match its schema; the message is one line naming schema and field."""


# ---------------------------------------------------------------- payload schemas

_KINDS = ("int", "float", "bool", "str", "floats", "vectors", "list", "dict")


@dataclass(frozen=True)
class Field:
    """One entry of a payload.

    kind: int | float | bool | str | floats (a list of finite numbers) | vectors (an object of
    floats lists, e.g. positions by name) | list | dict.
    per_step: the value is a list with one `kind` entry per step (episode columns).
    """

    name: str
    kind: str
    doc: str = ""
    required: bool = True
    nullable: bool = False
    choices: tuple[str, ...] | None = None
    per_step: bool = False

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"field {self.name}: unknown kind {self.kind!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_value(schema: str, field: Field, value: Any, where: str) -> Any:
    """The value, normalised (ints accepted as floats); PayloadError if it is not of the field's kind."""
    kind = field.kind
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and _is_number(value):
        return float(value)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "str" and isinstance(value, str):
        if field.choices is not None and value not in field.choices:
            raise PayloadError(f"{schema}: {where}: {value!r} is not one of {', '.join(field.choices)}")
        return value
    if kind == "floats" and isinstance(value, list) and all(_is_number(v) for v in value):
        return [float(v) for v in value]
    if kind == "vectors" and isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, list) and all(_is_number(x) for x in v) for k, v in value.items()):
        return {k: [float(x) for x in v] for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return value
    if kind == "dict" and isinstance(value, dict):
        return value
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    raise PayloadError(f"{schema}: {where}: expected {kind}, got {shown}")


@dataclass(frozen=True)
class Schema:
    """A versioned JSON payload: what publisher and subscriber agree on, checked on both sides."""

    name: str
    version: int
    fields: tuple[Field, ...]
    doc: str = ""

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def validate(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """A checked copy of `payload` (with its schema_version); PayloadError on the first problem.

        Unknown fields are refused, not ignored: a field either side adds must be added here first.
        """
        if not isinstance(payload, Mapping):
            raise PayloadError(f"{self.name}: expected a JSON object, got {type(payload).__name__}")
        version = payload.get(VERSION_KEY, self.version)
        if version != self.version:
            raise PayloadError(f"{self.name}: {VERSION_KEY} {version!r}, this code reads {self.version}")
        known = set(self.field_names)
        unknown = sorted(k for k in payload if k not in known and k != VERSION_KEY)
        if unknown:
            raise PayloadError(f"{self.name}: unknown field(s) {', '.join(unknown)}")
        out: dict[str, Any] = {VERSION_KEY: self.version}
        steps: tuple[str, int] | None = None
        for field in self.fields:
            if field.name not in payload:
                if field.required:
                    raise PayloadError(f"{self.name}: missing field {field.name}")
                continue
            value = payload[field.name]
            if value is None:
                if not field.nullable:
                    raise PayloadError(f"{self.name}: {field.name}: must not be null")
                out[field.name] = None
                continue
            if field.per_step:
                if not isinstance(value, list):
                    raise PayloadError(f"{self.name}: {field.name}: expected a list with one entry per step")
                if steps is not None and len(value) != steps[1]:
                    raise PayloadError(f"{self.name}: {field.name} has {len(value)} steps, "
                                       f"{steps[0]} has {steps[1]}")
                steps = steps or (field.name, len(value))
                out[field.name] = [_check_value(self.name, field, v, f"{field.name}[{i}]")
                                   for i, v in enumerate(value)]
            else:
                out[field.name] = _check_value(self.name, field, value, field.name)
        return out

    # ---- std_msgs/String: one JSON object
    def to_json(self, payload: Mapping[str, Any]) -> str:
        """Validate and serialise (the publisher's side): a bug upstream fails here, loudly, in tests."""
        return json.dumps(self.validate(payload))

    def from_json(self, text: str) -> dict[str, Any]:
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as error:
            raise PayloadError(f"{self.name}: not valid JSON ({error})") from None
        return self.validate(data)

    # ---- diagnostic_msgs/DiagnosticStatus: key/value strings, one per field
    def to_pairs(self, payload: Mapping[str, Any]) -> list[tuple[str, str]]:
        data = self.validate(payload)
        pairs = []
        for key, value in data.items():
            if isinstance(value, str):
                pairs.append((key, value))
            else:
                pairs.append((key, json.dumps(value)))
        return pairs

    def from_pairs(self, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
        kinds = {f.name: f for f in self.fields}
        data: dict[str, Any] = {}
        for key, text in pairs:
            field = kinds.get(key)
            if field is not None and field.kind == "str" and not field.per_step:
                data[key] = text
                continue
            try:
                data[key] = json.loads(text)
            except (ValueError, TypeError):
                raise PayloadError(f"{self.name}: {key}: not valid JSON ({text[:40]!r})") from None
        return self.validate(data)


class PayloadReader:
    """Decodes one topic's payloads for a subscriber; a bad payload is counted and reported, never raised.

    `report` receives one line per rejection (a node passes a throttled logger call).
    """

    def __init__(self, schema: Schema, report: Callable[[str], None] | None = None):
        self.schema = schema
        self.report = report
        self.accepted = 0
        self.rejected = 0
        self.last_error = ""

    def _reject(self, error: PayloadError) -> None:
        self.rejected += 1
        self.last_error = str(error)
        if self.report is not None:
            self.report(f"rejected payload #{self.rejected} on {self.schema.name}: {error}")

    def json(self, text: str) -> dict[str, Any] | None:
        try:
            payload = self.schema.from_json(text)
        except PayloadError as error:
            self._reject(error)
            return None
        self.accepted += 1
        return payload

    def pairs(self, pairs: Iterable[tuple[str, str]]) -> dict[str, Any] | None:
        try:
            payload = self.schema.from_pairs(pairs)
        except PayloadError as error:
            self._reject(error)
            return None
        self.accepted += 1
        return payload


class SequenceGaps:
    """Counts messages lost between a publisher's consecutive sequence numbers (the decision's tick).

    A number that goes backwards is a restarted publisher, not a loss: counting starts again from it.
    """

    def __init__(self) -> None:
        self.last: int | None = None
        self.dropped = 0

    def note(self, seq: int) -> int:
        """Record `seq`; returns how many were lost just before it."""
        lost = 0
        if self.last is not None and seq > self.last + 1:
            lost = seq - self.last - 1
            self.dropped += lost
        self.last = seq
        return lost


SOURCES = ("task", "recovery")
VERDICTS = ("success", "failure", "timeout", "aborted")
EVENT_TYPES = ("start", *VERDICTS, "intervention", "finished")
# Events after which no episode runs (the shield stops acting on them).
ENDING_EVENTS = frozenset((*VERDICTS, "finished"))

DECISION_PAYLOAD = Schema("shield decision", 1, (
    Field("tick", "int", "sequence number of the shield's ticks (a gap is a lost decision)"),
    Field("episode", "int", "episode the decision belongs to"),
    Field("risk", "float", "C_H of the task action"),
    Field("epsilon", "float", "eps_safe in force"),
    Field("source", "str", "which policy's action was sent", choices=SOURCES),
    Field("latency_ms", "float", "time to decide"),
    Field("policy_version", "int", "task policy version that acted"),
    Field("obs", "floats", "observation acted on"),
    Field("action", "floats", "action sent, in [-1, 1]^n"),
    Field("action_task", "floats", "what pi_task proposed"),
    Field("log_prob", "float", "log pi_task(action_task | obs)"),
    Field("swap_error", "str", "why the last announced policy was refused ('' = none)"),
    Field("positions", "vectors", "the poses obs was built from (source -> [x, y, z])"),
), "one per control tick while an episode runs (shield -> monitor, learner tools, recorder)")

EVENT_PAYLOAD = Schema("episode event", 1, (
    Field("type", "str", choices=EVENT_TYPES),
    Field("episode", "int"),
    Field("counts", "dict", "running totals (EpisodeCounts)"),
    Field("time", "float", "wall-clock time.time()"),
    Field("steps", "int", required=False),
    Field("return", "float", required=False),
    Field("failure_pairs", "int", required=False),
    Field("shield_triggers", "int", required=False),
    Field("interventions", "int", required=False),
    Field("policy_version", "int", required=False),
    Field("decisions_dropped", "int", "decisions lost on the way to the monitor so far", required=False),
), "start, verdicts, interventions and the end of a run (monitor -> all)")

TRANSITIONS_PAYLOAD = Schema("transitions", 1, (
    Field("task", "str"),
    Field("episode", "int"),
    Field("reason", "str", choices=VERDICTS),
    Field("policy_version", "int"),
    Field("episode_return", "float"),
    Field("obs", "floats", per_step=True),
    Field("action", "floats", "executed action", per_step=True),
    Field("action_task", "floats", per_step=True),
    Field("log_prob", "float", per_step=True),
    Field("source", "str", per_step=True, choices=SOURCES),
    Field("risk", "float", per_step=True),
    Field("reward", "float", per_step=True),
    Field("cost", "float", per_step=True),
    Field("next_obs", "floats", per_step=True),
    Field("done", "bool", per_step=True),
    Field("intervention", "bool", "the operator drove the step: `action` is the operator's twist as an action, "
                                  "off-policy for the learner", per_step=True, required=False),
), "one whole episode of executed transitions, columns over its steps (monitor -> learner)")

POLICY_PAYLOAD = Schema("policy announcement", 2, (
    Field("path", "str", "model folder of the new version, on the learner's machine"),
    Field("version", "int", "task policy version"),
    Field("sha256", "str", "checksum of the folder's manifest.json"),
    Field("source", "str", "the learner's run_dir as it was given: shields accept only their own learner's",
          required=False),
    Field("files", "dict", "{file name: base64 bytes} of manifest.json and the graphs it lists "
                           "(farl_control.shield.transfer); without it the shield reads `path`", required=False),
), "a new task policy to verify and swap in (learner -> shield); with `files` no shared filesystem is needed")

LEARNER_STATUS_PAYLOAD = Schema("learner status", 1, (
    Field("version", "int"), Field("updates", "int"), Field("episodes", "int"), Field("steps", "int"),
    Field("pending_episodes", "int"),
    Field("busy", "bool", "an update is running or due"),
    Field("last_update", "dict", "PPO statistics of the last update"),
), "the learner's state, once a second")

SCENE_STATE_PAYLOAD = Schema("sim scene state", 1, (
    Field("sim_time", "float"),
    Field("failure", "bool", "the failure bodies touch"),
    Field("success", "bool", "object within tolerance of the target (x, y)"),
    Field("contacts", "list", "body pairs in contact with a task object"),
    Field("real_time_factor", "float", "sim s per wall s over the last 2 s", nullable=True),
    Field("resets", "int"),
), "simulator ground truth (sim_robot -> franka, monitor, tests)")


DEMO_KINDS = ("task", "recovery", "failure")
OPERATOR_ACTIONS = ("start", "stop", "discard", "failure", "success", "reset_done")
OUTCOMES = ("success", "failure", "unlabelled")

OPERATOR_PAYLOAD = Schema("operator event", 1, (
    Field("action", "str", "start / stop / discard an episode, label failure or success, reset done",
          choices=OPERATOR_ACTIONS),
    Field("episode", "int", "the operator's episode counter (1-based) the event belongs to"),
    Field("kind", "str", "what the episode demonstrates", choices=DEMO_KINDS),
    Field("operator", "str", "who is at the device"),
    Field("device", "str", "spacemouse | keyboard | scripted"),
    Field("time", "float", "wall-clock time.time()"),
    Field("elapsed", "float", "seconds since the episode's start (0 outside an episode)"),
    Field("outcome", "str", "the episode's outcome (stop only)", required=False, choices=OUTCOMES),
), "the operator's controls (teleop -> recorder, monitor): episodes and labels, with their times")


# ---------------------------------------------------------------- QoS

@dataclass(frozen=True)
class Qos:
    """A QoS contract, as plain values; `profile()` builds the rclpy QoSProfile."""

    depth: int
    reliable: bool = True
    latched: bool = False  # transient local: a late subscriber gets the last `depth` messages

    def profile(self):
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=self.depth,
            reliability=ReliabilityPolicy.RELIABLE if self.reliable else ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if self.latched else DurabilityPolicy.VOLATILE)


# Streams where only the newest message matters (state, poses, status, commands).
STREAM = Qos(depth=10)
# For subscribers that act on the newest state only: best effort matches a reliable publisher.
NEWEST = Qos(depth=5, reliable=False)
# Decisions feed the monitor and the learner's episodes: none may be lost under load.
DECISIONS = Qos(depth=1000)
# A shield that starts, or restarts, late still learns that an episode runs.
EVENTS = Qos(depth=100, latched=True)
# Volatile on purpose: a restarted learner must not train twice on an episode.
EPISODES = Qos(depth=100)
# The latest policy stays available to a shield that (re)starts after the announcement.
LATCHED = Qos(depth=1, latched=True)


# ---------------------------------------------------------------- names

BASE_FRAME = "base"
NAMESPACE = "/farl"


@dataclass(frozen=True)
class Topic:
    name: str
    type: str  # package/msg/Type
    qos: Qos
    doc: str = ""
    payload: Schema | None = None

    def msg_class(self):
        package, _, cls = self.type.split("/")
        return getattr(importlib.import_module(f"{package}.msg"), cls)


@dataclass(frozen=True)
class Service:
    name: str
    type: str  # package/srv/Type
    doc: str = ""

    def srv_class(self):
        package, _, cls = self.type.split("/")
        return getattr(importlib.import_module(f"{package}.srv"), cls)


JOINT_STATES = Topic("/farl/robot/joint_states", "sensor_msgs/msg/JointState", STREAM, "measured joints")
EE_POSE = Topic("/farl/robot/ee_pose", "geometry_msgs/msg/PoseStamped", STREAM, "TCP pose in base")
ROBOT_COMMAND = Topic("/farl/robot/command", "geometry_msgs/msg/TwistStamped", STREAM,
                      "autonomous TCP velocity, base frame")
TELEOP_COMMAND = Topic("/farl/teleop/command", "geometry_msgs/msg/TwistStamped", STREAM,
                       "human TCP velocity; overrides the autonomous one while active")
EXECUTED_COMMAND = Topic("/farl/robot/executed", "geometry_msgs/msg/TwistStamped", STREAM,
                         "the velocity the control node sent to the arm this tick (after arbitration and "
                         "the safety filter); frame_id base, zero when stopped")
TELEOP_OPERATOR = Topic("/farl/teleop/operator", "std_msgs/msg/String", Qos(depth=100),
                        "operator controls: start/stop/discard an episode, labels, reset done", OPERATOR_PAYLOAD)
CAMERA_COMPRESSED = Topic("/farl/camera/image/compressed", "sensor_msgs/msg/CompressedImage", NEWEST,
                          "scene camera, JPEG (optional; recorded with the demos when present)")
ROBOT_STATUS = Topic("/farl/robot/status", "diagnostic_msgs/msg/DiagnosticArray", STREAM,
                     "mode, watchdog, clipping, last error")
SCENE_STATE = Topic("/farl/sim/scene_state", "std_msgs/msg/String", STREAM, "simulator ground truth (sim only)",
                    SCENE_STATE_PAYLOAD)
SHIELD_DECISION = Topic("/farl/shield/decision", "diagnostic_msgs/msg/DiagnosticStatus", DECISIONS,
                        "per tick: risk C_H, eps_safe, source, latency, obs and actions", DECISION_PAYLOAD)
SHIELD_MARKERS = Topic("/farl/shield/markers", "visualization_msgs/msg/MarkerArray", STREAM, "rviz markers")
EPISODE_EVENTS = Topic("/farl/episode/events", "std_msgs/msg/String", EVENTS, "episode events", EVENT_PAYLOAD)
LEARNER_TRANSITIONS = Topic("/farl/learner/transitions", "std_msgs/msg/String", EPISODES,
                            "one finished episode", TRANSITIONS_PAYLOAD)
LEARNER_POLICY = Topic("/farl/learner/policy", "std_msgs/msg/String", LATCHED, "new policy version",
                       POLICY_PAYLOAD)
LEARNER_STATUS = Topic("/farl/learner/status", "std_msgs/msg/String", STREAM, "learner state",
                       LEARNER_STATUS_PAYLOAD)

ROBOT_RESET = Service("/farl/robot/reset", "std_srvs/srv/Trigger", "go home (in sim also reset the scene)")
ROBOT_STOP = Service("/farl/robot/stop", "std_srvs/srv/Trigger", "stop now and refuse motion until reset")
SIM_RESET_SCENE = Service("/farl/sim/reset_scene", "std_srvs/srv/Trigger", "objects to start pose, arm home")


CAMERA_IMAGE = Topic("/farl/camera/color/image_raw", "sensor_msgs/msg/Image", NEWEST,
                     "scene camera colour image, rgb8 (RealSense or the sim render)")
CAMERA_INFO = Topic("/farl/camera/color/camera_info", "sensor_msgs/msg/CameraInfo", NEWEST,
                    "intrinsics of the colour image, one per image with the same stamp")
CAMERA_DEBUG_IMAGE = Topic("/farl/camera/debug_image", "sensor_msgs/msg/Image", NEWEST,
                           "object_pose: the image with detected markers and their axes drawn (rviz)")
PERCEPTION_STATUS = Topic("/farl/perception/status", "diagnostic_msgs/msg/DiagnosticArray", STREAM,
                          "object_pose: one status per tracked object (OK seen / WARN lost since ..), "
                          "and camera nodes' device state")


def object_topic(name: str) -> Topic:
    """/farl/objects/<name>: a tracked object's pose in base, the one the stack acts on.

    From the simulator's ground truth (perception:=ground_truth, sim only) or from
    object_pose (perception:=aruco), never both.
    """
    return Topic(f"/farl/objects/{name}", "geometry_msgs/msg/PoseStamped", STREAM, f"pose of {name} in base")


def sim_object_topic(name: str) -> Topic:
    """/farl/sim/objects/<name>: the simulator's ground-truth pose (sim only, whatever the stack acts on).

    The sim camera renders from it, and tests and benchmarks compare perception against it.
    """
    return Topic(f"/farl/sim/objects/{name}", "geometry_msgs/msg/PoseStamped", STREAM,
                 f"ground-truth pose of {name} in base (sim)")


TOPICS: tuple[Topic, ...] = (JOINT_STATES, EE_POSE, ROBOT_COMMAND, TELEOP_COMMAND, EXECUTED_COMMAND, TELEOP_OPERATOR,
                             CAMERA_COMPRESSED, CAMERA_IMAGE, CAMERA_INFO, CAMERA_DEBUG_IMAGE, PERCEPTION_STATUS,
                             ROBOT_STATUS, SCENE_STATE,
                             SHIELD_DECISION, SHIELD_MARKERS, EPISODE_EVENTS, LEARNER_TRANSITIONS, LEARNER_POLICY,
                             LEARNER_STATUS)
SERVICES: tuple[Service, ...] = (ROBOT_RESET, ROBOT_STOP, SIM_RESET_SCENE)
SCHEMAS: tuple[Schema, ...] = (DECISION_PAYLOAD, EVENT_PAYLOAD, TRANSITIONS_PAYLOAD, POLICY_PAYLOAD, LEARNER_STATUS_PAYLOAD,
                               SCENE_STATE_PAYLOAD, OPERATOR_PAYLOAD)

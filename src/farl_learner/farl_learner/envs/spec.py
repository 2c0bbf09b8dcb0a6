"""Typed FailureBench task specs, read from config/failurebench/<task>.yaml.

Every number that defines a task (boundary rectangle, vase geometry, episode
length, contact tolerance) lives in the YAML file so it is reviewed as
configuration, not buried in code. A malformed file raises `ConfigError` (a
`FarlInputError`) with one line naming the file and key.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from farl_common.errors import ConfigError
from farl_common.paths import config_dir
from farl_common.config import Section, load_yaml_mapping

#: Tasks of the FailureBench suite (the four simulated tasks of the FARL paper).
TASK_NAMES: tuple[str, ...] = ("bounded_push", "bounded_soccer", "fragile_push_wall", "obstructed_push")

#: Meta-World base environments FailureBench builds on (state-based, 39-d obs).
BASE_ENVS: tuple[str, ...] = ("push-v3", "soccer-v3", "push-wall-v3")

#: Scripted experts (see `farl_learner.envs.experts`).
EXPERTS: tuple[str, ...] = ("push", "soccer", "push_wall")

FAILURE_KINDS: tuple[str, ...] = ("boundary", "contact")

#: `subject_bodies: [any]` means every geom that is not part of an obstacle body.
ANY_BODY = "any"


@dataclass(frozen=True)
class Rect:
    """Axis-aligned rectangle on the table (world x, y in metres)."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float

    @property
    def center(self) -> tuple[float, float]:
        return (0.5 * (self.x_min + self.x_max), 0.5 * (self.y_min + self.y_max))

    def contains(self, x: float, y: float) -> bool:
        return self.x_min <= x <= self.x_max and self.y_min <= y <= self.y_max

    def margin(self, x: float, y: float) -> float:
        """Signed distance to the nearest edge: > 0 inside, < 0 outside (L-inf style per axis)."""
        return min(x - self.x_min, self.x_max - x, y - self.y_min, self.y_max - y)


@dataclass(frozen=True)
class VaseSpec:
    """A static cylindrical vase added to the scene (obstructed push).

    Static (welded to the world) so that a touch is a clean, repeatable failure
    instead of a knocked-over vase that changes the scene for the rest of the
    episode.
    """

    x: float
    y: float
    radius: float
    height: float
    rgba: tuple[float, float, float, float]


@dataclass(frozen=True)
class FailureSpec:
    """What counts as an intervention-requiring failure.

    kind == "boundary": the object's (x, y) leaves `boundary`.
    kind == "contact": a MuJoCo contact between a geom of `subject_bodies` and a
    geom of `obstacle_bodies` with penetration distance <= `touch_tolerance`.
    """

    kind: str
    boundary: Rect | None
    subject_bodies: tuple[str, ...]
    obstacle_bodies: tuple[str, ...]
    touch_tolerance: float


@dataclass(frozen=True)
class WallSpec:
    """New x extent of push-wall-v3's wall (world frame, m); y, z and height unchanged.

    Meta-World's wall leaves the scripted expert's detour 8 cm of room, so
    noisy policies almost never touch it; a longer wall makes the fragile
    block's detour tight enough that imprecision shows.
    """

    x_min: float
    x_max: float


@dataclass(frozen=True)
class SceneSpec:
    """Edits to the base Meta-World scene: boundary drawing, an optional vase, wall extent."""

    draw_boundary: bool
    vase: VaseSpec | None
    wall: WallSpec | None = None


@dataclass(frozen=True)
class TaskSpec:
    """One FailureBench task: base Meta-World env, failure, scene edits, episode length."""

    name: str
    base_env: str
    description: str
    max_episode_steps: int
    expert: str
    failure: FailureSpec
    scene: SceneSpec
    config_path: Path
    #: The raw `data:` section, parsed by `farl_learner.data.config`.
    data_section: Section


def failurebench_dir() -> Path:
    """config/failurebench/ (honours $FARL_CONFIG_DIR like the rest of the stack)."""
    return config_dir() / "failurebench"


def task_spec_path(task: str) -> Path:
    return failurebench_dir() / f"{task}.yaml"


def _rect(s: Section, name: str) -> Rect:
    b = s.section(name)
    x = b.vector("x", 2)
    y = b.vector("y", 2)
    if x[0] >= x[1] or y[0] >= y[1]:
        raise s.error(name, f"empty rectangle x={list(x)} y={list(y)} (need min < max)")
    return Rect(x[0], x[1], y[0], y[1])


def _failure(s: Section) -> FailureSpec:
    kind = s.string("kind", choices=FAILURE_KINDS)
    if kind == "boundary":
        return FailureSpec(kind, _rect(s, "boundary"), (), (), 0.0)
    obstacles = s.strings("obstacle_bodies")
    if not obstacles:
        raise s.error("obstacle_bodies", "needs at least one body name")
    return FailureSpec(
        kind=kind,
        boundary=None,
        subject_bodies=s.strings("subject_bodies"),
        obstacle_bodies=obstacles,
        touch_tolerance=s.number("touch_tolerance", minimum=0.0),
    )


def _scene(s: Section) -> SceneSpec:
    vase = None
    if s.data.get("vase") is not None:
        v = s.section("vase")
        x, y = v.vector("pos", 2)
        rgba = v.vector("rgba", 4)
        vase = VaseSpec(x, y, v.number("radius", positive=True), v.number("height", positive=True),
                        rgba)  # type: ignore[arg-type]
    wall = None
    if s.data.get("wall") is not None:
        w = s.section("wall")
        x = w.vector("x", 2)
        if x[0] >= x[1]:
            raise w.error("x", f"need min < max, got {list(x)}")
        wall = WallSpec(x[0], x[1])
    return SceneSpec(draw_boundary=s.boolean("draw_boundary", default=False), vase=vase, wall=wall)


def load_task_spec(task: str, path: str | Path | None = None) -> TaskSpec:
    """Read and validate one task's YAML; `ConfigError` names file and key on any problem."""
    if path is None:
        if task not in TASK_NAMES:
            raise ConfigError(task_spec_path(task), f"unknown FailureBench task {task!r}; "
                              f"known: {', '.join(TASK_NAMES)}")
        path = task_spec_path(task)
    path = Path(path)
    root = Section(load_yaml_mapping(path), path)
    name = root.string("task")
    if name != task:
        raise root.error("task", f"file describes task {name!r}, expected {task!r}")
    spec = TaskSpec(
        name=name,
        base_env=root.string("base_env", choices=BASE_ENVS),
        description=root.string("description"),
        max_episode_steps=root.integer("max_episode_steps", minimum=1),
        expert=root.string("expert", choices=EXPERTS),
        failure=_failure(root.section("failure")),
        scene=_scene(root.section("scene", required=False)),
        config_path=path,
        data_section=root.section("data"),
    )
    if spec.scene.draw_boundary and spec.failure.boundary is None:
        raise root.error("scene.draw_boundary", "needs failure.kind: boundary")
    return spec

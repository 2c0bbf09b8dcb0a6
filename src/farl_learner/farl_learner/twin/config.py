"""Typed twin settings (config/twin/<task>.yaml): experts, recovery, demo generation.

The task itself (scene, observation, action, reward, episode) is read from
config/tasks/<task>.yaml by `farl_control`; this file only holds what the
twin's scripted experts and data generators need. A malformed file raises
`ConfigError` (one line: file, key, problem).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from farl_common.errors import ConfigError
from farl_common.paths import config_dir, resolve_config_path
from farl_common.config import Section, load_yaml_mapping


@dataclass(frozen=True)
class ExpertConfig:
    wall: str
    push_height: float
    travel_height: float
    finger_half_extent: tuple[float, float]
    standoff_clearance: float
    align_tolerance: float
    gain: float
    push_gain: float
    min_push_action: float
    wall_margin: float
    max_action: float
    lookahead: float
    push_lateral_gain: float


@dataclass(frozen=True)
class NoiseConfig:
    noise_std: float
    random_action_prob: float


@dataclass(frozen=True)
class MediumConfig:
    """The medium-quality demonstrator: a cruder pusher than the expert, plus noise."""

    noise_std: float
    random_action_prob: float
    lookahead: float
    push_lateral_gain: float


@dataclass(frozen=True)
class RecoveryConfig:
    near_gap: float
    near_gap_moving: float
    moving_speed: float
    retreat_distance: float
    safe_height: float
    safe_tolerance: float
    max_steps: int


@dataclass(frozen=True)
class FailureSourceConfig:
    lure_beyond_wall: float
    lure_y_jitter: float
    noise_std: float
    random_action_prob: float
    rewind_min: int
    rewind_max: int
    max_steps: int


@dataclass(frozen=True)
class DataConfig:
    task_episodes: int
    recovery_episodes: int
    failure_transitions: int
    failure_noise_std: float
    failure_random_action_prob: float
    failure_noise_correlation: float
    failure_lure_prob: float
    failure_max_episode_steps: int


@dataclass(frozen=True)
class TwinConfig:
    task: str
    controller: str
    physics_dt: float
    jacobian_period_s: float
    expert: ExpertConfig
    medium: MediumConfig
    recovery: RecoveryConfig
    failure_sources: FailureSourceConfig
    data: DataConfig
    path: Path = dataclasses.field(compare=False)

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("path")
        return d


def _numbers(s: Section, cls, ints: tuple[str, ...] = (), strings: tuple[str, ...] = (),
             vectors: dict[str, int] | None = None):
    values = {}
    vectors = vectors or {}
    for f in dataclasses.fields(cls):
        if f.name in vectors:
            values[f.name] = s.vector(f.name, vectors[f.name])
        elif f.name in strings:
            values[f.name] = s.string(f.name)
        elif f.name in ints:
            values[f.name] = s.integer(f.name, minimum=0)
        else:
            values[f.name] = s.number(f.name, minimum=0.0)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in s.data:
        if key not in known:
            raise s.error(key, f"unknown key; expected one of {', '.join(sorted(known))}")
    return cls(**values)


def load_twin_config(task_or_path: str | Path = "fragile_push_wall") -> TwinConfig:
    """config/twin/<task>.yaml by task name, or a YAML path."""
    text = str(task_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = resolve_config_path(text)
    else:
        path = config_dir() / "twin" / f"{text}.yaml"
        if not path.is_file():
            raise ConfigError(path, f"no twin settings for task {text!r}")
    root = Section(load_yaml_mapping(path), path)
    twin = root.section("twin")
    cfg = TwinConfig(
        task=root.string("task"),
        controller=twin.string("controller", "servo", choices=("servo", "exact", "franky")),
        physics_dt=twin.number("physics_dt", 0.001, positive=True, maximum=0.005),
        jacobian_period_s=twin.number("jacobian_period_s", 0.01, positive=True, maximum=0.1),
        expert=_numbers(root.section("expert"), ExpertConfig, strings=("wall",),
                        vectors={"finger_half_extent": 2}),
        medium=_numbers(root.section("medium"), MediumConfig),
        recovery=_numbers(root.section("recovery"), RecoveryConfig, ints=("max_steps",)),
        failure_sources=_numbers(root.section("failure_sources"), FailureSourceConfig,
                                 ints=("rewind_min", "rewind_max", "max_steps")),
        data=_numbers(root.section("data"), DataConfig,
                      ints=("task_episodes", "recovery_episodes", "failure_transitions",
                            "failure_max_episode_steps")),
        path=path,
    )
    if cfg.controller != "servo" and cfg.physics_dt != 0.001:
        raise ConfigError(path, f"controller {cfg.controller!r} runs at franky-sim's 1 ms step; physics_dt "
                                f"{cfg.physics_dt} needs controller 'servo'", key="twin.physics_dt")
    fs = cfg.failure_sources
    if fs.rewind_min < 1 or fs.rewind_max < fs.rewind_min:
        raise ConfigError(path, f"need 1 <= rewind_min <= rewind_max, got {fs.rewind_min}, {fs.rewind_max}",
                          key="failure_sources.rewind_min")
    return cfg


def make_twin_env(task: str = "fragile_push_wall", twin: TwinConfig | None = None, max_steps: int | None = None):
    """The training twin of `task` with the stepping settings of its twin config."""
    from .env import FrankaTwinEnv

    twin = twin or load_twin_config(task)
    return FrankaTwinEnv(task, controller=twin.controller, max_steps=max_steps, physics_dt=twin.physics_dt,
                         jacobian_period_s=twin.jacobian_period_s)

"""Typed twin settings (config/twin/<task>.yaml): experts, recovery, demo generation.

The task itself (scene, observation, action, reward, episode) is read from
config/tasks/<task>.yaml by `farl_control`; this file only holds what the
twin's scripted experts and data generators need. A malformed file raises
`ConfigError` (one line: file, key, problem).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from farl_common.config import ConfigProblem, derived, load, setting, to_mapping
from farl_common.errors import ConfigError
from farl_common.paths import config_dir, resolve_config_path


def N():  # noqa: N802 - every number of this file is a distance, gain or probability: never negative
    return setting(minimum=0.0)


def I():  # noqa: E743,N802 - counts and step numbers
    return setting(minimum=0)


@dataclass(frozen=True)
class SteppingConfig:
    """How the twin steps franky-sim's MuJoCo scene (the `twin:` section)."""

    controller: str = setting("servo", choices=("servo", "exact", "franky"))
    physics_dt: float = setting(0.001, positive=True, maximum=0.005)
    jacobian_period_s: float = setting(0.01, positive=True, maximum=0.1)
    command_delay_s: float = setting(0.0, minimum=0.0, maximum=0.09)


@dataclass(frozen=True)
class ExpertConfig:
    push_height: float = N()
    travel_height: float = N()
    finger_half_extent: tuple[float, float] = N()
    standoff_clearance: float = N()
    align_tolerance: float = N()
    gain: float = N()
    push_gain: float = N()
    min_push_action: float = N()
    wall_margin: float = N()
    max_action: float = N()
    lookahead: float = N()
    push_lateral_gain: float = N()
    wall: str | None = None
    """The scene object the pushed object must not touch, as a fixed wall (None: read the task's
    failure predicates, twin.hazards.hazard_for)."""
    hand_half_extent: tuple[float, float] = setting((0.03, 0.06), minimum=0.0)
    """The hand's footprint (x, y half extents around the TCP) when the arm itself may not touch."""
    yield_margin: float = setting(0.0, minimum=0.0)
    """Wait (off the object, back along the push) while the failure stands within this of the
    object's way to its target (a person's obstacle); 0 = never wait."""
    yield_retreat: float = setting(0.04, minimum=0.0)
    """How far behind the object's standoff point the expert waits."""


@dataclass(frozen=True)
class NoiseConfig:
    noise_std: float = N()
    random_action_prob: float = N()


@dataclass(frozen=True)
class MediumConfig:
    """The medium-quality demonstrator: a cruder pusher than the expert, plus noise."""

    noise_std: float = N()
    random_action_prob: float = N()
    lookahead: float = N()
    push_lateral_gain: float = N()
    yield_margin: float | None = setting(None, minimum=0.0)
    """The medium demonstrator's own `expert.yield_margin` (None: the expert's): a person's obstacle
    noticed later."""


@dataclass(frozen=True)
class RecoveryConfig:
    style: str = setting(choices=("back_off", "push_away", "retreat", "save"))
    near_gap: float = N()
    near_gap_moving: float = N()
    moving_speed: float = N()
    away_ratio: float = N()
    safe_gap: float = N()
    retreat_distance: float = N()
    safe_height: float = N()
    safe_tolerance: float = N()
    max_steps: int = I()
    # "save" (a rolling object near a boundary): where the object will be this far ahead (s) is what the
    # hand gets between it and the boundary, and the push back inward is this fraction of the top speed.
    save_lead_s: float = setting(0.3, minimum=0.0)
    save_push_speed: float = setting(0.5, minimum=0.0, maximum=1.0)


@dataclass(frozen=True)
class FailureSourceConfig:
    lure_beyond_wall: float = N()
    lure_y_jitter: float = N()
    noise_std: float = N()
    random_action_prob: float = N()
    rewind_min: int = I()
    rewind_max: int = I()
    max_steps: int = I()

    def check(self) -> None:
        if self.rewind_min < 1 or self.rewind_max < self.rewind_min:
            raise ConfigProblem("rewind_min", f"need 1 <= rewind_min <= rewind_max, got {self.rewind_min}, "
                                              f"{self.rewind_max}")


@dataclass(frozen=True)
class DataConfig:
    task_episodes: int = I()
    recovery_episodes: int = I()
    failure_transitions: int = I()
    failure_noise_std: float = N()
    failure_random_action_prob: float = N()
    failure_noise_correlation: float = N()
    failure_lure_prob: float = N()
    failure_max_episode_steps: int = I()


@dataclass(frozen=True)
class TwinConfig:
    task: str
    expert: ExpertConfig
    medium: MediumConfig
    recovery: RecoveryConfig
    failure_sources: FailureSourceConfig
    data: DataConfig
    twin: SteppingConfig = SteppingConfig()
    path: Path = derived()

    @property
    def controller(self) -> str:
        return self.twin.controller

    @property
    def physics_dt(self) -> float:
        return self.twin.physics_dt

    @property
    def jacobian_period_s(self) -> float:
        return self.twin.jacobian_period_s

    @property
    def command_delay_s(self) -> float:
        return self.twin.command_delay_s

    def check(self) -> None:
        if self.controller != "servo" and self.physics_dt != 0.001:
            raise ConfigProblem("twin.physics_dt", f"controller {self.controller!r} runs at franky-sim's 1 ms step; "
                                                   f"physics_dt {self.physics_dt} needs controller 'servo'")

    def as_dict(self) -> dict:
        """Every setting, flat stepping keys first (the layout data caches are keyed by)."""
        d = to_mapping(self)
        d.pop("path", None)
        return {**d.pop("twin"), **d}


def load_twin_config(task_or_path: str | Path = "fragile_push_wall", overrides=None) -> TwinConfig:
    """config/twin/<task>.yaml by task name, or a YAML path, with dotted overrides."""
    text = str(task_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = resolve_config_path(text)
    else:
        path = config_dir() / "twin" / f"{text}.yaml"
        if not path.is_file():
            raise ConfigError(path, f"no twin settings for task {text!r}")
    return load(TwinConfig, path, overrides)


def make_twin_env(task: str = "fragile_push_wall", twin: TwinConfig | None = None, max_steps: int | None = None):
    """The training twin of `task` with the stepping settings of its twin config."""
    from .env import FrankaTwinEnv

    twin = twin or load_twin_config(task)
    return FrankaTwinEnv(task, controller=twin.controller, max_steps=max_steps, physics_dt=twin.physics_dt,
                         jacobian_period_s=twin.jacobian_period_s, command_delay_s=twin.command_delay_s)

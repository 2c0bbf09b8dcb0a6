"""The one config loader (farl_common.config): typed dataclasses from YAML, dotted --set overrides, one-line errors.

Task, stack, twin and FARL configs are all read by it; each is checked here for
the same three behaviours: the shipped file loads, a typo anywhere is refused
naming file and dotted key, and a dotted override is applied and type-checked.
"""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from farl_common.config import ConfigProblem, build, load, parse_overrides, setting, to_mapping
from farl_common.errors import ConfigError, FarlInputError
from farl_common.paths import config_dir
from farl_common.task_config import TaskConfig, load_task_config
from farl_control.launching.stack import StackDescription
from farl_learner.config import FarlConfig, load_farl_config
from farl_learner.twin.config import TwinConfig, load_twin_config


@dataclass(frozen=True)
class Joint:
    name: str
    limits: tuple[float, float] = setting((-1.0, 1.0))


@dataclass(frozen=True)
class Arm:
    rate_hz: float = setting(positive=True, maximum=1000.0)
    mode: str = setting("sim", choices=("sim", "real"))
    gains: tuple[float, ...] = setting((1.0,), minimum=0.0)
    joints: tuple[Joint, ...] = ()
    lift: float | None = setting(None, positive=True)
    extra: dict[str, Any] = field(default_factory=dict)
    history: int = setting(10, minimum=1)

    def check(self) -> None:
        if len({j.name for j in self.joints}) != len(self.joints):
            raise ConfigProblem("joints", "joint names must be unique")


def test_a_config_class_says_types_defaults_and_limits():
    arm = build(Arm, {"rate_hz": 10, "joints": [{"name": "j1"}, {"name": "j2", "limits": [-2, 2]}],
                      "extra": {"anything": [1, "x"]}}, "arm.yaml")
    assert arm.rate_hz == 10.0 and isinstance(arm.rate_hz, float) and arm.mode == "sim"
    assert arm.joints[1].limits == (-2.0, 2.0) and arm.lift is None and arm.extra == {"anything": [1, "x"]}
    assert build(Arm, to_mapping(arm), "again.yaml") == arm  # what to_mapping writes reads back the same


@pytest.mark.parametrize("data, key, text", [
    ({}, "rate_hz", "missing required key"),
    ({"rate_hz": 0}, "rate_hz", "must be > 0"),
    ({"rate_hz": 2000}, "rate_hz", "must be <= 1000.0"),
    ({"rate_hz": "fast"}, "rate_hz", "expected a finite number"),
    ({"rate_hz": 10, "mode": "mars"}, "mode", "'mars' is not one of sim, real"),
    ({"rate_hz": 10, "gains": [1, -1]}, "gains", "must be >= 0.0"),
    ({"rate_hz": 10, "joints": [{"name": "a", "limits": [1]}]}, "joints[0].limits", "expected 2 entries"),
    ({"rate_hz": 10, "joints": [{"name": "a"}, {"name": "a"}]}, "joints", "joint names must be unique"),
    ({"rate_hz": 10, "joints": [{"nam": "a"}]}, "joints[0].nam", "unknown key; known: name, limits"),
    ({"rate_hz": 10, "lift": -1}, "lift", "must be > 0"),
    ({"rate_hz": 10, "history": True}, "history", "expected an integer"),
])
def test_every_problem_is_one_line_naming_file_and_dotted_key(data, key, text):
    with pytest.raises(ConfigError) as error:
        build(Arm, data, "arm.yaml")
    message = str(error.value)
    assert message.startswith(f"arm.yaml: {key}: ") and text in message and "\n" not in message


def test_dotted_overrides_are_parsed_as_yaml_and_checked_against_the_class(tmp_path):
    assert parse_overrides(["a.b=1", "c=[1, 2]", "d=true", "e=text"]) == {"a.b": 1, "c": [1, 2], "d": True,
                                                                         "e": "text"}
    with pytest.raises(FarlInputError, match="--set: expected KEY=VALUE"):
        parse_overrides(["no-equals-sign"])
    path = tmp_path / "arm.yaml"
    path.write_text("rate_hz: 10\n")
    assert load(Arm, path, {"rate_hz": 50, "mode": "real"}).rate_hz == 50.0
    with pytest.raises(ConfigError, match=r"arm\.yaml \(--set\): rate_hz: must be > 0"):
        load(Arm, path, {"rate_hz": -5})  # the bad value is blamed on the override, not on the file
    with pytest.raises(ConfigError, match=r"\(--set\): rate: unknown key; known: rate_hz"):
        load(Arm, path, {"rate": 50})


# ---- the four kinds of config files of the stack, through the one loader


def _typo_in(path: Path, section: str, tmp_path: Path) -> Path:
    data = yaml.safe_load(path.read_text())
    name, _, index = section.partition("[")
    (data[name][int(index[:-1])] if index else data[name])["surely_a_typo"] = 1
    bad = tmp_path / path.name
    bad.write_text(yaml.safe_dump(data))
    return bad


@pytest.mark.parametrize("kind, cls, section", [
    ("tasks", TaskConfig, "control"), ("stacks", StackDescription, "nodes[1]"), ("twin", TwinConfig, "expert"),
    ("farl/franka", FarlConfig, "ppo"),
])
def test_task_stack_twin_and_farl_files_all_refuse_a_typo_with_file_and_key(kind, cls, section, tmp_path):
    shipped = config_dir() / kind / "fragile_push_wall.yaml"
    assert isinstance(load(cls, shipped), cls)
    bad = _typo_in(shipped, section, tmp_path)
    with pytest.raises(ConfigError) as error:
        load(cls, bad)
    assert str(error.value).startswith(f"{bad}: {section}.surely_a_typo: unknown key")


def test_each_loader_takes_dotted_overrides():
    assert load_task_config("fragile_push_wall", {"control.max_linear_speed": 0.15}).control.max_linear_speed == 0.15
    assert load_twin_config("fragile_push_wall", {"expert.gain": 3}).expert.gain == 3.0
    assert load_farl_config("fragile_push_wall", {"risk.horizon": 4}).risk.horizon == 4
    with pytest.raises(ConfigError, match=r"action\.linear_velocity_scale: exceeds control\.max_linear_speed"):
        load_task_config("fragile_push_wall", {"control.max_linear_speed": 0.05})  # rules across sections hold


def test_the_control_limits_exist_once():
    """The command filter reads the task's control section itself (no mirrored limits class)."""
    import farl_control.robot.safety as safety

    assert not hasattr(safety, "SafetyLimits")
    control = load_task_config("fragile_push_wall").control
    assert control.lookahead_s == pytest.approx(1.0 / control.rate_hz + control.response_time_s)


def test_farl_launch_set_gives_every_node_the_same_checked_task_file():
    result = subprocess.run([sys.executable, "-m", "farl_learner.cli", "launch", "fragile_push_wall", "--dry-run",
                             "--set", "control.max_linear_speed=0.12"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    files = {yaml.safe_load(line.split(" ", 2)[2])["task_config"] for line in result.stdout.splitlines()}
    assert len(files) == 1
    effective = Path(files.pop())
    assert load_task_config(str(effective)).control.max_linear_speed == 0.12
    result = subprocess.run([sys.executable, "-m", "farl_learner.cli", "launch", "fragile_push_wall", "--dry-run",
                             "--set", "control.max_linear_sped=0.12"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "(--set): control.max_linear_sped: unknown key" in result.stderr

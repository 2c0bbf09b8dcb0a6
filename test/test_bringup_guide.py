"""docs/BRINGUP.md names only commands, arguments, config keys, topics and services that exist.

An operator follows the guide next to a real arm: a renamed launch argument or
a `farl` subcommand that was never written would fail there, not here. What the
guide says is not implemented yet must really not exist (and when it arrives,
this test asks for the guide to be updated).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from farl_common import interface as api
from farl_common.task_config import load_task_config
from farl_learner.cli import SUBCOMMANDS

REPO = Path(__file__).resolve().parents[1]
GUIDE = (REPO / "docs" / "BRINGUP.md").read_text()
NOT_IMPLEMENTED_SUBCOMMANDS: set[str] = set()  # the guide says so; this keeps it honest both ways
STACK_ARGS = set(yaml.safe_load((REPO / "config" / "stacks" / "fragile_push_wall.yaml").read_text())["args"])
NODE_PARAMETERS = {"allow_non_rt_kernel", "pose_timeout_s"}  # franka_node's override, the shield's freshness


def test_every_farl_subcommand_in_the_guide_exists():
    named = set(re.findall(r"\bfarl ([a-z][a-z-]+)", GUIDE))
    assert {"doctor", "launch", "pretrain-twin"} <= named
    unknown = named - set(SUBCOMMANDS) - NOT_IMPLEMENTED_SUBCOMMANDS
    assert not unknown, f"docs/BRINGUP.md names farl subcommands that do not exist: {sorted(unknown)}"


def test_what_the_guide_calls_not_implemented_is_not_there():
    assert not NOT_IMPLEMENTED_SUBCOMMANDS & set(SUBCOMMANDS), "implemented now: update docs/BRINGUP.md"


def test_the_guide_says_how_to_mount_calibrate_and_check_the_camera():
    assert "farl calibrate camera" in GUIDE and "perception:=aruco" in GUIDE
    assert "/farl/perception/status" in GUIDE and "config/calibration/scene_camera.yaml" in GUIDE


def test_every_launch_argument_in_the_guide_is_declared():
    used = set(re.findall(r"\b([a-z_]+):=", GUIDE))
    unknown = used - STACK_ARGS - NODE_PARAMETERS
    assert not unknown, f"docs/BRINGUP.md uses launch arguments the stack does not declare: {sorted(unknown)}"


LAUNCH_COMMANDS = re.findall(r"farl launch (?:[^\n]*\\\n)*[^\n]*", GUIDE)


def test_the_guide_has_launch_commands_with_overrides():
    assert len(LAUNCH_COMMANDS) >= 2 and any("--set" in c for c in LAUNCH_COMMANDS)
    outside = GUIDE.count("--set ") - sum(c.count("--set ") for c in LAUNCH_COMMANDS)
    assert outside == 0, "every --set example is part of a farl launch command (checked below)"


@pytest.mark.parametrize("command", LAUNCH_COMMANDS)
def test_every_launch_commands_overrides_load_together(command):
    """All overrides of one command at once: the config checks rules across keys (speed limit >= action scale)."""
    pairs = dict(re.findall(r"--set ([\w.]+)=(\S+)", command))
    load_task_config("fragile_push_wall", {k: yaml.safe_load(v) for k, v in pairs.items()})


def test_every_config_key_the_guide_names_exists_in_the_task_config():
    config = load_task_config("fragile_push_wall")
    for dotted in sorted(set(re.findall(r"`((?:robot|control)\.[a-z_.]+)", GUIDE))):
        value = config
        for part in dotted.split("."):
            assert hasattr(value, part), f"docs/BRINGUP.md: {dotted} is not a task config key"
            value = getattr(value, part)


def test_every_topic_and_service_in_the_guide_exists():
    known = {t.name for t in api.TOPICS} | {s.name for s in api.SERVICES}
    tracked = {api.object_topic(o.name).name for o in load_task_config("fragile_push_wall").scene.objects
               if o.tracked}
    for name in sorted(set(re.findall(r"(/farl/[a-z_/]+[a-z_])", GUIDE))):
        assert name in known | tracked, f"docs/BRINGUP.md: {name} is not in farl_common.interface"

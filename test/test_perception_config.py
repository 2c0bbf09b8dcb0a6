"""The perception config and the perceived failure predicate: the shipped files load, bad ones fail in one line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from farl_common.errors import ConfigError
from farl_common.failure_predicates import PerceivedFailure, box_gap
from farl_common.paths import config_dir
from farl_common.task_config import load_task_config
from farl_perception.config import load_extrinsic, load_perception_config

SHIPPED = config_dir() / "perception" / "fragile_push_wall.yaml"


def write_variant(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(SHIPPED.read_text())
    edit(data)
    path = tmp_path / "perception.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_shipped_perception_config_covers_every_tracked_object_of_its_task():
    task = load_task_config("fragile_push_wall")
    config = load_perception_config("fragile_push_wall", task)
    assert {o.name for o in config.objects} == {o.name for o in task.scene.tracked}
    assert [o.name for o in config.markers] == ["fragile_block"]
    assert load_extrinsic(config.extrinsic_file).matrix.shape == (4, 4)


def test_two_objects_with_one_marker_id_are_refused_naming_file_and_key(tmp_path):
    def duplicate(data):
        data["objects"][1] = {"name": "wall", "marker_id": data["objects"][0]["marker_id"], "marker_size": 0.04}
    with pytest.raises(ConfigError) as error:
        load_perception_config(str(write_variant(tmp_path, duplicate)))
    assert "objects[1].marker_id" in str(error.value) and "perception.yaml" in str(error.value)
    assert "fragile_block" in str(error.value)


def test_a_marker_without_its_size_is_refused_naming_the_key(tmp_path):
    def no_size(data):
        del data["objects"][0]["marker_size"]
    with pytest.raises(ConfigError, match=r"objects\[0\]\.marker_size: missing required key"):
        load_perception_config(str(write_variant(tmp_path, no_size)))


def test_the_calibration_marker_must_not_reuse_an_objects_id(tmp_path):
    def clash(data):
        data["calibration"]["marker_id"] = data["objects"][0]["marker_id"]
    with pytest.raises(ConfigError, match="calibration.marker_id"):
        load_perception_config(str(write_variant(tmp_path, clash)))


def test_an_object_the_task_does_not_track_is_refused(tmp_path):
    def stranger(data):
        data["objects"].append({"name": "table", "fixed": True})
    with pytest.raises(ConfigError, match=r"objects\[3\]\.name: 'table' is not a tracked scene object"):
        load_perception_config(str(write_variant(tmp_path, stranger)), load_task_config("fragile_push_wall"))


def test_a_bad_marker_config_stops_the_object_pose_node_with_one_error_line(tmp_path):
    def no_size(data):
        del data["objects"][0]["marker_size"]
    path = write_variant(tmp_path, no_size)
    result = subprocess.run([sys.executable, "-c",
                             "import sys; from farl_common.errors import exit_on_input_error\n"
                             "from farl_perception.config import load_perception_config\n"
                             "with exit_on_input_error('object_pose_node'):\n"
                             f"    load_perception_config({str(path)!r})"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("object_pose_node: error:") and "marker_size" in lines[0]


def test_box_gap_is_the_distance_between_axis_aligned_boxes():
    assert box_gap((0, 0, 0), (1, 1, 1), (2, 0, 0), (0.5, 0.5, 0.5)) == pytest.approx(0.5)
    assert box_gap((0, 0, 0), (1, 1, 1), (1.5, 0, 0), (0.5, 0.5, 0.5)) == 0.0  # touching
    assert box_gap((0, 0, 0), (1, 1, 1), (2, 2, 0), (0.5, 0.5, 0.5)) == pytest.approx(0.5 * 2 ** 0.5)


def test_the_perceived_failure_fires_when_the_block_comes_within_the_margin_of_the_wall():
    task = load_task_config("fragile_push_wall")
    failure = PerceivedFailure(task)
    wall = task.scene.object("wall").pos
    face = wall[0] - task.scene.object("wall").size[0]  # the wall's face toward the block
    half = task.scene.object("fragile_block").size[0]
    margin = task.failure.perceived.margin
    at = lambda gap: {"wall": wall, "fragile_block": (face - half - gap, -0.1, 0.025)}  # noqa: E731
    assert failure(at(0.0)) and failure(at(margin * 0.9))
    assert not failure(at(margin * 1.5)) and not failure(at(0.03))
    assert not failure({"wall": wall})  # a missing pose is no failure
    # Turned 30 degrees, the block's corner reaches the wall before its face would.
    turned = (0.0, 0.0, np.sin(np.radians(15)), np.cos(np.radians(15)))
    corner_reach = half * (np.cos(np.radians(30)) + np.sin(np.radians(30))) - half
    assert not failure(at(corner_reach * 0.9))
    assert failure(at(corner_reach * 0.9), {"fragile_block": turned})


def test_a_perceived_predicate_on_an_unknown_object_is_refused(tmp_path):
    data = yaml.safe_load((config_dir() / "tasks" / "fragile_push_wall.yaml").read_text())
    data["failure"]["perceived"]["objects"] = ["fragile_block", "vase"]
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"failure.perceived.objects\[1\]: 'vase' is not a scene object"):
        load_task_config(str(path))

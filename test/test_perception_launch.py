"""perception:=auto|ground_truth|aruco in the stack table: which nodes run and who publishes /farl/objects."""
from __future__ import annotations

import pytest

from farl_common.errors import FarlInputError
from farl_control.launching.stack import load_stack


def nodes(**arguments):
    return {n.name: n for n in load_stack("fragile_push_wall").resolve(arguments)}


def test_in_sim_the_default_is_ground_truth_with_no_camera():
    stack = nodes()
    assert stack["sim_robot"].parameters["perception"] == "ground_truth"
    assert stack["episode_monitor"].parameters["perception"] == "ground_truth"
    assert not {"sim_camera", "scene_camera", "object_pose"} & set(stack)


def test_aruco_in_sim_renders_the_scene_and_perceives_the_objects():
    stack = nodes(perception="aruco")
    assert {"sim_camera", "object_pose"} <= set(stack) and "scene_camera" not in stack
    assert stack["sim_robot"].parameters["perception"] == "aruco"  # ground truth only on /farl/sim/objects
    assert stack["episode_monitor"].parameters["perception"] == "aruco"  # failures from failure.perceived
    names = list(stack)
    assert names.index("sim_robot") < names.index("sim_camera") < names.index("object_pose") < names.index("shield")


def test_the_real_arm_uses_the_realsense_by_default_with_its_serial():
    stack = nodes(robot="real", robot_ip="172.16.0.2", camera_serial="817612070001")
    assert {"scene_camera", "object_pose"} <= set(stack) and "sim_camera" not in stack
    assert str(stack["scene_camera"].parameters["serial"]) == "817612070001"
    assert stack["episode_monitor"].parameters["perception"] == "aruco"


def test_ground_truth_on_the_real_arm_is_refused_in_one_line():
    with pytest.raises(FarlInputError, match=r"perception:=ground_truth needs robot:=sim \(got robot:=real\)"):
        nodes(robot="real", perception="ground_truth")


def test_perception_nodes_are_not_required_a_dead_camera_stops_poses_not_the_stack():
    stack = nodes(perception="aruco")
    assert not stack["sim_camera"].required and not stack["object_pose"].required

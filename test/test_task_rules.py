"""Failure predicates, success tests and rewards come from the task file, not from per-task code.

Pure Python: the predicates, the reward and the sim-only disturber and turf are
checked on hand-made positions and contact lists, without MuJoCo or ROS.
"""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from farl_common.config import build
from farl_common.errors import ConfigError
from farl_common.failure_predicate import FailurePredicate
from farl_common.paths import config_dir
from farl_common.task_config import (DisturberConfig, FailureConfig, TaskConfig, TerrainConfig, known_tasks,
                                     load_task_config)
from farl_common.task_spec import TaskSpec
from farl_control.sim.disturber import Disturber
from farl_control.sim.terrain import draw_terrain

ARM_PREFIX = "robot0_"


def _failure(data: dict) -> FailureConfig:
    return build(FailureConfig, data, "task.yaml", prefix="failure.")


def test_the_three_real_robot_tasks_have_a_task_file():
    assert {"fragile_push_wall", "disturbed_push", "bounded_soccer"} <= set(known_tasks())
    for task in ("fragile_push_wall", "disturbed_push", "bounded_soccer"):
        assert load_task_config(task).task == task


def test_a_contact_predicate_fires_for_a_listed_pair_in_either_order_and_arm_means_any_robot_body():
    predicate = FailurePredicate(_failure({"predicates": [
        {"kind": "contact", "pairs": [["block", "obstacle"], ["arm", "obstacle"]]}]}), ARM_PREFIX)
    assert predicate.contact([("obstacle", "block")])
    assert predicate.contact([("robot0_fr3_link5", "obstacle")])
    assert predicate.contact([("obstacle", "robot0_left_finger")])
    assert not predicate.contact([("block", "table"), ("robot0_hand", "block"), ("obstacle", "table")])


def test_an_outside_predicate_fires_when_the_object_centre_leaves_the_region():
    predicate = FailurePredicate(_failure({"predicates": [
        {"kind": "outside", "object": "ball", "region": {"min": [0.45, -0.22], "max": [0.69, 0.26]}}]}), ARM_PREFIX)
    assert not predicate.holds([], {"ball": np.array([0.57, 0.0, 0.03])})
    assert predicate.holds([], {"ball": np.array([0.70, 0.0, 0.03])})
    assert predicate.holds([], {"ball": np.array([0.57, -0.23, 0.03])})


@pytest.mark.parametrize("data, key", [
    ({"predicates": []}, "failure.predicates"),
    ({"predicates": [{"kind": "contact"}]}, "failure.predicates[0].pairs"),
    ({"predicates": [{"kind": "outside", "object": "ball"}]}, "failure.predicates[0].region"),
    ({"predicates": [{"kind": "teleport", "pairs": [["a", "b"]]}]}, "failure.predicates[0].kind"),
    ({"predicates": [{"kind": "outside", "object": "ball", "region": {"min": [1, 0], "max": [0, 1]}}]},
     "failure.predicates[0].region.min"),
])
def test_a_malformed_predicate_is_one_line_naming_its_key(data, key):
    with pytest.raises(ConfigError) as error:
        _failure(data)
    assert str(error.value).startswith(f"task.yaml: {key}: ") and "\n" not in str(error.value)


def test_a_predicate_naming_a_body_the_scene_lacks_is_refused(tmp_path):
    data = yaml.safe_load((config_dir() / "tasks" / "disturbed_push.yaml").read_text())
    data["failure"]["predicates"][0]["pairs"].append(["block", "vase"])
    bad = tmp_path / "disturbed_push.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"failure\.predicates\[0\]\.pairs: names 'vase', which is neither 'arm' "
                                          r"nor a scene object"):
        TaskConfig.from_file(bad)


def test_fragile_push_wall_reward_is_the_same_number_as_before_the_terms_moved_to_the_file():
    spec = TaskSpec.from_config(load_task_config("fragile_push_wall"))
    pos = {"tcp": np.array([0.52, -0.21, 0.07]), "fragile_block": np.array([0.571, -0.1, 0.025]),
           "target": np.array([0.57, 0.10, 0.001])}
    reach = float(np.linalg.norm(pos["tcp"] - pos["fragile_block"]))
    push = float(np.hypot(*(pos["fragile_block"] - pos["target"])[:2]))
    assert spec.reward(pos, False) == -1.0 * reach - 5.0 * push
    assert spec.reward(pos, True, True) == -1.0 * reach - 5.0 * push + 10.0 - 50.0
    assert spec.required_sources == ("tcp", "fragile_block", "target")


def test_inside_region_success_reads_the_region_of_the_file():
    config = load_task_config("bounded_soccer", {"success": {"kind": "inside_region", "object": "ball",
                                                             "region": {"min": [0.5, 0.1], "max": [0.6, 0.2]}}})
    spec = TaskSpec.from_config(config)
    assert spec.success({"ball": np.array([0.55, 0.15, 0.03])})
    assert not spec.success({"ball": np.array([0.55, 0.25, 0.03])})


def test_disturbed_push_observes_the_obstacle_and_fails_on_obstacle_contact_of_block_or_arm():
    config = load_task_config("disturbed_push")
    spec = TaskSpec.from_config(config)
    assert spec.layout()[-4:] == ["obstacle.x", "obstacle.y", "obstacle.vx", "obstacle.vy"]
    assert set(config.failure.contact_pairs) == {("block", "obstacle"), ("arm", "obstacle")}
    assert config.scene.object("obstacle").kinematic and config.scene.object("obstacle").tracked


def test_bounded_soccer_fails_outside_its_boundary_and_rolls_on_turf():
    config = load_task_config("bounded_soccer")
    ((name, region),) = config.failure.regions
    assert name == "ball" and not config.failure.contact_pairs
    ball = config.scene.object("ball")
    assert ball.condim == 6 and ball.friction[2] > 0.0  # rolling friction
    assert region.contains(*ball.pos[:2]) and region.contains(*config.scene.object("goal").pos[:2])
    assert config.scene.terrain is not None and config.scene.terrain.slope_deg[1] > 0.0


# ---- the disturber: the person who moves the obstacle (sim only)

def _disturber(**overrides) -> Disturber:
    data = {"object": "obstacle", "region": {"min": [0.45, -0.25], "max": [0.72, 0.25]}, "moves": [1, 1],
            "start_s": [1.0, 1.0], "distance": [0.10, 0.10], "speed": 0.05, "into_path_prob": 1.0,
            "path_from": "block", "path_to": "target", "path_fraction": [0.5, 0.5], "dwell_s": [1.0, 1.0],
            **overrides}
    return Disturber(build(DisturberConfig, data, "task.yaml", prefix="scene.disturber."))


def test_the_disturber_moves_the_obstacle_into_the_path_holds_it_and_takes_it_back():
    d = _disturber()
    where = {"block": np.array([0.57, -0.12, 0.025]), "target": np.array([0.57, 0.10, 0.0])}
    d.reset(seed=3, start_xy=(0.68, -0.01))
    lookup = where.__getitem__
    assert np.allclose(d.position(0.5, lookup), (0.68, -0.01))          # before its start time: at rest
    assert np.allclose(d.position(1.0, lookup), (0.68, -0.01))
    # The aim is the middle of the path, (0.57, -0.01): 11 cm away, cut to the 10 cm move.
    mid = d.position(2.0, lookup)
    assert np.allclose(mid, (0.63, -0.01), atol=1e-9)
    held = d.position(3.2, lookup)
    assert np.allclose(held, (0.58, -0.01), atol=1e-9) and np.allclose(d.position(3.9, lookup), held)
    assert np.allclose(d.position(6.0, lookup), (0.68, -0.01), atol=1e-9)  # taken back to where it came from


def test_the_disturber_schedule_is_the_seed_s_and_stays_in_its_region():
    lookup = {"block": np.array([0.57, -0.12]), "target": np.array([0.57, 0.10])}.__getitem__

    def path(seed):
        d = _disturber(moves=[1, 3], start_s=[0.5, 4.0], distance=[0.05, 0.4], into_path_prob=0.5)
        d.reset(seed=seed, start_xy=(0.68, -0.02))
        return np.array([d.position(t, lookup) for t in np.arange(0.0, 12.0, 0.01)])

    a, b, c = path(1), path(1), path(2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    for p in (a, c):
        assert np.all(p >= (0.45, -0.25)) and np.all(p <= (0.72, 0.25))
        assert np.max(np.linalg.norm(np.diff(p, axis=0), axis=1)) <= 0.05 * 0.01 + 1e-9  # never faster than speed


def test_the_turf_draw_is_the_seed_s_and_inside_its_ranges():
    config = build(TerrainConfig, {"object": "ball", "friction_scale": [0.7, 1.3], "slope_deg": [0.0, 0.15]},
                   "task.yaml")
    draws = [draw_terrain(config, seed) for seed in range(50)]
    assert draw_terrain(config, 7) == draws[7]
    assert all(0.7 <= d.friction_scale <= 1.3 and 0.0 <= d.slope_deg <= 0.15 for d in draws)
    force = draws[3].force(0.06)
    assert force[2] == 0.0 and np.hypot(*force[:2]) == pytest.approx(0.06 * 9.81 * np.sin(np.radians(draws[3].slope_deg)))


def test_what_the_policy_reward_and_success_read_must_be_tracked(tmp_path):
    """The stack sees only tracked objects: an untracked source would leave the shield waiting forever."""
    data = yaml.safe_load((config_dir() / "tasks" / "bounded_soccer.yaml").read_text())
    for obj in data["scene"]["objects"]:
        if obj["name"] == "goal":
            obj["tracked"] = False
    bad = tmp_path / "bounded_soccer.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"(reward\.terms\[1\]\.to|success\.target): 'goal' is not tracked"):
        TaskConfig.from_file(bad)

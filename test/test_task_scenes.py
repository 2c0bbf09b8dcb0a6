"""Disturbed Push and Bounded Soccer in franky-sim's MuJoCo scene and in the training twin.

The served sim (`SimScene`) and the twin step the same scene, so the failure
predicate, the person's obstacle and the turf are checked in both where it matters.
"""
from __future__ import annotations

import mujoco
import numpy as np
import pytest

from farl_common.task_config import load_task_config
from farl_control.sim.scene import SimScene
from farl_learner.twin.config import load_twin_config, make_twin_env
from farl_learner.twin.experts import RecoveryController, TaskExpert
from farl_learner.twin.hazards import BoundaryHazard, ObstacleHazard

pytestmark = pytest.mark.sim  # franky-sim's MuJoCo scene


def _scene(task: str) -> SimScene:
    scene = SimScene(load_task_config(task))
    scene.start()
    return scene


def _place(scene: SimScene, name: str, xyz) -> None:
    qa, da = scene._free_addrs[name]
    scene.data.qpos[qa:qa + 3] = xyz
    scene.data.qpos[qa + 3:qa + 7] = (1, 0, 0, 0)
    scene.data.qvel[da:da + 6] = 0
    mujoco.mj_forward(scene.model, scene.data)


def _step_with_arm_held(scene: SimScene, steps: int, record: str | None = None) -> list:
    """Physics steps with the lab around the task (world_step) and the arm held at home: without
    franky-sim's server no controller holds it, and a falling arm would sweep the table."""
    qa, da = scene._arm_addrs
    home = scene.config.robot.home_joints
    path = []
    for _ in range(steps):
        scene.data.qpos[qa] = home
        scene.data.qvel[da] = 0.0
        scene.world_step()
        mujoco.mj_step(scene.model, scene.data)
        if record is not None:
            path.append(scene.object_pose(record).pos[:2])
    return path


def _move_obstacle(scene: SimScene, xy) -> None:
    scene.data.mocap_pos[scene._mocap_ids["obstacle"], :2] = xy
    mujoco.mj_forward(scene.model, scene.data)


# ---- Disturbed Push -------------------------------------------------------

def test_disturbed_push_fails_when_the_obstacle_touches_the_block_not_at_the_start():
    scene = _scene("disturbed_push")
    scene.reset_now(seed=0)
    assert not scene.snapshot().failure
    block = scene.object_pose("block").pos
    _move_obstacle(scene, (block[0] + 0.025 + 0.02 - 0.001, block[1]))  # faces overlapping by 1 mm
    snap = scene.snapshot()
    assert snap.failure and ("block", "obstacle") in snap.contacts


def test_disturbed_push_fails_when_the_obstacle_touches_the_arm():
    scene = _scene("disturbed_push")
    scene.reset_now(seed=0)
    hand = scene.data.xpos[mujoco.mj_name2id(scene.model, mujoco.mjtObj.mjOBJ_BODY, "robot0_hand")]
    _move_obstacle(scene, hand[:2])
    scene.data.mocap_pos[scene._mocap_ids["obstacle"], 2] = hand[2]
    mujoco.mj_forward(scene.model, scene.data)
    snap = scene.snapshot()
    assert snap.failure and any(a.startswith("robot0_") or b.startswith("robot0_") for a, b in snap.contacts)


def test_the_served_scene_moves_the_obstacle_on_the_seeded_schedule():
    scene = _scene("disturbed_push")
    paths = []
    for seed in (5, 5, 6):
        scene.reset_now(seed=seed)
        scene.data.qacc_warmstart[:] = 0.0  # MuJoCo's solver warm start would carry the last run over
        paths.append(np.array(_step_with_arm_held(scene, 9000, "obstacle")))  # 9 s, as serve() interleaves them
    start = load_task_config("disturbed_push").scene.object("obstacle").pos[:2]
    assert np.max(np.linalg.norm(paths[0] - start, axis=1)) > 0.03  # it did move
    assert np.allclose(paths[0], paths[1]) and not np.allclose(paths[0], paths[2])


def test_the_twin_observes_the_obstacle_and_rewinds_its_schedule():
    env = make_twin_env("disturbed_push")
    obs, _ = env.reset(seed=5)
    where = slice(-4, -2)  # the obstacle's position (its velocity follows)
    assert env.spec_.layout()[where] == ["obstacle.x", "obstacle.y"] and obs.shape == (11,)
    for _ in range(20):
        obs, *_ = env.step(np.zeros(3))
    state = env.get_state()
    after = [env.step(np.zeros(3))[0][where] for _ in range(40)]
    env.set_state(state)
    again = [env.step(np.zeros(3))[0][where] for _ in range(40)]
    assert np.allclose(after, again)  # the obstacle's schedule is part of the rewound state
    assert np.max(np.linalg.norm(np.array(after) - obs[where], axis=1)) > 0.0


def _obstacle(env) -> list[int]:
    """Where the obstacle's position sits in the observation."""
    layout = env.spec_.layout()
    return [layout.index("obstacle.x"), layout.index("obstacle.y")]


def test_the_disturbed_push_expert_waits_while_the_obstacle_stands_in_the_way():
    env = make_twin_env("disturbed_push")
    twin = load_twin_config("disturbed_push")
    expert = TaskExpert(env.config, env.spec_, twin.expert)
    assert isinstance(expert.wall, ObstacleHazard)
    obs, _ = env.reset(seed=0)
    o = np.array(obs, dtype=np.float64)
    o[:3] = [0.57, -0.19, 0.04]               # low, behind the block, ready to push +y
    o[3:5] = [0.57, -0.12]
    clear = expert(o)
    assert clear[1] > 0.2                     # the way is clear: push toward the target
    o[_obstacle(env)] = [0.57, -0.03]         # the obstacle right ahead of the block
    blocked = expert(o)
    assert blocked[1] < 0.0                   # back off along the push


def test_disturbed_push_recovery_moves_away_from_an_obstacle_closing_in():
    env = make_twin_env("disturbed_push")
    twin = load_twin_config("disturbed_push")
    rec = RecoveryController(env.config, env.spec_, twin.expert, twin.recovery)
    obs, _ = env.reset(seed=0)
    o = np.array(obs, dtype=np.float64)
    o[:3] = [0.57, -0.16, 0.04]
    o[3:5] = [0.57, -0.12]
    o[_obstacle(env)] = [0.57, -0.065]        # 1 cm in front of the block
    assert rec.near_failure(o)
    action = rec(o)
    assert action[1] < 0.0                    # back, away from the obstacle


# ---- Bounded Soccer -------------------------------------------------------

def test_bounded_soccer_fails_when_the_ball_leaves_the_boundary_not_at_the_start():
    scene = _scene("bounded_soccer")
    scene.reset_now(seed=0)
    assert not scene.snapshot().failure
    region = load_task_config("bounded_soccer").failure.regions[0][1]
    _place(scene, "ball", (region.max[0] + 0.01, 0.0, 0.03))
    assert scene.snapshot().failure
    _place(scene, "ball", (region.max[0] - 0.01, 0.0, 0.03))
    assert not scene.snapshot().failure


def test_the_ball_rolls_on_after_a_push_and_stops_on_the_turf():
    scene = _scene("bounded_soccer")
    scene.reset_now(seed=1)
    qa, da = scene._free_addrs["ball"]
    start = scene.object_pose("ball").pos
    scene.data.qvel[da + 1] = 0.1                  # let go at 0.1 m/s along +y, rolling
    scene.data.qvel[da + 3] = -0.1 / 0.03
    _step_with_arm_held(scene, 5000)
    end = scene.object_pose("ball").pos
    assert 0.03 < end[1] - start[1] < 0.2          # rolls on (rolling friction), stops on the table
    assert np.hypot(*scene.data.qvel[da:da + 2]) < 0.02


def test_each_episode_draws_its_own_turf_and_a_resting_ball_stays_put():
    scene = _scene("bounded_soccer")
    gid = scene._terrain_geom
    frictions = set()
    for seed in range(4):
        scene.reset_now(seed=seed)
        frictions.add(round(float(scene.model.geom_friction[gid, 0]), 6))
        start = scene.object_pose("ball").pos
        _step_with_arm_held(scene, 2000)
        assert np.linalg.norm(np.subtract(scene.object_pose("ball").pos, start)) < 0.005
    assert len(frictions) == 4


def test_bounded_soccer_expert_bends_its_push_back_inward_near_a_line():
    env = make_twin_env("bounded_soccer")
    twin = load_twin_config("bounded_soccer")
    expert = TaskExpert(env.config, env.spec_, twin.expert)
    assert isinstance(expert.wall, BoundaryHazard)
    obs, _ = env.reset(seed=0)
    o = np.array(obs, dtype=np.float64)
    region = env.config.failure.regions[0][1]
    o[3:5] = [region.max[0] - 0.01, 0.0]      # 1 cm from the +x line
    u = expert.push_direction(o[3:5], o[5:7] + np.array([0.1, 0.0]), o)  # a target that would push it out
    assert u[0] < 0.05


def _soccer_save() -> tuple:
    import dataclasses

    env = make_twin_env("bounded_soccer")
    twin = load_twin_config("bounded_soccer")
    rec = RecoveryController(env.config, env.spec_, twin.expert, dataclasses.replace(twin.recovery, style="save"))
    obs, _ = env.reset(seed=0)
    return env, twin, rec, np.array(obs, dtype=np.float64)


def test_the_save_recovery_goes_over_the_ball_to_its_boundary_side_then_pushes_it_back_in():
    env, twin, rec, o = _soccer_save()
    x_min = load_task_config("bounded_soccer").failure.regions[0][1].min[0]
    o[3:5] = [x_min + 0.02, -0.05]                 # 2 cm inside the x-min line, at rest
    o[7:9] = 0.0
    assert not rec.is_safe(o)
    o[:3] = [x_min + 0.08, -0.05, twin.expert.push_height]  # low, on the inside: the straight way is through it
    up = rec(o)
    assert up[2] > 0.0 and abs(up[0]) < 1e-6 and abs(up[1]) < 1e-6
    behind = x_min + 0.02 - (rec._saver.radius + twin.recovery.retreat_distance)
    o[:3] = [behind, -0.05, twin.expert.push_height]  # on the line's side of the ball
    push = rec(o)
    assert push[0] > 0.0 and abs(push[1]) < 1e-6    # inward, along the line's normal


def test_the_save_recovery_aims_where_the_ball_will_be_and_is_done_only_when_it_stops_heading_out():
    env, twin, rec, o = _soccer_save()
    o[3:5] = [0.57, 0.0]                           # the middle of the field
    o[7:9] = 0.0
    assert rec.is_safe(o)
    o[7:9] = [-0.3, 0.0]                           # rolling toward the x-min line fast
    assert not rec.is_safe(o)


def test_the_save_recovery_is_refused_for_a_task_without_a_boundary():
    import dataclasses

    env = make_twin_env("fragile_push_wall")
    twin = load_twin_config("fragile_push_wall")
    with pytest.raises(ValueError, match="for an object inside a boundary"):
        RecoveryController(env.config, env.spec_, twin.expert, dataclasses.replace(twin.recovery, style="save"))

"""Unit tests of the simulated scene (farl_control.sim.scene): MuJoCo only, no ROS."""
from __future__ import annotations

import threading

import mujoco
import numpy as np
import pytest

from farl_common import interface as api
from farl_control.sim.scene import SimScene
from farl_common.task_config import load_task_config

pytestmark = pytest.mark.sim  # franky-sim's MuJoCo scene


@pytest.fixture(scope="module")
def config():
    return load_task_config("fragile_push_wall")


@pytest.fixture
def scene(config) -> SimScene:
    s = SimScene(config)
    s.start()
    return s


def place(scene: SimScene, name: str, xyz) -> None:
    qa, da = scene._free_addrs[name]
    scene.data.qpos[qa:qa + 3] = xyz
    scene.data.qpos[qa + 3:qa + 7] = (1, 0, 0, 0)
    scene.data.qvel[da:da + 6] = 0
    mujoco.mj_forward(scene.model, scene.data)


def test_objects_are_in_the_scene_with_their_properties(scene, config):
    m = scene.model
    for obj in config.scene.objects:
        pose = scene.object_pose(obj.name)
        assert pose.pos == pytest.approx(obj.pos, abs=1e-3)  # start() steps 100 times: the block settles
    block = config.scene.object("fragile_block")
    gid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "fragile_block_geom")
    assert m.body_mass[m.geom_bodyid[gid]] == pytest.approx(block.mass)
    assert tuple(m.geom_friction[gid]) == pytest.approx(block.friction)
    target = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "target_geom")
    assert m.geom_contype[target] == 0 and m.geom_conaffinity[target] == 0


def test_failure_predicate_safe_start_state(scene):
    for _ in range(50):  # let the block settle on the table
        mujoco.mj_step(scene.model, scene.data)
    snap = scene.snapshot()
    assert not snap.failure
    assert ("fragile_block", "table") in snap.contacts  # resting on the table is a contact, not a failure
    api.SCENE_STATE_PAYLOAD.validate(snap.as_dict())  # what sim_robot publishes, its subscribers can read


def test_failure_predicate_fires_on_block_against_wall(scene, config):
    wall = config.scene.object("wall")
    # Block face touching the wall's -x face (block half size 0.025, wall half x 0.01), slight overlap.
    place(scene, "fragile_block", (wall.pos[0] - wall.size[0] - 0.025 + 0.001, 0.0, 0.026))
    snap = scene.snapshot()
    assert snap.failure
    assert ("fragile_block", "wall") in snap.contacts


def test_block_near_but_not_touching_wall_is_safe(scene, config):
    wall = config.scene.object("wall")
    place(scene, "fragile_block", (wall.pos[0] - wall.size[0] - 0.025 - 0.01, 0.0, 0.026))
    assert not scene.snapshot().failure


def test_success_within_tolerance_of_target(scene, config):
    target = config.scene.object("target")
    tol = config.success.tolerance
    place(scene, "fragile_block", (target.pos[0] + 0.5 * tol, target.pos[1], 0.026))
    assert scene.success()
    place(scene, "fragile_block", (target.pos[0] + 1.5 * tol, target.pos[1], 0.026))
    assert not scene.success()


def test_reset_restores_poses_with_bounded_jitter_and_home_arm(scene, config):
    block = config.scene.object("fragile_block")
    place(scene, "fragile_block", (0.6, 0.1, 0.2))
    qa, da = scene._arm_addrs
    for a in qa:
        scene.data.qpos[a] += 0.1
    scene.reset_now(seed=3)
    pos = scene.object_pose("fragile_block").pos
    jx, jy = config.scene.reset_jitter
    assert abs(pos[0] - block.pos[0]) <= jx + 1e-9 and abs(pos[1] - block.pos[1]) <= jy + 1e-9
    assert pos[2] == pytest.approx(block.pos[2])
    assert np.allclose([scene.data.qpos[a] for a in qa], config.robot.home_joints)
    assert not any(scene.data.qvel)
    # Same seed, same start; another seed, another start.
    scene.reset_now(seed=3)
    assert scene.object_pose("fragile_block").pos == pos
    scene.reset_now(seed=4)
    assert scene.object_pose("fragile_block").pos != pos


@pytest.mark.timeout(60)
def test_served_scene_resets_between_steps_and_measures_real_time(config, robot_ip):
    scene = SimScene(config)
    stop = threading.Event()
    ready = threading.Event()
    thread = threading.Thread(target=scene.serve, args=(robot_ip, stop, ready.set), daemon=True)
    thread.start()
    try:
        assert ready.wait(20), "franky-sim did not start"
        before = scene.latest.resets
        assert scene.request_reset(seed=1, timeout_s=5.0) is None
        assert scene.latest.resets == before + 1
        threading.Event().wait(1.0)
        rtf = scene.latest.real_time_factor
        assert rtf is not None and 0.2 < rtf < 1.5
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    # After shutdown a reset request fails fast instead of hanging.
    assert scene.request_reset(timeout_s=0.2) is not None

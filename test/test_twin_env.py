"""The Fragile Push Wall training twin: dynamics, safety filter, failure predicate, reset, experts."""
from __future__ import annotations

import numpy as np
import pytest

from farl_learner.twin.config import load_twin_config, make_twin_env
from farl_learner.twin.env import FrankaTwinEnv
from farl_learner.twin.experts import RecoveryController, TaskExpert, WallGeometry

pytestmark = pytest.mark.sim  # the training twin steps franky-sim's MuJoCo scene


@pytest.fixture(scope="module")
def env():
    return make_twin_env("fragile_push_wall")


@pytest.fixture(scope="module")
def twin():
    return load_twin_config("fragile_push_wall")


def test_spaces_and_reset_observation(env):
    obs, info = env.reset(seed=0)
    assert obs.shape == (env.spec_.obs_dim,) == (7,)
    assert env.action_space.shape == (3,)
    assert env.substeps * env.physics_dt == pytest.approx(0.1)  # one 10 Hz control tick per env step
    tcp = info["tcp"]
    np.testing.assert_allclose(tcp, [0.57, -0.22, 0.15], atol=0.005)  # home: low, behind the block
    np.testing.assert_allclose(obs[:3], tcp, atol=1e-6)
    assert info["cost"] == 0.0 and not info["failure"]


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_tcp_moves_in_commanded_direction_at_commanded_speed(env, axis):
    env.reset(seed=1)
    action = np.zeros(3)
    action[axis] = 0.8 if axis == 1 else -0.8  # 0.08 m/s toward open space: -x, +y (over the block), down
    start = env.tcp_position()
    for _ in range(10):  # 1 s
        env.step(action)
    moved = env.tcp_position() - start
    expected = 0.8 * env.spec_.action_scale[axis] * np.sign(action[axis])
    assert moved[axis] == pytest.approx(expected, rel=0.1)
    others = [i for i in range(3) if i != axis]
    assert np.all(np.abs(moved[others]) < 0.01)


def test_failure_fires_with_block_against_wall_not_at_start(env):
    _, info = env.reset(seed=2)
    _, _, terminated, _, info = env.step(np.zeros(3))
    assert not info["failure"] and info["cost"] == 0.0 and not terminated
    wall = WallGeometry.from_config(env.config, "wall", "fragile_block")
    x_touch = wall.face + wall.sign * wall.half_object  # block side flush with the wall face
    env.set_object_position("fragile_block", (x_touch + wall.sign * 0.003, 0.0))  # 3 mm short of it
    _, _, terminated, _, info = env.step(np.zeros(3))
    assert not info["failure"] and not terminated
    env.set_object_position("fragile_block", (x_touch - wall.sign * 0.001, 0.0))  # 1 mm into the wall
    _, _, terminated, _, info = env.step(np.zeros(3))
    assert info["failure"] and info["cost"] == 1.0
    assert terminated == env.spec_.terminate_on_failure


def test_workspace_box_is_respected(env):
    env.reset(seed=3)
    lo = np.asarray(env.config.control.workspace_min)
    for _ in range(60):  # 6 s straight down at full speed: would pass the floor of the box
        _, _, _, _, info = env.step(np.array([0.0, 0.0, -1.0]))
    assert info["tcp"][2] >= lo[2] - 0.003
    assert info["tcp"][2] < lo[2] + 0.02  # and it did get close to it


def test_filtered_velocity_matches_the_control_node_filter(env):
    env.reset(seed=4)
    limits = env.config.control
    v, clipped = env.filtered_velocity(np.array([1.0, 1.0, 1.0]))
    assert np.linalg.norm(v) <= limits.max_linear_speed + 1e-9
    np.testing.assert_allclose(v, [0.1, 0.1, 0.1], atol=1e-9)  # 0.173 m/s < 0.2: untouched
    assert not clipped


def test_reset_restores_the_scene(env):
    obs0, _ = env.reset(seed=5)
    blk0 = env.object_position("fragile_block")
    for _ in range(5):
        env.step(np.array([-1.0, 1.0, -1.0]))
    env.set_object_position("fragile_block", (0.6, 0.1))
    obs1, _ = env.reset(seed=5)
    np.testing.assert_allclose(obs1, obs0, atol=1e-6)
    np.testing.assert_allclose(env.object_position("fragile_block"), blk0, atol=1e-9)
    assert env.steps == 0
    jx, jy = env.config.scene.reset_jitter
    start = env.config.scene.object("fragile_block").pos
    assert abs(blk0[0] - start[0]) <= jx + 1e-9 and abs(blk0[1] - start[1]) <= jy + 1e-9


def test_same_seed_same_trajectory_and_state_restore(env):
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (4, 3))
    env.reset(seed=6)
    first = [env.step(a)[0] for a in actions]
    env.reset(seed=6)
    saved = env.get_state()
    second = [env.step(a)[0] for a in actions]
    env.set_state(saved)
    third = [env.step(a)[0] for a in actions]
    np.testing.assert_allclose(first, second, atol=1e-6)
    np.testing.assert_allclose(second, third, atol=1e-6)


def test_a_new_command_takes_over_only_after_the_configured_delay():
    """The served stack's decision-to-arm latency: for command_delay_s into a tick the arm still
    follows the previous tick's twist, so a reversal shows up as a shorter first step."""
    prompt = FrankaTwinEnv("fragile_push_wall", command_delay_s=0.0, physics_dt=0.002)
    late = FrankaTwinEnv("fragile_push_wall", command_delay_s=0.05, physics_dt=0.002)
    moves = {}
    for name, twin_env in (("prompt", prompt), ("late", late)):
        twin_env.reset(seed=3)
        for _ in range(5):
            twin_env.step(np.array([0.0, 0.8, 0.0]))  # along the wall, away from the block's path
        before = twin_env.tcp_position()
        twin_env.step(np.array([0.0, -0.8, 0.0]))  # reverse
        moves[name] = float(twin_env.tcp_position()[1] - before[1])
    speed = 0.8 * prompt.spec_.action_scale[1]
    assert moves["prompt"] == pytest.approx(-speed * 0.1, rel=0.25)
    # Half the tick still forward, half backward: nearly no net motion.
    assert abs(moves["late"]) < 0.25 * abs(moves["prompt"])
    with pytest.raises(ValueError, match="command_delay_s"):
        FrankaTwinEnv("fragile_push_wall", command_delay_s=0.1)


def test_exact_controller_matches_franky_sim_controller():
    exact = FrankaTwinEnv("fragile_push_wall", controller="exact")
    reference = FrankaTwinEnv("fragile_push_wall", controller="franky")
    actions = np.random.default_rng(1).uniform(-1, 1, (3, 3))
    exact.reset(seed=7)
    reference.reset(seed=7)
    for a in actions:
        np.testing.assert_allclose(exact.step(a)[0], reference.step(a)[0], atol=1e-9)
    # Same torques, same finger PD: the whole MuJoCo state is bit-identical.
    assert np.array_equal(exact.data.qpos, reference.data.qpos)
    assert np.array_equal(exact.data.qvel, reference.data.qvel)


def test_servo_controller_tracks_like_franky_sim_within_millimetres(env):
    """The default twin (MuJoCo servos, 2 ms steps) follows franky-sim's own law closely."""
    exact = FrankaTwinEnv("fragile_push_wall", controller="exact", command_delay_s=env.delay_steps * env.physics_dt)
    rng = np.random.default_rng(2)
    actions = rng.uniform(-1, 1, (30, 3))
    actions[:15, 2] = -0.6  # down toward the table first: the block and the floor come into play
    env.reset(seed=8)
    exact.reset(seed=8)
    gaps = []
    for a in actions:
        env.step(a)
        exact.step(a)
        gaps.append(np.linalg.norm(env.tcp_position() - exact.tcp_position()))
    assert np.mean(gaps) < 0.003 and np.max(gaps) < 0.008


def test_expert_succeeds_without_failure(env, twin):
    expert = TaskExpert(env.config, env.spec_, twin.expert)
    obs, _ = env.reset(seed=0)
    for _ in range(env.max_steps):
        obs, reward, terminated, truncated, info = env.step(expert(obs))
        assert not info["failure"]
        if terminated or truncated:
            break
    assert info["success"] and terminated and not truncated  # a success ends the episode, as on the robot
    assert reward > env.spec_.success_bonus - 1.0


def test_recovery_controller_near_failure_and_retreat(env, twin):
    import dataclasses

    rec = RecoveryController(env.config, env.spec_, twin.expert, dataclasses.replace(twin.recovery, style="retreat"))
    obs, _ = env.reset(seed=0)
    assert not rec.near_failure(obs)
    near = obs.copy()
    near[3] = rec.wall.face + rec.wall.sign * (rec.wall.half_object + 0.01)  # 1 cm gap
    assert rec.near_failure(near)
    near[:3] = [near[3] + rec.wall.sign * 0.06, near[4], 0.04]  # TCP low, behind the block
    action = rec(near)
    assert action[0] * rec.wall.sign > 0 and action[2] > 0  # away from the wall and up


def test_back_off_recovery_leaves_the_block_against_the_push_and_stays_low(env, twin):
    rec = RecoveryController(env.config, env.spec_, twin.expert, twin.recovery)
    assert twin.recovery.style == "back_off"
    obs, _ = env.reset(seed=0)
    pushing = obs.copy()
    block = pushing[3:5]
    pushing[:3] = [block[0], block[1] - 0.045, 0.04]  # fingers on the block's rear face, pushing +y
    action = rec(pushing)
    assert action[1] < 0  # back, against the push (+y toward the target)
    assert action[0] * rec.wall.sign > 0  # and a little away from the wall
    assert abs(action[2]) < 0.05  # at pushing height
    assert not rec.is_safe(pushing)
    backed = pushing.copy()
    backed[:2] = rec.back_off_point(pushing)[:2]
    assert rec.is_safe(backed)


class _ScriptedActor:
    """An actor as `twin.actors.rollouts` drives it, from a plain obs -> action function."""

    def __init__(self, fn, source="task"):
        self.fn, self.source = fn, source

    def reset(self):
        pass

    def act(self, obs):
        return self.fn(obs), self.source, 0.0


def test_rollouts_count_like_the_stack_and_keep_states_before_failures(env, twin):
    import dataclasses

    from farl_learner.twin.actors import rollouts
    from farl_learner.twin.experts import lured

    wall = WallGeometry.from_config(env.config, "wall", "fragile_block")
    pusher = TaskExpert(env.config, env.spec_, dataclasses.replace(twin.expert, wall_margin=0.0, lookahead=0.0))
    behind_wall = np.array([wall.face - wall.sign * 0.05, 0.0])  # a "target" beyond the wall face
    result = rollouts(env, _ScriptedActor(lured(pusher, env.spec_, behind_wall)), episodes=2, seed=0,
                      record=True, rewind=(3, 3), max_steps=150)
    s = result.stats
    assert s.episodes == 2 and s.failure_episodes == 2 and s.successes == 0
    assert s.failure_pairs == 2  # the task terminates on failure: one failing pair per episode
    assert [ep.failed for ep in result.episodes] == [True, True] and result.episodes[0].cost[-1] == 1.0
    assert len(result.near_failure_states) == 2
    state, obs = result.near_failure_states[0]
    env.set_state(state)
    np.testing.assert_allclose(env.observation(), obs, atol=1e-6)  # 3 ticks before the failure, restorable
    assert s.shield_triggers == 0 and s.first_trigger_lead == []


def test_rollouts_count_every_recovery_step_as_a_trigger(env):
    from farl_learner.twin.actors import rollouts

    still = _ScriptedActor(lambda obs: np.zeros(3, dtype=np.float32), source="recovery")
    s = rollouts(env, still, episodes=1, seed=0, max_steps=5).stats
    assert s.steps == 5 and s.shield_triggers == 5 and s.summary()["trigger_rate"] == 1.0

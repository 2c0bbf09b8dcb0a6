"""Velocity fields: a dynamic task's observation says where the ball or the obstacle is going.

The two dynamic tasks (Bounded Soccer's rolling ball, Disturbed Push's carried
obstacle) observe an object's velocity as well as its position. Every producer of
observations (the twin, the shield node, the demo converter) differences the same two
control ticks through `TaskSpec.build_observation`, so these tests pin that one rule
and check the twin, the place training data comes from, against MuJoCo.
"""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from farl_common.errors import ConfigError
from farl_common.paths import config_dir
from farl_common.task_config import TaskConfig, load_task_config
from farl_common.task_spec import TaskSpec


def _soccer() -> TaskSpec:
    return TaskSpec.from_config(load_task_config("bounded_soccer"))


def _positions(ball_xy) -> dict[str, np.ndarray]:
    return {"tcp": np.array([0.57, -0.22, 0.15]), "ball": np.array([*ball_xy, 0.03]),
            "goal": np.array([0.57, 0.15, 0.0])}


def test_the_dynamic_tasks_observe_the_moving_object_s_velocity_after_the_positions():
    assert _soccer().layout() == ["tcp.x", "tcp.y", "tcp.z", "ball.x", "ball.y", "goal.x", "goal.y",
                                  "ball.vx", "ball.vy"]
    push = TaskSpec.from_config(load_task_config("disturbed_push"))
    assert push.layout()[-4:] == ["obstacle.x", "obstacle.y", "obstacle.vx", "obstacle.vy"]
    assert push.has_velocity and not TaskSpec.from_config(load_task_config("fragile_push_wall")).has_velocity


def test_a_velocity_is_the_displacement_since_the_previous_tick_over_the_time_between():
    spec = _soccer()
    assert spec.control_period_s == pytest.approx(0.1)
    obs = spec.build_observation(_positions((0.60, 0.02)), _positions((0.59, 0.00)))
    np.testing.assert_allclose(obs[-2:], [0.1, 0.2], atol=1e-6)             # one control period
    obs = spec.build_observation(_positions((0.60, 0.02)), _positions((0.59, 0.00)), dt=0.2)
    np.testing.assert_allclose(obs[-2:], [0.05, 0.1], atol=1e-6)            # a skipped tick: two periods
    np.testing.assert_allclose(obs[:7], spec.build_observation(_positions((0.60, 0.02)))[:7])


def test_a_velocity_divides_by_the_time_between_the_two_pose_samples_not_the_ticks():
    """Ticks 0.1 s apart that find poses sampled 0.133 s apart (30 Hz poses, the newest at each tick)."""
    spec = _soccer()
    sampled, before = {"tcp": 100.100, "ball": 100.133, "goal": 0.0}, {"tcp": 100.0, "ball": 100.0, "goal": 0.0}
    dt = spec.velocity_intervals(sampled, before, fallback=0.1)
    assert dt["ball"] == pytest.approx(0.133) and dt["tcp"] == pytest.approx(0.1)
    assert dt["goal"] == pytest.approx(0.1)                 # unstamped: the ticks' interval
    obs = spec.build_observation(_positions((0.60, 0.02)), _positions((0.59, 0.00)), dt)
    np.testing.assert_allclose(obs[-2:], [0.01 / 0.133, 0.02 / 0.133], rtol=1e-5)


def test_two_poses_stamped_almost_together_cannot_blow_a_velocity_up():
    spec = _soccer()
    dt = spec.velocity_intervals({"ball": 100.001}, {"ball": 100.0}, fallback=0.1)
    assert dt["ball"] == pytest.approx(0.5 * spec.control_period_s)


def test_without_a_previous_tick_a_velocity_reads_zero():
    obs = _soccer().build_observation(_positions((0.60, 0.02)))
    assert obs.shape == (9,) and np.all(obs[-2:] == 0.0)


def test_a_non_positive_time_between_ticks_is_refused():
    with pytest.raises(ValueError, match="dt must be > 0"):
        _soccer().build_observation(_positions((0.6, 0.0)), _positions((0.6, 0.0)), dt=0.0)


def test_an_unknown_quantity_is_one_line_naming_its_key(tmp_path):
    data = yaml.safe_load((config_dir() / "tasks" / "bounded_soccer.yaml").read_text())
    data["observation"]["fields"][3]["quantity"] = "speed"
    bad = tmp_path / "bounded_soccer.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as error:
        TaskConfig.from_file(bad)
    message = str(error.value)
    assert "observation.fields[3].quantity" in message and "speed" in message and "\n" not in message


@pytest.mark.sim
def test_the_twin_observes_the_rolling_ball_s_velocity_and_rewinds_it():
    from farl_learner.twin.config import make_twin_env

    env = make_twin_env("bounded_soccer")
    obs, _ = env.reset(seed=3)
    assert np.all(obs[-2:] == 0.0)                          # at rest after the reset
    qa, da = env.scene._free_addrs["ball"]
    env.data.qvel[da + 1] = 0.12                            # kicked along +y, rolling
    env.data.qvel[da + 3] = -0.12 / 0.03
    before = env.object_position("ball")
    obs, *_ = env.step(np.zeros(3))
    after = env.object_position("ball")
    np.testing.assert_allclose(obs[-2:], (after[:2] - before[:2]) / env.step_dt, atol=1e-5)
    assert obs[-1] > 0.05                                   # it is going somewhere, and the obs says so
    np.testing.assert_allclose(env.observation(), obs, atol=1e-6)
    state = env.get_state()
    ahead = [env.step(np.zeros(3))[0] for _ in range(5)]
    env.set_state(state)
    # The rewound state keeps the velocity (to MuJoCo's one-substep lag of body positions after mj_step).
    np.testing.assert_allclose(env.observation(), obs, atol=3e-3)
    np.testing.assert_allclose([env.step(np.zeros(3))[0] for _ in range(5)], ahead, atol=1e-5)

"""FailureBench envs: failure predicates, info keys, termination, expert, config errors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from farl_common.errors import ConfigError
from farl_learner.envs import (TASK_NAMES, expert_policy, failure_state, load_task_spec, make_env, run_episode,
                               safe_state)
from farl_learner.envs.failurebench import FailureBenchEnv

pytestmark = pytest.mark.sim  # Meta-World (MuJoCo) episodes

# Each test builds a fresh env: compiling a scene takes ~50 ms, stepping ~1 ms.


@pytest.fixture(scope="module", params=TASK_NAMES)
def env(request):
    environment = make_env(request.param, seed=0)
    yield environment
    environment.close()


def test_spaces_and_info_keys(env):
    obs, info = env.reset(seed=3)
    assert obs.shape == (39,) and env.observation_space.contains(obs)
    assert env.action_space.shape == (4,)
    assert info["failure"] is False and info["cost"] == 0.0
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert obs.shape == (39,) and np.isfinite(reward)
    assert info["cost"] in (0.0, 1.0) and isinstance(info["failure"], bool) and isinstance(info["success"], bool)


def test_non_finite_action_is_refused(env):
    env.reset()
    with pytest.raises(ValueError, match="non-finite"):
        env.step(np.array([0.0, np.nan, 0.0, 0.0]))


def test_predicate_fires_on_constructed_failure_and_not_on_safe_state(env):
    failure_state(env)
    assert env.is_failure()
    assert env.constraint_margin() <= 0.0
    safe_state(env)
    assert not env.is_failure()
    assert env.constraint_margin() > 0.0


def test_reset_seed_reproduces_the_task(env):
    a, _ = env.reset(seed=11)
    env.reset()
    b, _ = env.reset(seed=11)
    np.testing.assert_allclose(a, b)


class _AlwaysFailing:
    def is_failure(self, model, data, obs):
        return True

    def margin(self, model, data, obs):
        return -1.0


@pytest.mark.parametrize("terminate", [True, False])
def test_terminate_on_failure_is_honoured(terminate):
    env = make_env("bounded_push", seed=0, terminate_on_failure=terminate, max_episode_steps=5)
    env.reset()
    env.predicate = _AlwaysFailing()
    _, _, terminated, truncated, info = env.step(np.zeros(4))
    assert info["failure"] and info["cost"] == 1.0
    assert terminated is terminate and truncated is False
    if not terminate:
        for _ in range(4):
            _, _, terminated, truncated, _ = env.step(np.zeros(4))
        assert terminated is False and truncated is True  # runs on to the time limit


def test_boundary_failure_through_physics():
    """The predicate sees a real push across the boundary, not just a teleport."""
    env = make_env("bounded_push", seed=0)
    obs, _ = env.reset(seed=0)
    rect = env.spec_.failure.boundary
    env.set_object_xyz(np.array([rect.x_max - 0.005, obs[5], obs[6]]))
    env.mw.data.qvel[9] = 0.5  # object sliding east (its free joint's x velocity)
    failed = False
    for _ in range(10):
        _, _, terminated, _, info = env.step(np.zeros(4))
        failed |= info["failure"]
        if terminated:
            break
    assert failed and terminated


@pytest.mark.parametrize("task", TASK_NAMES)
def test_expert_succeeds_without_failure(task):
    env = make_env(task, seed=0, terminate_on_success=True)
    env.reset(seed=0)
    episode = run_episode(env, expert_policy(env.spec_.expert))
    assert episode.succeeded and not episode.failed


def test_snapshot_restore_replays_exactly():
    env = make_env("bounded_soccer", seed=0)
    obs, _ = env.reset(seed=0)
    policy = expert_policy("soccer")
    for _ in range(20):
        obs, *_ = env.step(policy(obs))
    snap = env.snapshot()

    def replay(o):
        trace = []
        for _ in range(5):
            o, *_ = env.step(policy(o))
            trace.append(o)
        return np.array(trace)

    first = replay(obs)
    np.testing.assert_allclose(env.restore(snap), obs)
    np.testing.assert_allclose(replay(obs), first)
    assert env.steps == snap.steps + 5


def test_unknown_task_is_one_line_config_error():
    with pytest.raises(ConfigError) as info:
        make_env("bounded_juggling")
    assert "unknown FailureBench task" in str(info.value) and "\n" not in str(info.value)


def test_malformed_spec_names_file_and_key(tmp_path):
    src = load_task_spec("bounded_push").config_path.read_text()
    bad = tmp_path / "bounded_push.yaml"
    bad.write_text(src.replace("x: [-0.12, 0.12]", "x: [0.12, -0.12]"))
    with pytest.raises(ConfigError) as info:
        load_task_spec("bounded_push", bad)
    message = str(info.value)
    assert str(bad) in message and "failure.boundary" in message and "\n" not in message


def test_vase_and_wall_are_in_the_scene():
    obstructed = make_env("obstructed_push", seed=0)
    assert obstructed.model.body("vase").id > 0
    wall = load_task_spec("fragile_push_wall")
    env = FailureBenchEnv(wall, seed=0)
    geom = env.model.geom_bodyid.tolist().index(env.model.body("wall").id)
    half = env.model.geom_size[geom][0]
    center = env.data.xpos[env.model.body("wall").id][0]
    assert center - half == pytest.approx(wall.scene.wall.x_min)
    unchanged = FailureBenchEnv(dataclasses.replace(wall, scene=dataclasses.replace(wall.scene, wall=None)), seed=0)
    assert unchanged.model.geom_size[geom][0] < half


def test_normalized_return_scale():
    from farl_learner.envs import load_normalization, normalized_return

    table = load_normalization()
    assert set(table) == set(TASK_NAMES)
    for task, (random_return, expert_return) in table.items():
        assert expert_return > random_return
        assert normalized_return(task, random_return) == pytest.approx(0.0)
        assert normalized_return(task, expert_return) == pytest.approx(100.0)


def test_malformed_normalization_file_is_one_line(tmp_path):
    from farl_common.errors import FarlInputError
    from farl_learner.envs import load_normalization

    bad = tmp_path / "normalization.json"
    bad.write_text('{"tasks": {"bounded_push": {"random": {}}}}')
    with pytest.raises(FarlInputError) as info:
        load_normalization(str(bad))
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


def test_gymnasium_env_checker_passes():
    import warnings

    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Meta-World's constant padding dims have low == high
        check_env(make_env("obstructed_push", seed=0), skip_render_check=True)

"""Twin offline data: kinds, counts, format, failure labels and the parameter-hash cache (tiny sizes)."""
from __future__ import annotations

import numpy as np
import pytest

from farl_learner.data.format import KIND_FAILURE, KIND_RECOVERY, KIND_TASK, load_dataset
from farl_learner.twin.config import load_twin_config, make_twin_env
from farl_learner.twin.data import build_twin_datasets, collect_failure_data, dataset_key
from farl_learner.twin.experts import random_policy

pytestmark = pytest.mark.sim  # the training twin steps franky-sim's MuJoCo scene


@pytest.fixture(scope="module")
def env():
    return make_twin_env("fragile_push_wall")


def test_build_twin_datasets_kinds_counts_and_cache(tmp_path, env):
    sizes = dict(task_episodes=1, recovery_episodes=2, failure_transitions=30)
    built = build_twin_datasets("fragile_push_wall", tmp_path, seed=0, progress=False,
                                env_factory=lambda: env, **sizes)
    assert built.task.n_episodes == 1 and set(built.task.kind) == {KIND_TASK}
    # A demo ends at a success (done) or at the time limit (timeout), never earlier.
    assert built.task.done[-1] != built.task.timeout[-1]
    assert built.task.done[-1] or len(built.task) == env.max_steps
    assert not built.task.cost.any()  # task demos never contain a failure
    assert built.recovery.n_episodes == 2 and set(built.recovery.kind) == {KIND_RECOVERY}
    assert not built.recovery.cost.any()
    for e in np.unique(built.recovery.episode_id):  # each recovery demo ends cut (safe point or cap), not failed
        last = np.flatnonzero(built.recovery.episode_id == e)[-1]
        assert built.recovery.timeout[last] and not built.recovery.done[last]
    assert len(built.failure) == 30 and set(built.failure.kind) == {KIND_FAILURE}
    for ds in (built.task, built.recovery, built.failure):
        assert ds.obs.shape[1] == env.spec_.obs_dim and ds.action.shape[1] == env.spec_.action_dim
        assert np.all(np.abs(ds.action) <= 1.0)
    # On disk, in the shared format, and served from the cache the second time.
    for name, path in built.paths.items():
        assert load_dataset(path, expect_task="fragile_push_wall").n_episodes >= 1, name
    again = build_twin_datasets("fragile_push_wall", tmp_path, seed=0, progress=False,
                                env_factory=lambda: env, **sizes)
    assert again.seconds == {"task": 0.0, "recovery": 0.0, "failure": 0.0}
    np.testing.assert_array_equal(again.recovery.obs, built.recovery.obs)
    # Any parameter change is another cache folder.
    twin = load_twin_config("fragile_push_wall")
    key = dataset_key(env, twin, 0, sizes, "task_expert_without_wall_avoidance")
    assert built.paths["task"].parent.name.endswith(key)
    assert dataset_key(env, twin, 1, sizes, "task_expert_without_wall_avoidance") != key
    assert dataset_key(env, twin, 0, {**sizes, "failure_transitions": 31}, "task_expert_without_wall_avoidance") != key
    assert dataset_key(env, twin, 0, sizes, "my_policy") != key


def test_failure_data_labels_the_failure_step(env):
    # Whatever the policy, cost marks failures and (terminate_on_failure) done marks exactly them.
    ds = collect_failure_data(env, random_policy(np.random.default_rng(0)), 15, seed=0, noise_std=0.0,
                              random_action_prob=0.0, progress=False)
    assert len(ds) == 15 and ds.timeout[-1]
    assert set(np.unique(ds.cost)) <= {0.0, 1.0}
    assert np.all(ds.done == (ds.cost > 0))  # terminate_on_failure: done exactly at failures

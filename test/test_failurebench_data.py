"""Demo generation at tiny sizes: right kinds and counts, recoveries that really recover, caching."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from farl_learner.data import (KIND_FAILURE, KIND_RECOVERY, KIND_TASK, build_offline_datasets, generate_failure_data,
                               generate_recovery_demos, generate_task_demos, load_data_config, load_dataset)
from farl_learner.data import build as build_module
from farl_learner.envs import TASK_NAMES, expert_policy, load_task_spec

pytestmark = pytest.mark.sim  # Meta-World (MuJoCo) episodes


def test_data_configs_match_the_paper():
    for task in TASK_NAMES:
        cfg = load_data_config(task)
        assert cfg.task_demos == 20 and cfg.recovery_demos == 120
        assert cfg.failure_data.n_transitions >= 20000


def test_task_demos_kinds_and_counts():
    ds = generate_task_demos("bounded_push", n_demos=2, seed=0, progress=False)
    assert ds.n_episodes == 2 and set(ds.kind.tolist()) == {KIND_TASK}
    assert not ds.cost.any()  # failing episodes are not kept as task demos
    assert ds.obs.shape == (len(ds), 39) and ds.action.shape == (len(ds), 4)
    assert np.abs(ds.action).max() <= 1.0
    # every episode ends exactly once, by a terminal or a time-out transition
    for ep in np.unique(ds.episode_id):
        rows = np.flatnonzero(ds.episode_id == ep)
        ends = ds.done[rows] | ds.timeout[rows]
        assert ends[-1] and not ends[:-1].any()
        np.testing.assert_allclose(ds.next_obs[rows[:-1]], ds.obs[rows[1:]])
    assert ds.meta["generator"] == "task_demos" and ds.meta["attempts"] >= 2


@pytest.mark.parametrize("task", TASK_NAMES)
def test_recovery_demos_start_near_failure_and_stay_safe(task):
    ds = generate_recovery_demos(task, n_demos=2, seed=0, progress=False)
    horizon = load_data_config(task).recovery.horizon
    assert ds.n_episodes == 2 and set(ds.kind.tolist()) == {KIND_RECOVERY}
    assert not ds.cost.any() and not ds.done.any()
    for ep in np.unique(ds.episode_id):
        rows = np.flatnonzero(ds.episode_id == ep)
        assert len(rows) <= horizon and ds.timeout[rows[-1]]
    assert 0.0 < ds.meta["acceptance_rate"] <= 1.0


def test_failure_data_exact_count_and_failures():
    expert = expert_policy(load_task_spec("bounded_soccer").expert)
    ds = generate_failure_data("bounded_soccer", expert, n_transitions=600, noise_scale=0.6, seed=1,
                               noise_correlation=0.9, progress=False)
    assert len(ds) == 600 and set(ds.kind.tolist()) == {KIND_FAILURE}
    assert ds.timeout[-1] or ds.done[-1]
    # a failure ends its episode: cost == 1 exactly on terminal transitions
    np.testing.assert_array_equal(ds.cost > 0, ds.done & (ds.cost > 0))
    assert ds.meta["failure_episodes"] == int(ds.cost.sum()) >= 1
    assert ds.meta["noise_scale"] == 0.6


def test_failure_data_from_near_failure_starts_contains_failures():
    ds = generate_failure_data("fragile_push_wall", expert_policy("push_wall"), n_transitions=300, seed=0,
                               near_failure_start_prob=1.0, progress=False)
    assert len(ds) == 300 and ds.meta["near_failure_starts"] >= 1
    assert ds.cost.sum() >= 1


def test_build_offline_datasets_caches(tmp_path, monkeypatch):
    first = build_offline_datasets("obstructed_push", tmp_path, seed=0, n_task_demos=1, n_recovery_demos=1,
                                   progress=False)
    assert first.task_path.is_file() and first.recovery_path.is_file()
    assert load_dataset(first.task_path, expect_task="obstructed_push").n_episodes == 1

    def must_not_run(*args, **kwargs):
        raise AssertionError("cache miss")

    monkeypatch.setattr(build_module, "generate_task_demos", must_not_run)
    monkeypatch.setattr(build_module, "generate_recovery_demos", must_not_run)
    again = build_offline_datasets("obstructed_push", tmp_path, seed=0, n_task_demos=1, n_recovery_demos=1)
    assert again.task_path == first.task_path
    np.testing.assert_array_equal(again.recovery.obs, first.recovery.obs)
    # another seed is another cache entry
    assert build_module.params_hash("obstructed_push", "task", 1, 1) != first.task_path.stem.rsplit("_", 1)[1]


def test_recovery_demos_start_partly_where_the_given_task_policy_fails():
    """own_policy_fraction of the demos start from the start policy's own failures (here a policy that shoves
    the block into the wall), the rest from the lure; every demo still recovers."""
    from farl_learner.data.config import RecoveryConfig
    from farl_learner.data.recovery import shove_policy

    cfg = load_data_config("fragile_push_wall")
    assert cfg.near_failure.own_policy_fraction == 0.75
    shove = shove_policy(RecoveryConfig("retreat", 30, 10.0, 0.08, 0.005))
    ds = generate_recovery_demos("fragile_push_wall", n_demos=4, seed=0, progress=False, start_policy=shove)
    assert ds.n_episodes == 4 and ds.meta["from_task_policy_failures"] == 3
    assert not ds.cost.any()
    without = generate_recovery_demos("fragile_push_wall", n_demos=1, seed=0, progress=False)
    assert without.meta["from_task_policy_failures"] == 0


def must_not_run(*_args, **_kwargs):
    raise AssertionError("generated although cached or not needed")


def test_failurebench_pretraining_leaves_policy_dependent_recovery_demos_until_the_policy_exists(tmp_path,
                                                                                                  monkeypatch):
    """With own_policy_fraction > 0 the cached (policy-free) demo set gives pretraining only its task demos."""
    from farl_learner.training.pretrain import load_demos

    assert load_data_config("obstructed_push").near_failure.own_policy_fraction > 0.0
    built = build_offline_datasets("obstructed_push", tmp_path, seed=0, n_task_demos=1, progress=False,
                                   recovery=False)
    assert built.recovery is None
    monkeypatch.setattr(build_module, "generate_recovery_demos", must_not_run)
    monkeypatch.setattr(build_module, "generate_task_demos", must_not_run)
    cfg = load_data_config("obstructed_push")
    monkeypatch.setattr(build_module, "load_data_config", lambda task: replace(cfg, task_demos=1))
    demos = load_demos("obstructed_push", tmp_path, seed=0, progress=False)
    assert set(demos) == {"task"} and len(demos["task"]) == len(built.task.obs)

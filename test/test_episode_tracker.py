"""Episode rules: reward, cost, success, time limit, and the two failure counts."""
from __future__ import annotations

import numpy as np
import pytest

from farl_common import interface as api
from farl_control.episodes.tracker import EpisodeTracker, transitions_payload
from farl_common.task_config import load_task_config
from farl_common.task_spec import TaskSpec


@pytest.fixture
def spec() -> TaskSpec:
    return TaskSpec.from_config(load_task_config("fragile_push_wall"))


def positions(block=(0.57, -0.12, 0.025), tcp=(0.57, -0.22, 0.15), target=(0.57, 0.10, 0.0)):
    return {"tcp": np.array(tcp), "fragile_block": np.array(block), "target": np.array(target)}


def act(tracker, spec, next_pos, failure=False, source="task"):
    obs = spec.build_observation(positions())
    a = np.zeros(spec.action_dim)
    return tracker.step(obs, a, a, -1.0, source, 0.1, spec.build_observation(next_pos), next_pos, failure)


def test_a_failure_ends_the_episode_and_counts_one_episode_and_one_pair(spec):
    tracker = EpisodeTracker(spec)
    tracker.start()
    assert act(tracker, spec, positions()) is None
    result = act(tracker, spec, positions(), failure=True)
    assert result is not None and result.reason == "failure"
    assert result.transitions[-1].cost == 1.0 and result.transitions[-1].done
    assert tracker.counts.failure_episodes == 1 and tracker.counts.failure_pairs == 1


def test_without_termination_every_failing_step_is_a_failure_pair(spec):
    from dataclasses import replace

    tracker = EpisodeTracker(replace(spec, terminate_on_failure=False, max_steps=5))
    tracker.start()
    results = [act(tracker, tracker.spec, positions(), failure=f) for f in (True, True, False, True, False)]
    assert results[-1].reason == "timeout"
    assert tracker.counts.failure_pairs == 3 and tracker.counts.failure_episodes == 1


def test_success_ends_the_episode_with_the_bonus(spec):
    tracker = EpisodeTracker(spec)
    tracker.start()
    result = act(tracker, spec, positions(block=(0.57, 0.09, 0.025), tcp=(0.57, 0.04, 0.04)))
    assert result.reason == "success"
    assert result.transitions[0].reward > spec.success_bonus - 1.0


def test_the_time_limit_ends_the_episode(spec):
    tracker = EpisodeTracker(spec)
    tracker.start()
    results = [act(tracker, spec, positions()) for _ in range(spec.max_steps)]
    assert all(r is None for r in results[:-1]) and results[-1].reason == "timeout"
    assert len(results[-1].transitions) == spec.max_steps


def test_reward_grows_as_the_block_nears_the_target(spec):
    far = spec.reward(positions(block=(0.57, -0.12, 0.025)), False)
    near = spec.reward(positions(block=(0.57, 0.05, 0.025)), False)
    assert near > far


def test_a_failure_costs_more_than_the_steps_it_cuts_short(spec):
    """Failing ends the episode early; the penalty keeps that from raising the return."""
    pos = positions()
    assert spec.reward(pos, False, failure=True) == pytest.approx(spec.reward(pos, False) - spec.failure_penalty)
    # Half-way along the push, half-way through the episode: failing there must cost more
    # than standing still at that spot until the time limit.
    mid_push = positions(block=(0.58, -0.01, 0.025), tcp=(0.58, -0.07, 0.04))
    idling = (spec.max_steps // 2) * spec.reward(mid_push, False)
    assert spec.reward(mid_push, False, failure=True) < idling


def test_next_obs_is_what_the_actor_saw_next_not_rebuilt(spec):
    """s' of a transition is the observation handed in (the next decision's), verbatim."""
    tracker = EpisodeTracker(spec)
    tracker.start()
    a = np.zeros(spec.action_dim)
    seen_next = np.arange(spec.obs_dim, dtype=np.float32)
    tracker.step(spec.build_observation(positions()), a, a, -1.0, "task", 0.1, seen_next, positions(), False)
    assert tracker.transitions[0].next_obs == [float(v) for v in seen_next]


def test_recovery_steps_count_as_shield_triggers_and_payload_has_one_row_per_step(spec):
    tracker = EpisodeTracker(spec)
    tracker.start()
    act(tracker, spec, positions(), source="recovery")
    result = act(tracker, spec, positions(), failure=True)
    payload = transitions_payload(result, spec.task)
    assert tracker.counts.shield_triggers == 1
    assert len(payload["obs"]) == len(payload["reward"]) == 2
    assert payload["source"] == ["recovery", "task"] and payload["done"] == [False, True]
    api.TRANSITIONS_PAYLOAD.validate(payload)  # what the monitor publishes, the learner can read


def test_an_intervention_step_stores_the_operators_executed_action_and_is_flagged(spec):
    tracker = EpisodeTracker(spec)
    tracker.start()
    obs = spec.build_observation(positions())
    proposed = np.array([1.0, 0.0, 0.0])
    operator = spec.velocity_to_action(np.array([0.0, -0.05, 0.0]))
    tracker.step(obs, proposed, proposed, -1.0, "task", 0.1, obs, positions(), False)
    result = tracker.step(obs, operator, proposed, -1.0, "task", 0.1, obs, positions(), True, intervention=True)
    payload = transitions_payload(result, spec.task)
    assert payload["intervention"] == [False, True]
    assert payload["action"][1] == [float(v) for v in operator]  # executed, not the shield's proposal
    assert payload["action_task"][1] == [1.0, 0.0, 0.0]
    api.TRANSITIONS_PAYLOAD.validate(payload)
    del payload["intervention"]
    api.TRANSITIONS_PAYLOAD.validate(payload)  # senders from before the flag stay readable

"""The interface module (farl_common.interface): names, QoS contract and payload schemas. No ROS graph."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from farl_common import interface as api
from farl_common.interface import PayloadError, PayloadReader, SequenceGaps

DECISION = {"tick": 7, "episode": 2, "risk": 0.41, "epsilon": 0.3, "source": "recovery", "latency_ms": 1.2,
            "policy_version": 3, "obs": [0.5, 0.0, 0.2], "action": [-0.5, 0.0, 0.0], "action_task": [0.5, 0.0, 0.0],
            "log_prob": -1.5, "swap_error": "", "positions": {"tcp": [0.5, 0.0, 0.2], "fragile_block": [0.6, 0.1, 0.03]}}
TRANSITIONS = {"task": "fragile_push_wall", "episode": 1, "reason": "timeout", "policy_version": 0,
               "episode_return": -2.0, "obs": [[0.0, 1.0], [0.5, 1.0]], "action": [[1.0], [0.0]],
               "action_task": [[1.0], [0.0]], "log_prob": [-0.1, -0.2], "source": ["task", "recovery"],
               "risk": [0.1, 0.9], "reward": [-1.0, -1.0], "cost": [0.0, 1.0],
               "next_obs": [[0.5, 1.0], [0.6, 1.0]], "done": [False, True]}
EXAMPLES = {
    api.DECISION_PAYLOAD: DECISION,
    api.EVENT_PAYLOAD: {"type": "failure", "episode": 3, "counts": {"episodes": 3}, "time": 1.0e9, "steps": 12,
                        "return": -4.5, "failure_pairs": 1, "shield_triggers": 4, "interventions": 0,
                        "policy_version": 1, "decisions_dropped": 0},
    api.TRANSITIONS_PAYLOAD: TRANSITIONS,
    api.POLICY_PAYLOAD: {"path": "/runs/x/learner/policies/v0001", "version": 1, "sha256": "ab" * 32},
    api.LEARNER_STATUS_PAYLOAD: {"version": 1, "updates": 1, "episodes": 4, "steps": 400, "pending_episodes": 0,
                                 "busy": False, "last_update": {"approx_kl": 0.01}},
    api.SCENE_STATE_PAYLOAD: {"sim_time": 1.5, "failure": False, "success": False, "contacts": [["a", "b"]],
                              "real_time_factor": None, "resets": 0},
    api.OPERATOR_PAYLOAD: {"action": "stop", "episode": 2, "kind": "recovery", "operator": "ana",
                           "device": "keyboard", "time": 1.0e9, "elapsed": 12.5, "outcome": "success"},
}


def test_every_payload_has_a_schema_with_an_example_here():
    assert set(EXAMPLES) == set(api.SCHEMAS)
    assert all(s.version >= 1 for s in api.SCHEMAS)


@pytest.mark.parametrize("schema", api.SCHEMAS, ids=lambda s: s.name)
def test_json_round_trip_keeps_every_field_and_adds_the_version(schema):
    decoded = schema.from_json(schema.to_json(EXAMPLES[schema]))
    assert decoded.pop(api.VERSION_KEY) == schema.version
    assert decoded == EXAMPLES[schema]


def test_the_decision_travels_as_diagnostic_key_values_and_comes_back_typed():
    pairs = api.DECISION_PAYLOAD.to_pairs(DECISION)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in pairs)
    assert dict(pairs)["source"] == "recovery" and dict(pairs)[api.VERSION_KEY] == "1"
    decoded = api.DECISION_PAYLOAD.from_pairs(pairs)
    assert decoded["obs"] == [0.5, 0.0, 0.2] and decoded["tick"] == 7 and decoded["risk"] == 0.41


@pytest.mark.parametrize("change, problem", [
    ({"tick": "7"}, "tick: expected int"),
    ({"source": "teleop"}, "'teleop' is not one of task, recovery"),
    ({"obs": [0.1, float("nan")]}, "obs: expected floats"),
    ({"extra": 1}, "unknown field(s) extra"),
    ({api.VERSION_KEY: 2}, "schema_version 2, this code reads 1"),
    ({"swap_error": None}, "swap_error: must not be null"),
    ({"positions": {"tcp": [0.5, "x", 0.2]}}, "positions: expected vectors"),
])
def test_a_bad_decision_is_one_line_naming_schema_and_field(change, problem):
    with pytest.raises(PayloadError) as error:
        api.DECISION_PAYLOAD.validate({**DECISION, **change})
    assert problem in str(error.value) and str(error.value).startswith("shield decision: ")
    assert "\n" not in str(error.value)


def test_a_missing_field_is_refused():
    payload = dict(DECISION)
    del payload["episode"]
    with pytest.raises(PayloadError, match="missing field episode"):
        api.DECISION_PAYLOAD.validate(payload)


def test_episode_columns_must_all_have_one_entry_per_step():
    with pytest.raises(PayloadError, match="reward has 1 steps, obs has 2"):
        api.TRANSITIONS_PAYLOAD.validate({**TRANSITIONS, "reward": [-1.0]})
    with pytest.raises(PayloadError, match=r"source\[1\]: 'human' is not one of"):
        api.TRANSITIONS_PAYLOAD.validate({**TRANSITIONS, "source": ["task", "human"]})


def test_the_publisher_side_refuses_to_send_what_no_subscriber_could_read():
    with pytest.raises(PayloadError):
        api.POLICY_PAYLOAD.to_json({"path": "/x", "version": "1", "sha256": "00"})


def test_a_reader_counts_and_reports_rejections_and_never_raises():
    lines: list[str] = []
    reader = PayloadReader(api.EVENT_PAYLOAD, lines.append)
    good = api.EVENT_PAYLOAD.to_json(EXAMPLES[api.EVENT_PAYLOAD])
    for text in ("not json {", json.dumps([1, 2]), json.dumps({"type": "start"}), good, "",
                 json.dumps({**EXAMPLES[api.EVENT_PAYLOAD], "type": "explosion"})):
        reader.json(text)
    assert (reader.accepted, reader.rejected) == (1, 5)
    assert len(lines) == 5 and all(line.startswith("rejected payload #") for line in lines)
    assert "explosion" in reader.last_error
    assert reader.pairs([("tick", "x")]) is None and reader.rejected == 6


def test_sequence_gaps_count_losses_and_a_restarted_publisher_is_not_one():
    gaps = SequenceGaps()
    assert [gaps.note(s) for s in (1, 2, 3, 6, 7)] == [0, 0, 0, 2, 0]
    assert gaps.note(1) == 0  # the shield restarted: ticks start again
    assert gaps.note(3) == 1 and gaps.dropped == 3


def test_names_are_unique_and_under_farl():
    names = [t.name for t in api.TOPICS] + [s.name for s in api.SERVICES]
    assert len(names) == len(set(names))
    assert all(n.startswith(api.NAMESPACE + "/") for n in names)
    assert api.object_topic("fragile_block").name == "/farl/objects/fragile_block"


def test_qos_contract_of_the_learning_topics():
    # Decisions feed the monitor and the learner: reliable, and a queue deep enough for seconds of
    # 50 Hz ticks behind a busy subscriber.
    assert api.SHIELD_DECISION.qos.reliable and api.SHIELD_DECISION.qos.depth >= 500
    assert api.EPISODE_EVENTS.qos.reliable and api.EPISODE_EVENTS.qos.latched
    assert api.LEARNER_TRANSITIONS.qos.reliable and not api.LEARNER_TRANSITIONS.qos.latched
    assert api.LEARNER_POLICY.qos.latched and api.LEARNER_POLICY.qos.depth == 1
    assert not api.NEWEST.reliable  # best effort on the subscriber side matches a reliable publisher


@pytest.mark.ros
def test_message_types_and_qos_profiles_resolve_in_ros():
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    for topic in api.TOPICS:
        assert topic.msg_class().__name__ == topic.type.rsplit("/", 1)[1]
    for service in api.SERVICES:
        assert service.srv_class().__name__ == "Trigger"
    profile = api.EPISODE_EVENTS.qos.profile()
    assert profile.durability == DurabilityPolicy.TRANSIENT_LOCAL and profile.depth == 100
    assert api.NEWEST.profile().reliability == ReliabilityPolicy.BEST_EFFORT


def test_the_interface_imports_without_rclpy():
    code = ("import sys; import farl_common.interface, farl_common.task_spec, farl_common.config; "
            "print(sorted(m for m in ('rclpy', 'torch', 'mujoco') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

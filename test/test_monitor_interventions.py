"""The episode monitor during an intervention: the executed action is the operator's, and the step is flagged.

The episode monitor runs as a process; this test plays the rest of the stack
without a simulator: the reset service, the poses, the shield's decisions (always
proposing +x) and, for a stretch of ticks, an operator's teleop twist (-y). The
learner's transitions must carry the operator's twist (as an action) on the
intervention steps, flagged, and the shield's action elsewhere; an operator's
failure mark ends the episode as a failure the predicates did not see.
"""
from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, TwistStamped
from std_msgs.msg import String
from std_srvs.srv import Trigger

from conftest import ProcessPool
from farl_common import interface as api
from farl_common.task_config import load_task_config
from farl_common.task_spec import TaskSpec
from farl_control.ros.client import RobotClient
from farl_control.ros.endpoints import publisher, service, subscription

pytestmark = [pytest.mark.ros]

TASK = "fragile_push_wall"
POSITIONS = {"tcp": [0.57, -0.22, 0.10], "fragile_block": [0.57, -0.12, 0.025], "target": [0.57, 0.10, 0.0],
             "wall": [0.64, 0.0, 0.03]}


def pose(xyz) -> PoseStamped:
    msg = PoseStamped()
    msg.header.frame_id = api.BASE_FRAME
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = xyz
    msg.pose.orientation.w = 1.0
    return msg


@pytest.mark.timeout(120)
def test_operator_steps_carry_the_operators_action_flagged_and_a_failure_mark_ends_the_episode(tmp_path):
    spec = TaskSpec.from_config(load_task_config(TASK))
    pool = ProcessPool(tmp_path / "logs")
    probe = RobotClient("monitor_intervention_probe")
    node = probe.node
    lock = threading.Lock()
    events: list[dict] = []
    transitions: list[dict] = []
    service(node, api.ROBOT_RESET, lambda request, response: setattr(response, "success", True) or response)
    subscription(node, api.EPISODE_EVENTS, lambda m: events.append(api.EVENT_PAYLOAD.from_json(m.data)))
    subscription(node, api.LEARNER_TRANSITIONS,
                 lambda m: transitions.append(api.TRANSITIONS_PAYLOAD.from_json(m.data)))
    pose_pubs = {"tcp": publisher(node, api.EE_POSE),
                 **{n: publisher(node, api.object_topic(n)) for n in ("fragile_block", "target", "wall")}}
    decisions = publisher(node, api.SHIELD_DECISION)
    teleop = publisher(node, api.TELEOP_COMMAND)
    operator = publisher(node, api.TELEOP_OPERATOR)
    stop = threading.Event()

    def poses() -> None:
        while not stop.is_set():
            for name, pub in pose_pubs.items():
                pub.publish(pose(POSITIONS[name]))
            time.sleep(0.05)

    threading.Thread(target=poses, daemon=True).start()
    monitor = pool.start("monitor", [sys.executable, "-m", "farl_control.episodes.episode_monitor_node", "--ros-args",
                                     "-p", f"task_config:={TASK}", "-p", "max_episodes:=1"])
    try:
        assert probe.wait_for(lambda: any(e["type"] == "start" for e in events), 60.0), monitor.log_text()[-3000:]
        while not all(pub.get_subscription_count() for pub in (decisions, teleop, operator)):
            time.sleep(0.1)
        time.sleep(0.5)  # discovery is two-sided: give the monitor's side of the match time to settle too
        obs = spec.build_observation({k: np.array(v) for k, v in POSITIONS.items()}).tolist()
        proposed = [1.0, 0.0, 0.0]
        # Ticks 16-39 are the shield's again; the operator's failure mark comes at tick 40. A loaded machine
        # delivers the queued teleop twists late and stretches the operator's span (17 ticks seen in CI), so
        # the run-out after it is long enough for the shield steps the last check reads.
        for tick in range(1, 50):
            payload = {"tick": tick, "episode": 1, "risk": 0.0, "epsilon": 1.0, "source": "task",
                       "latency_ms": 0.1, "policy_version": 0, "obs": obs, "action": proposed,
                       "action_task": proposed, "log_prob": -1.0, "swap_error": "", "positions": POSITIONS}
            msg = DiagnosticStatus(name="farl/shield", values=[KeyValue(key=k, value=v)
                                                                for k, v in api.DECISION_PAYLOAD.to_pairs(payload)])
            decisions.publish(msg)
            if 10 <= tick < 16:  # the operator takes over for 6 ticks (the teleop twist streams at ~30 Hz)
                for _ in range(3):
                    twist = TwistStamped()
                    twist.header.frame_id = api.BASE_FRAME
                    twist.twist.linear.y = -0.05
                    teleop.publish(twist)
                    time.sleep(0.033)
            else:
                time.sleep(0.1)
            if tick == 40:
                operator.publish(String(data=api.OPERATOR_PAYLOAD.to_json({
                    "action": "failure", "episode": 1, "kind": "task", "operator": "ana", "device": "keyboard",
                    "time": time.time(), "elapsed": 3.0})))
                time.sleep(0.2)
        assert probe.wait_for(lambda: transitions, 20.0), monitor.log_text()[-3000:]
    finally:
        stop.set()
        probe.close()
        pool.stop_all()
    [episode] = transitions
    assert episode["reason"] == "failure" and episode["cost"][-1] == 1.0  # the operator's mark ended it
    flags = np.array(episode["intervention"])
    actions = np.array(episode["action"])
    # A decision lost to discovery shortens the run-up, so the test reads the shape, not tick indices:
    # shield steps, then one unbroken stretch of operator steps, then shield steps again.
    taken = np.flatnonzero(flags)
    assert flags.sum() >= 6 and taken[0] >= 1 and np.all(np.diff(taken) == 1) and not flags[-5:].any(), flags
    operator_action = spec.velocity_to_action(np.array([0.0, -0.05, 0.0]))
    np.testing.assert_allclose(actions[flags], np.tile(operator_action, (flags.sum(), 1)), atol=1e-6)
    np.testing.assert_allclose(actions[~flags], np.tile(proposed, ((~flags).sum(), 1)))
    assert all(row == proposed for row in episode["action_task"])  # the shield's proposal is kept beside it
    assert any(e["type"] == "intervention" for e in events)

"""The episode monitor across a reset: the last episode's end must not fail the next one.

The simulator publishes /farl/sim/scene_state at 30 Hz. A message sent just before a
reset still says "failure" (the ball still out of bounds, the block still at the
wall); delivered after the monitor has started the next episode, it used to end
that episode at its first step. The message carries the scene's reset count, and
the monitor ignores failures from a reset older than its episode's. Here the test
plays the simulator and the shield: episode 1 fails in the scene, the reset
counts up, a stale "failure" of the old reset arrives after episode 2 has started,
and episode 2 must run on until the operator ends it.
"""
from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from std_msgs.msg import String

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


def scene(failure: bool, resets: int) -> String:
    return String(data=api.SCENE_STATE_PAYLOAD.to_json({
        "sim_time": 0.0, "failure": failure, "success": False, "contacts": [], "real_time_factor": 1.0,
        "resets": resets}))


@pytest.mark.timeout(120)
def test_a_failure_reported_before_the_reset_does_not_end_the_next_episode(tmp_path):
    spec = TaskSpec.from_config(load_task_config(TASK))
    pool = ProcessPool(tmp_path / "logs")
    probe = RobotClient("monitor_stale_scene_probe")
    node = probe.node
    events: list[dict] = []
    transitions: list[dict] = []
    sim = {"failure": False, "resets": 7}
    lock = threading.Lock()

    def reset(request, response):
        with lock:  # the scene is back at its start: no failure, one reset more
            sim["failure"], sim["resets"] = False, sim["resets"] + 1
        response.success = True
        return response

    service(node, api.ROBOT_RESET, reset)
    subscription(node, api.EPISODE_EVENTS, lambda m: events.append(api.EVENT_PAYLOAD.from_json(m.data)))
    subscription(node, api.LEARNER_TRANSITIONS,
                 lambda m: transitions.append(api.TRANSITIONS_PAYLOAD.from_json(m.data)))
    pose_pubs = {"tcp": publisher(node, api.EE_POSE),
                 **{n: publisher(node, api.object_topic(n)) for n in ("fragile_block", "target", "wall")}}
    scene_pub = publisher(node, api.SCENE_STATE)
    decisions = publisher(node, api.SHIELD_DECISION)
    operator = publisher(node, api.TELEOP_OPERATOR)
    stop = threading.Event()

    def simulator() -> None:
        while not stop.is_set():
            for name, pub in pose_pubs.items():
                pub.publish(pose(POSITIONS[name]))
            with lock:
                scene_pub.publish(scene(sim["failure"], sim["resets"]))
            time.sleep(0.033)

    obs = spec.build_observation({k: np.array(v) for k, v in POSITIONS.items()}).tolist()
    tick = 0

    def decide(episode: int) -> None:
        nonlocal tick
        tick += 1
        payload = {"tick": tick, "episode": episode, "risk": 0.0, "epsilon": 1.0, "source": "task",
                   "latency_ms": 0.1, "policy_version": 0, "obs": obs, "action": [0.0, 0.5, 0.0],
                   "action_task": [0.0, 0.5, 0.0], "log_prob": -1.0, "swap_error": "", "positions": POSITIONS}
        decisions.publish(DiagnosticStatus(name="farl/shield", values=[
            KeyValue(key=k, value=v) for k, v in api.DECISION_PAYLOAD.to_pairs(payload)]))
        time.sleep(0.1)

    starts = lambda: [e for e in events if e["type"] == "start"]  # noqa: E731
    threading.Thread(target=simulator, daemon=True).start()
    monitor = pool.start("monitor", [sys.executable, "-m", "farl_control.episodes.episode_monitor_node", "--ros-args",
                                     "-p", f"task_config:={TASK}", "-p", "max_episodes:=2"])
    try:
        assert probe.wait_for(lambda: starts(), 60.0), monitor.log_text()[-3000:]
        while not all(pub.get_subscription_count() for pub in (decisions, operator, scene_pub)):
            time.sleep(0.1)
        time.sleep(0.5)
        for _ in range(5):
            decide(1)
        with lock:
            sim["failure"] = True  # episode 1 ends in the scene (the block hit the wall)
        old_resets = sim["resets"]
        for _ in range(10):
            decide(1)
            if transitions:
                break
        assert probe.wait_for(lambda: len(starts()) >= 2, 30.0), monitor.log_text()[-3000:]
        for _ in range(3):  # sent before the reset, delivered after the start: the last episode's end
            scene_pub.publish(scene(True, old_resets))
            time.sleep(0.02)
        for step in range(12):
            decide(2)
            if step == 8:
                operator.publish(String(data=api.OPERATOR_PAYLOAD.to_json({
                    "action": "failure", "episode": 2, "kind": "task", "operator": "ana", "device": "keyboard",
                    "time": time.time(), "elapsed": 1.0})))
        assert probe.wait_for(lambda: len(transitions) >= 2, 20.0), monitor.log_text()[-3000:]
    finally:
        stop.set()
        probe.close()
        pool.stop_all()
    first, second = transitions[:2]
    assert first["reason"] == "failure"  # a scene failure of the episode's own reset still counts
    ended = [line for line in monitor.log_text().splitlines() if "episode 2: failure" in line]
    # The operator's mark ended episode 2, not the old reset's failure. (Not a step count: a loaded monitor
    # can still have decisions queued when the operator's mark arrives, which ends the episode sooner.)
    assert ended and "failure from: operator ana" in ended[0], monitor.log_text()[-3000:]
    assert len(second["cost"]) >= 1

"""A learner process and a shield process that share no folder exchange policy versions over ROS 2.

The learner (learner_node) writes under one root, the shield (shield_node)
reads its models and keeps its cache under another; neither is given the
other's. The test plays the episode monitor (episodes on
/farl/learner/transitions): the learner's first update reaches the shield as
bytes and is swapped in from the shield's cache; a corrupted copy of that
transfer is then refused and the shield keeps version 1.
"""
from __future__ import annotations

import base64
import shutil
import threading
import time

import numpy as np
import pytest
from std_msgs.msg import String

from farl_common import interface as api
from farl_control.ros.client import RobotClient
from farl_control.ros.endpoints import publisher, subscription
from model_folders import ACTION_DIM, OBS_DIM, TASK, untrained_folder

pytestmark = pytest.mark.ros

LEARNER_ID = "learner-run-on-the-gpu-pc"  # the learner's run_dir as given (identity, not a shared path)


def episode(rng, number: int, steps: int = 30) -> str:
    obs = rng.normal(0.4, 0.1, (steps + 1, OBS_DIM))
    action = rng.uniform(-1, 1, (steps, ACTION_DIM))
    payload = {"task": TASK, "episode": number, "reason": "timeout", "policy_version": 0, "episode_return": -1.0,
               "obs": obs[:-1].tolist(), "action": action.tolist(), "action_task": action.tolist(),
               "log_prob": [-1.0] * steps, "source": ["task"] * steps, "risk": [0.1] * steps,
               "reward": rng.normal(size=steps).tolist(), "cost": [0.0] * steps, "next_obs": obs[1:].tolist(),
               "done": [False] * (steps - 1) + [True]}
    return api.TRANSITIONS_PAYLOAD.to_json(payload)


def wait_for_log(process, text: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in process.log_text():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.timeout(180)
def test_policies_reach_a_shield_with_no_shared_folder_and_a_corrupt_transfer_is_refused(processes, tmp_path):
    learner_pc, robot_pc = tmp_path / "learner_pc", tmp_path / "robot_pc"
    untrained_folder(learner_pc / "models")
    shutil.copytree(learner_pc / "models", robot_pc / "models")  # deployed once, like the shipped folder
    learner_run = learner_pc / LEARNER_ID  # to the shield only the learner's name: it never reads there
    shield = processes.start("shield", [
        "shield_node", "--ros-args", "-p", f"models_dir:={robot_pc / 'models'}", "-p", f"policy_root:={learner_run}",
        "-p", f"policy_cache:={robot_pc / 'cache'}"])
    learner = processes.start("learner", [
        "learner_node", "--ros-args", "-p", f"models_dir:={learner_pc / 'models'}", "-p", f"run_dir:={learner_run}",
        "-p", "episodes_per_update:=1", "-p", "min_steps_per_update:=8"])
    probe = RobotClient("transfer_probe")
    announcements: list[dict] = []
    lock = threading.Lock()

    def on_policy(msg: String) -> None:
        with lock:
            announcements.append(api.POLICY_PAYLOAD.from_json(msg.data))

    try:
        subscription(probe.node, api.LEARNER_POLICY, on_policy)
        transitions = publisher(probe.node, api.LEARNER_TRANSITIONS)
        policy_pub = publisher(probe.node, api.LEARNER_POLICY)
        assert wait_for_log(shield, "shield ON", 60), shield.log_text()
        assert wait_for_log(learner, "learner for", 60), learner.log_text()
        rng = np.random.default_rng(0)
        number = 0
        deadline = time.monotonic() + 90
        while not announcements and time.monotonic() < deadline:
            number += 1
            transitions.publish(String(data=episode(rng, number)))
            probe.wait_for(lambda: bool(announcements), 2.0)
        assert announcements, "the learner announced no policy:\n" + learner.log_text()[-3000:]
        first = announcements[0]
        assert first["version"] == 1 and first["source"] == str(learner_run)
        assert set(first["files"]) == {"manifest.json", "policy.onnx", "recovery.onnx", "risk.onnx"}

        assert wait_for_log(shield, "now running task policy version 1 from " + str(robot_pc / "cache"), 30), \
            shield.log_text()[-3000:]
        cached = sorted(p.name for p in (robot_pc / "cache").iterdir())
        assert len(cached) == 1 and cached[0].startswith("v0001-")

        data = bytearray(base64.b64decode(first["files"]["policy.onnx"]))
        data[len(data) // 2] ^= 0xFF
        corrupt = {**first, "version": 2, "files": {**first["files"], "policy.onnx": base64.b64encode(data).decode()}}
        policy_pub.publish(String(data=api.POLICY_PAYLOAD.to_json(corrupt)))
        assert wait_for_log(shield, "refused new policy, keeping version 1", 30), shield.log_text()[-3000:]
        assert "sha256 differs from manifest.json" in shield.log_text()
        assert sorted(p.name for p in (robot_pc / "cache").iterdir()) == cached
    finally:
        probe.close()

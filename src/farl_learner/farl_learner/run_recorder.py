"""Records what a run of the stack did, from the ROS graph, as JSON lines.

The main job and the stack benchmark listen to the episode monitor's events,
the shield's per-tick decisions and the learner's policy announcements (and
keep the learner's latest /farl/learner/status, not recorded) and
append each to a .jsonl file in the run folder (flushed per line, so a crash
keeps everything recorded so far). The report is built from these files only.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
DECISION_KEYS = ("tick", "episode", "risk", "epsilon", "source", "latency_ms", "policy_version", "swap_error")


class RunRecorder:
    def __init__(self, run_dir: Path, on_event: Callable[[dict], None] | None = None,
                 on_policy: Callable[[dict], None] | None = None):
        if not rclpy.ok():
            rclpy.init(args=[])  # not sys.argv: launch arguments (key:=value) are not ROS remaps
        self.run_dir = run_dir
        self.on_event = on_event
        self.on_policy = on_policy
        self._files = {name: (run_dir / f"{name}.jsonl").open("a") for name in ("events", "decisions", "policies")}
        self._lock = threading.Lock()
        self.finished = threading.Event()
        self.last_decision: dict = {}
        self.node = Node("farl_run_recorder")
        self.node.create_subscription(String, "/farl/episode/events", self._on_event, RELIABLE)
        self.node.create_subscription(DiagnosticStatus, "/farl/shield/decision", self._on_decision, 100)
        self.node.create_subscription(String, "/farl/learner/policy", self._on_policy, LATCHED)
        self.learner_status: dict = {}
        self.learner_status_time = 0.0  # time.monotonic() of the latest learner status
        self.node.create_subscription(String, "/farl/learner/status", self._on_learner_status, 10)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def _write(self, name: str, row: dict) -> None:
        with self._lock:
            stream = self._files.get(name)
            if stream is not None:
                stream.write(json.dumps(row) + "\n")
                stream.flush()

    def _on_event(self, msg: String) -> None:
        try:
            event = json.loads(msg.data)
        except ValueError:
            return
        self._write("events", event)
        if self.on_event is not None:
            self.on_event(event)
        if event.get("type") == "finished":
            self.finished.set()

    def _on_decision(self, msg: DiagnosticStatus) -> None:
        values = {kv.key: kv.value for kv in msg.values}
        row = {k: values.get(k) for k in DECISION_KEYS}
        row["time"] = time.time()
        self.last_decision = row
        self._write("decisions", row)

    def _on_policy(self, msg: String) -> None:
        try:
            policy = json.loads(msg.data)
        except ValueError:
            return
        policy["time"] = time.time()
        self._write("policies", policy)
        if self.on_policy is not None:
            self.on_policy(policy)

    def _on_learner_status(self, msg: String) -> None:
        try:
            self.learner_status = json.loads(msg.data)
            self.learner_status_time = time.monotonic()
        except ValueError:
            pass

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        with self._lock:
            for stream in self._files.values():
                stream.close()
            self._files.clear()

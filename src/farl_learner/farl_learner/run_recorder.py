"""Records what a run of the stack did, from the ROS graph, as JSON lines.

The main job and the stack benchmark listen to the episode monitor's events,
the shield's per-tick decisions and the learner's policy announcements (and
keep the learner's latest /farl/learner/status, not recorded) and
append each to a .jsonl file in the run folder (flushed per line, so a crash
keeps everything recorded so far). The report is built from these files only.
Payloads are decoded with the interface's schemas; one that does not validate
is counted (`rejected`), and gaps in the decisions' tick are counted as lost
decisions (`decisions_dropped`).
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
from std_msgs.msg import String

from farl_common import interface as api
from farl_common.interface import PayloadReader, SequenceGaps
from farl_control.ros.endpoints import subscription
from farl_control.ros.spin_thread import SpinThread

# What of each decision the report needs (observations and actions go to the learner, not the log).
DECISION_KEYS = ("tick", "episode", "risk", "epsilon", "source", "latency_ms", "policy_version", "swap_error")
# What the shield acted on, kept per tick so a run can be replayed offline (e.g. through the twin's shield).
DECISION_VECTORS = ("obs", "action", "action_task")


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
        self.readers = {schema.name: PayloadReader(schema) for schema in (
            api.EVENT_PAYLOAD, api.DECISION_PAYLOAD, api.POLICY_PAYLOAD, api.LEARNER_STATUS_PAYLOAD)}
        self.decision_gaps = SequenceGaps()
        subscription(self.node, api.EPISODE_EVENTS, self._on_event)
        subscription(self.node, api.SHIELD_DECISION, self._on_decision)
        subscription(self.node, api.LEARNER_POLICY, self._on_policy)
        self.learner_status: dict = {}
        self.learner_status_time = 0.0  # time.monotonic() of the latest learner status
        subscription(self.node, api.LEARNER_STATUS, self._on_learner_status)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._spin = SpinThread(self._executor, name="run-recorder")
        self._spin.start()

    @property
    def decisions_dropped(self) -> int:
        return self.decision_gaps.dropped

    @property
    def rejected(self) -> int:
        """Payloads that did not validate, over all topics."""
        return sum(reader.rejected for reader in self.readers.values())

    def _write(self, name: str, row: dict) -> None:
        with self._lock:
            stream = self._files.get(name)
            if stream is not None:
                stream.write(json.dumps(row) + "\n")
                stream.flush()

    def _on_event(self, msg: String) -> None:
        event = self.readers[api.EVENT_PAYLOAD.name].json(msg.data)
        if event is None:
            return
        self._write("events", event)
        if self.on_event is not None:
            self.on_event(event)
        if event.get("type") == "finished":
            self.finished.set()

    def _on_decision(self, msg: DiagnosticStatus) -> None:
        values = self.readers[api.DECISION_PAYLOAD.name].pairs((kv.key, kv.value) for kv in msg.values)
        if values is None:
            return
        self.decision_gaps.note(values["tick"])
        row = {k: values[k] for k in DECISION_KEYS}
        row.update({k: [round(float(x), 5) for x in values[k]] for k in DECISION_VECTORS})
        row["time"] = time.time()
        self.last_decision = row
        self._write("decisions", row)

    def _on_policy(self, msg: String) -> None:
        policy = self.readers[api.POLICY_PAYLOAD.name].json(msg.data)
        if policy is None:
            return
        policy["time"] = time.time()
        files = policy.pop("files", None) or {}  # the folder's bytes: the learner's folder has them already
        policy["transfer_bytes"] = sum(len(text) for text in files.values())
        self._write("policies", policy)
        if self.on_policy is not None:
            self.on_policy(policy)

    def _on_learner_status(self, msg: String) -> None:
        status = self.readers[api.LEARNER_STATUS_PAYLOAD.name].json(msg.data)
        if status is not None:
            self.learner_status = status
            self.learner_status_time = time.monotonic()

    def close(self) -> None:
        if self._spin.stop():
            self.node.destroy_node()
        with self._lock:
            for stream in self._files.values():
                stream.close()
            self._files.clear()

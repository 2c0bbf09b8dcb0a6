"""recorder node: every demonstration episode into its own MCAP file, as the operator starts and stops it.

It listens to /farl/teleop/operator: `start` opens <out_dir>/<task>_<time>_<nnn>_<kind>.partial.mcap,
`stop` closes it with the outcome and the labels (renamed to .mcap), `discard`
moves it to <out_dir>/discarded/. Between episodes nothing is written.

Recorded (raw CDR as received, no deserialisation on the way: the recorder
costs little next to the 100 Hz state): /farl/robot/ee_pose,
/farl/robot/joint_states, /farl/objects/<tracked objects>, /farl/robot/executed
(what the arm was told), /farl/robot/command (autonomy), /farl/teleop/command,
/farl/teleop/operator (labels, time-aligned), /farl/sim/scene_state (sim ground
truth) and, with record_camera, /farl/camera/image/compressed.

Episode metadata: task, kind, operator, device, episode number, wall-clock
start and end, duration, outcome, labels with their times, the task config's
hash and path, robot (sim/real), control rate, message counts (see
recording.episode_file for how partial episodes are marked).

Parameters
  task_config   (string) task YAML (name or path relative to config/)
  out_dir       (string) folder of the episode files (created)
  simulated     (string|bool) sim / real (metadata)
  record_camera (bool)   also record the compressed camera topic
"""
from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.serialization import serialize_message
from std_msgs.msg import String

from farl_common import interface as api
from farl_common.interface import PayloadReader
from farl_common.task_config import load_task_config
from farl_control.ros.endpoints import subscription
from farl_control.ros.node_main import run_node

from .recording.episode_file import EpisodeFile

PROGRAM = "recorder_node"
RECORD_DEPTH = 1000  # messages queued per topic while the recorder is busy (10 s of 100 Hz state)


def config_hash(raw: dict) -> str:
    """sha256 of the task config as loaded (overrides applied), key order independent."""
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]


def recorded_topics(config, record_camera: bool) -> list[api.Topic]:
    objects = [api.object_topic(o.name) for o in config.scene.objects if o.tracked]
    topics = [api.EE_POSE, api.JOINT_STATES, *objects, api.EXECUTED_COMMAND, api.ROBOT_COMMAND,
              api.TELEOP_COMMAND, api.SCENE_STATE]
    if record_camera:
        topics.append(api.CAMERA_COMPRESSED)
    return topics


class RecorderNode(Node):
    def __init__(self) -> None:
        super().__init__("recorder")
        describe = lambda text: ParameterDescriptor(description=text)  # noqa: E731
        self.declare_parameter("task_config", "tasks/fragile_push_wall.yaml",
                               describe("Task YAML: a task name or a path relative to config/"))
        self.declare_parameter("out_dir", "demos", describe("Folder of the episode files (one MCAP per episode)"))
        self.declare_parameter("simulated", "sim", describe("sim | real (written into the metadata)"))
        self.declare_parameter("record_camera", False, describe("Also record /farl/camera/image/compressed"))
        config = load_task_config(self.get_parameter("task_config").value)
        self.config = config
        self.out_dir = Path(self.get_parameter("out_dir").value).expanduser().resolve()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.robot = "sim" if str(self.get_parameter("simulated").value).lower() in ("sim", "true", "1") else "real"
        self.hash = config_hash(config.raw)
        self._lock = threading.Lock()
        self.file: EpisodeFile | None = None
        self.started_wall = 0.0
        self.labels: list[dict] = []
        self.last_closed: Path | None = None
        self.fatal: str | None = None
        self.operator_reader = PayloadReader(api.OPERATOR_PAYLOAD, self._warn)
        group = ReentrantCallbackGroup()
        self.topics = recorded_topics(config, bool(self.get_parameter("record_camera").value))
        for topic in self.topics:
            # A deep queue on our side: a burst of load on the machine delays the recorder, it must not
            # make it lose messages (the topic's own depth, 10, is for nodes that want the newest state).
            deep = api.Qos(depth=RECORD_DEPTH, reliable=topic.qos.reliable)
            subscription(self, topic, lambda data, t=topic: self._on_raw(t, data), deep, callback_group=group,
                         raw=True)
        # Operator events one at a time, in order (start before the labels before stop).
        subscription(self, api.TELEOP_OPERATOR, self._on_operator, callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(0.5, self._flush, callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(f"recording episodes of {config.task} into {self.out_dir} "
                               f"({len(self.topics)} topics)")

    def _warn(self, line: str) -> None:
        self.get_logger().warning(line, throttle_duration_sec=5.0)

    def _on_raw(self, topic: api.Topic, data: bytes) -> None:
        with self._lock:
            if self.file is not None:
                self.file.write(topic.name, topic.type, data)

    def _flush(self) -> None:
        with self._lock:
            if self.file is not None:
                self.file.flush()

    def _on_operator(self, msg: String) -> None:
        event = self.operator_reader.json(msg.data)
        if event is None:
            return
        action = event["action"]
        with self._lock:
            if action == "start":
                self._start(event)
            if self.file is not None:  # the labels travel with the data, time-aligned (start included)
                self.file.write(api.TELEOP_OPERATOR.name, api.TELEOP_OPERATOR.type, serialize_message(msg))
            if action in ("failure", "success") and self.file is not None:
                self.labels.append({"label": action, "elapsed": event["elapsed"], "time": event["time"]})
            elif action == "stop" and self.file is not None:
                path = self.file.close(self._final(event))
                self.get_logger().info(f"episode {event['episode']} ({event['kind']}, {event['outcome']}): {path}")
                self.last_closed, self.file = path, None
            elif action == "discard":
                if self.file is not None:
                    path = self.file.discard(self._final(event))
                    self.file = None
                elif self.last_closed is not None and self.last_closed.exists():
                    path = self.out_dir / "discarded" / self.last_closed.name
                    path.parent.mkdir(exist_ok=True)
                    self.last_closed.replace(path)
                    self.last_closed = None
                else:
                    return
                self.get_logger().info(f"episode {event['episode']} discarded: {path}")

    def _start(self, event: dict) -> None:
        if self.file is not None:  # a start without a stop (the teleop node restarted): keep what we have
            self.file.close(self._final({**event, "outcome": "unlabelled"}, interrupted=True))
        self.started_wall = event["time"]
        self.labels = []
        stamp = datetime.fromtimestamp(event["time"], timezone.utc).strftime("%Y%m%d-%H%M%S")
        stem = f"{self.config.task}_{stamp}_{event['episode']:03d}_{event['kind']}"
        self.file = EpisodeFile(self.out_dir, stem, {
            "format": "farl-episode/1", "task": self.config.task, "kind": event["kind"],
            "operator": event["operator"], "device": event["device"], "episode": event["episode"],
            "robot": self.robot, "config_hash": self.hash, "task_config": str(self.config.path),
            "control_rate_hz": self.config.control.rate_hz,
            "start_time": event["time"], "start_iso": datetime.fromtimestamp(event["time"], timezone.utc).isoformat(),
            "topics": {t.name: t.type for t in self.topics}})
        self.get_logger().info(f"episode {event['episode']} ({event['kind']}): recording {self.file.path}")

    def _final(self, event: dict, interrupted: bool = False) -> dict:
        end = event["time"]
        return {"outcome": event.get("outcome", "unlabelled"), "labels": list(self.labels), "end_time": end,
                "duration_s": max(0.0, end - self.started_wall), "interrupted": interrupted}

    def shutdown(self) -> None:
        """Ctrl-C mid-episode: close the file as an interrupted episode (complete up to now, marked)."""
        with self._lock:
            if self.file is not None:
                path = self.file.close(self._final({"time": time.time(), "outcome": "unlabelled"},
                                                   interrupted=True))
                self.get_logger().info(f"recording stopped mid-episode: {path} (marked interrupted)")
                self.file = None


def main(args: list[str] | None = None) -> None:
    # One executor thread: the callbacks only append bytes under one lock, and more threads would
    # contend for the GIL (measured: benchmarks/recorder_overhead.py).
    run_node(PROGRAM, RecorderNode, args, threads=1)


if __name__ == "__main__":
    main(sys.argv)

"""learner node: PPO on the robot's episodes in the background, new policies to the shield.

The robot never waits for it: episodes arrive on /farl/learner/transitions and
are queued; a worker thread (torch limited to `torch_threads`, process niced)
runs the update, exports a verified model folder and announces it on
/farl/learner/policy. If the learner crashes or is killed, the shield keeps the
policy it has and the control node is unaffected; on restart it resumes from
run_dir/learner_state.pt.

Topics (names, QoS and payload schemas: farl_common.interface)
  sub /farl/learner/transitions  one finished episode (TRANSITIONS_PAYLOAD); one that does not
                                 validate is counted and logged, never trained on
  pub /farl/learner/policy       the new version: its folder's files, manifest checksum and this
                                 learner's run_dir as source (POLICY_PAYLOAD); the shield needs no
                                 access to run_dir
  pub /farl/learner/status       version, updates, episodes, steps, pending_episodes, busy (an update
                                 is running or due), last_update (PPO stats) (LEARNER_STATUS_PAYLOAD)
"""
from __future__ import annotations

import os
import queue
import sys
import threading

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from std_msgs.msg import String

from farl_common import interface as api
from farl_common.errors import FarlInputError
from farl_common.interface import PayloadReader
from farl_common.paths import resolve_config_path
from farl_common.task_config import load_task_config
from farl_common.task_spec import TaskSpec
from farl_control.ros.endpoints import publisher, subscription
from farl_control.ros.node_main import run_node
from farl_control.shield.transfer import pack_folder

from .config import load_farl_config
from .learner_core import LearnerCore

PROGRAM = "learner_node"


class LearnerNode(Node):
    def __init__(self) -> None:
        super().__init__("learner")
        describe = lambda text: ParameterDescriptor(description=text)  # noqa: E731
        self.declare_parameter("task_config", "tasks/fragile_push_wall.yaml", describe("Task YAML"))
        self.declare_parameter("farl_config", "farl/franka/fragile_push_wall.yaml",
                               describe("FARL hyper-parameters (PPO, risk), relative to config/"))
        self.declare_parameter("models_dir", "models/fragile_push_wall",
                               describe("Pretrained model folder (torch checkpoints + calibration.json)"))
        self.declare_parameter("run_dir", "", describe("Where versions and the learner state go (required)"))
        self.declare_parameter("episodes_per_update", 4, describe("Episodes collected before each PPO update"))
        self.declare_parameter("min_steps_per_update", 64, describe("Steps collected before each PPO update"))
        self.declare_parameter("nice", 10, describe("Process niceness: the control loop keeps its timing"))
        self.declare_parameter("device", "cpu", describe(
            "Torch device of the PPO updates: cpu (default), cuda (error without a GPU) or auto (cuda if present)"))
        run_dir = str(self.get_parameter("run_dir").value)
        self.run_dir = run_dir
        if not run_dir:
            raise FarlInputError(None, "parameter run_dir is empty: give the learner a folder for its policies")
        os.nice(int(self.get_parameter("nice").value))
        task = load_task_config(self.get_parameter("task_config").value)
        spec = TaskSpec.from_config(task)
        cfg = load_farl_config(resolve_config_path(self.get_parameter("farl_config").value))
        self.core = LearnerCore(
            task.task, resolve_config_path(self.get_parameter("models_dir").value), run_dir, cfg,
            episodes_per_update=int(self.get_parameter("episodes_per_update").value),
            min_steps_per_update=int(self.get_parameter("min_steps_per_update").value),
            obs_layout={name: [i, i + 1] for i, name in enumerate(spec.layout())},
            device=str(self.get_parameter("device").value))
        self._announced_version = self.core.version  # what the shield runs after this learner's last announcement
        self.episodes_reader = PayloadReader(api.TRANSITIONS_PAYLOAD,
                                             lambda line: self.get_logger().error(line, throttle_duration_sec=5.0))
        self.policy_pub = publisher(self, api.LEARNER_POLICY)
        self.status_pub = publisher(self, api.LEARNER_STATUS)
        subscription(self, api.LEARNER_TRANSITIONS, self._on_episode)
        self.create_timer(1.0, self._publish_status)
        self._inbox: queue.Queue[dict] = queue.Queue()
        self._stop = threading.Event()
        self._busy = False  # an update is running (status "busy": the main job waits for it before shutdown)
        self._worker = threading.Thread(target=self._work, daemon=True, name="ppo-worker")
        self._worker.start()
        resumed = f"resumed at version {self.core.version}" if self.core.resumed else "starting from the pretrained policy"
        self.get_logger().info(f"learner for {task.task} on {self.core.device}: {resumed}; run folder {run_dir}")

    def _on_episode(self, msg: String) -> None:
        episode = self.episodes_reader.json(msg.data)
        if episode is not None:
            self._inbox.put(episode)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                payload = self._inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self.core.add_episode(payload)
            except (FarlInputError, KeyError, ValueError) as error:
                self.get_logger().error(f"ignoring an episode: {error}")
                continue
            if self.core.ready():
                self._busy = True
                try:
                    announcement = self.core.update()
                    message = {**announcement.as_dict(), "source": self.run_dir,
                               "files": pack_folder(announcement.path)}
                except Exception as error:  # noqa: BLE001 - the worker must survive one bad update
                    self.get_logger().error(f"PPO update / export failed; the shield keeps policy version "
                                            f"{self._announced_version}: {type(error).__name__}: {error}")
                    continue
                finally:
                    self._busy = False
                self.policy_pub.publish(String(data=api.POLICY_PAYLOAD.to_json(message)))
                self._announced_version = announcement.version
                stats = self.core.last_stats
                self.get_logger().info(
                    f"policy v{announcement.version}: PPO on {stats['episodes']} episodes / {stats['steps']} steps "
                    f"in {stats['update_seconds']:.1f} s (approx KL {stats.get('approx_kl', 0):.4f})")

    def _publish_status(self) -> None:
        core = self.core
        body = {"version": core.version, "updates": core.updates, "episodes": core.episodes_seen,
                "steps": core.steps_seen, "pending_episodes": len(core.pending) + self._inbox.qsize(),
                "busy": self._busy or core.ready() or self._inbox.qsize() > 0, "last_update": core.last_stats}
        self.status_pub.publish(String(data=api.LEARNER_STATUS_PAYLOAD.to_json(body)))

    def shutdown(self) -> None:
        self._stop.set()
        self._worker.join(timeout=5.0)
        if self._worker.is_alive():
            # An update is still inside torch: interpreter teardown under it aborts the process.
            # Leave now; learner_state.pt and the exported folders are only ever replaced atomically,
            # so a restart resumes from the last finished version.
            self.get_logger().warning(f"update to v{self.core.version + 1} still running: exiting without it")
            os._exit(0)


def main(args: list[str] | None = None) -> None:
    run_node(PROGRAM, LearnerNode, args, threads=2)


if __name__ == "__main__":
    main(sys.argv)

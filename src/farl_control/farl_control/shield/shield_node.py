"""shield node: the actor of online FARL, with the safety shield in its loop.

Each control tick while an episode runs (between the episode monitor's `start`
and its verdict) it builds the task's observation from /farl/robot/ee_pose and
/farl/objects/<name> (layout: config `observation`), asks `ShieldRuntime` for
the action (pi_task's sample, or pi_rec's when C_H > eps_safe) and sends it on
/farl/robot/command. Between episodes it sends nothing: the control node's
watchdog holds the arm still. `shield_enabled:=false` runs the same actor
without the substitution: the Uni-O4 baseline.

Publishes
  /farl/robot/command     geometry_msgs/TwistStamped, TCP linear velocity, frame base
  /farl/shield/decision   diagnostic_msgs/DiagnosticStatus per tick, one key/value per field of
                          `farl_common.interface.DECISION_PAYLOAD` (tick numbers them: a gap is a loss)
  /farl/shield/markers    visualization_msgs/MarkerArray (see shield.markers)
Subscribes
  /farl/episode/events    start / verdict events of the episode monitor (EVENT_PAYLOAD)
  /farl/learner/policy    a new task policy to verify and swap in (POLICY_PAYLOAD): its files
                          travel in the message and are rebuilt under `policy_cache` (no shared
                          filesystem with the learner); an announcement without files names a
                          folder on this machine
A payload that does not validate is counted and logged, never acted on.
"""
from __future__ import annotations

import sys
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from std_msgs.msg import String

from farl_common import interface as api
from farl_common.errors import FarlInputError
from farl_common.interface import PayloadReader
from farl_common.paths import resolve_config_path
from farl_common.task_config import load_task_config
from farl_common.task_spec import TCP, TaskSpec
from farl_control.ros.endpoints import publisher, subscription
from farl_control.ros.messages import make_twist
from farl_control.ros.node_main import run_node
from farl_control.shield.markers import decision_markers, marker_array, static_markers
from farl_control.shield.runtime import ShieldDecision, ShieldRuntime

PROGRAM = "shield_node"


class ShieldNode(Node):
    def __init__(self) -> None:
        super().__init__("shield")
        describe = lambda text: ParameterDescriptor(description=text)  # noqa: E731
        self.declare_parameter("task_config", "tasks/fragile_push_wall.yaml",
                               describe("Task YAML: a task name or a path relative to config/"))
        self.declare_parameter("models_dir", "models/fragile_push_wall",
                               describe("Model folder (manifest.json + ONNX files), absolute or relative to config/"))
        self.declare_parameter("shield_enabled", True,
                               describe("false = never substitute the recovery action (Uni-O4 baseline)"))
        self.declare_parameter("explore", True, describe("Sample a_task from pi_task (online learning) or use its mean"))
        self.declare_parameter("seed", 0, describe("Seed of the exploration noise"))
        self.declare_parameter("epsilon_override", -1.0,
                               describe("eps_safe to use instead of the manifest's calibrated value (< 0: manifest)"))
        self.declare_parameter("recovery_hold_ticks", -1,
                               describe("Ticks pi_rec keeps control after each trigger (hysteresis; 0 = the "
                                        "paper's per-tick rule; < 0: the manifest's recovery_hold_ticks)"))
        self.declare_parameter("policy_root", "",
                               describe("The learner's run_dir: transferred policies must name it as their "
                                        "source, announced paths must lie under it; empty = any learner"))
        self.declare_parameter("policy_cache", "",
                               describe("Where transferred policies are rebuilt and verified (this shield's "
                                        "own folder); empty = a new temporary folder"))
        self.declare_parameter("noise_correlation", -1.0,
                               describe("AR(1) coefficient of the exploration noise in [0, 1) (< 0: the task "
                                        "config's exploration.noise_correlation)"))
        self.declare_parameter("pose_timeout_s", 0.5,
                               describe("Do not act on poses older than this (s): a stalled camera/state stream"))

        config = load_task_config(self.get_parameter("task_config").value)
        self.config = config
        self.spec = TaskSpec.from_config(config)
        epsilon = float(self.get_parameter("epsilon_override").value)
        correlation = float(self.get_parameter("noise_correlation").value)
        hold = int(self.get_parameter("recovery_hold_ticks").value)
        if correlation >= 1.0:
            raise FarlInputError(None, f"must be < 1, got {correlation}", key="parameter noise_correlation")
        self.runtime = ShieldRuntime(
            resolve_config_path(self.get_parameter("models_dir").value), config.task, self.spec.obs_dim,
            self.spec.action_dim, shield_enabled=bool(self.get_parameter("shield_enabled").value),
            explore=bool(self.get_parameter("explore").value), seed=int(self.get_parameter("seed").value),
            epsilon_override=epsilon if epsilon >= 0 else None,
            policy_root=str(self.get_parameter("policy_root").value) or None,
            policy_cache=str(self.get_parameter("policy_cache").value) or None,
            noise_correlation=correlation if correlation >= 0 else self.spec.exploration_correlation,
            recovery_hold_override=hold if hold >= 0 else None)
        self.pose_timeout_s = float(self.get_parameter("pose_timeout_s").value)
        self._lock = threading.Lock()
        # source → (position, time received (monotonic), time sampled (the pose's stamp, s; 0 = unstamped))
        self.positions: dict[str, tuple[np.ndarray, float, float]] = {}
        # The last acted-on tick's positions, poses' sample times and tick time (monotonic): velocity fields.
        self._previous_tick: tuple[dict[str, np.ndarray], dict[str, float], float] | None = None
        self.episode: int | None = None
        self.tick = 0
        self.swap_error = ""

        self.events_reader = PayloadReader(api.EVENT_PAYLOAD, self._warn)
        self.policy_reader = PayloadReader(api.POLICY_PAYLOAD, self._warn)
        inputs = ReentrantCallbackGroup()
        subscription(self, api.EE_POSE, lambda m: self._on_pose(TCP, m), api.NEWEST, callback_group=inputs)
        for name in self.spec.required_sources:
            if name != TCP:
                subscription(self, api.object_topic(name), lambda m, n=name: self._on_pose(n, m),
                             callback_group=inputs)
        # Events in order (one at a time): a late joiner's burst of history must end in the latest state.
        subscription(self, api.EPISODE_EVENTS, self._on_event, callback_group=MutuallyExclusiveCallbackGroup())
        subscription(self, api.LEARNER_POLICY, self._on_policy, callback_group=MutuallyExclusiveCallbackGroup())
        self.command_pub = publisher(self, api.ROBOT_COMMAND)
        self.decision_pub = publisher(self, api.SHIELD_DECISION)
        self.markers_pub = publisher(self, api.SHIELD_MARKERS)
        self.create_timer(1.0 / config.control.rate_hz, self._on_tick, callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(
            f"shield {'ON' if self.runtime.shield_enabled else 'OFF (baseline)'}, eps_safe "
            f"{self.runtime.epsilon:.3f}, H {self.runtime.manifest.horizon}, recovery hold {self.runtime.hold.ticks} "
            f"ticks, models {self.runtime.manifest.folder}")

    def _on_pose(self, name: str, msg: PoseStamped) -> None:
        p, stamp = msg.pose.position, msg.header.stamp
        with self._lock:
            self.positions[name] = (np.array([p.x, p.y, p.z]), time.monotonic(), stamp.sec + stamp.nanosec * 1e-9)

    def _warn(self, line: str) -> None:
        self.get_logger().warning(line, throttle_duration_sec=5.0)

    def _on_event(self, msg: String) -> None:
        event = self.events_reader.json(msg.data)
        if event is None:
            return
        kind = event["type"]
        with self._lock:
            if kind == "start":
                if self.episode != event["episode"]:
                    self.runtime.new_episode()
                    self._previous_tick = None
                self.episode = event["episode"]
            elif kind in api.ENDING_EVENTS:
                was_running = self.episode is not None
                self.episode = None
        if kind in api.ENDING_EVENTS and was_running:
            self.command_pub.publish(make_twist((0.0, 0.0, 0.0), stamp=self.get_clock().now().to_msg()))

    def _on_policy(self, msg: String) -> None:
        announcement = self.policy_reader.json(msg.data)
        if announcement is None:
            self.swap_error = f"malformed policy announcement: {self.policy_reader.last_error}"
            return
        try:
            if announcement.get("files") is not None:
                folder = self.runtime.swap_transferred(announcement["files"], announcement["sha256"],
                                                       announcement["version"], announcement.get("source"))
            else:
                folder = announcement["path"]
                self.runtime.swap_policy(folder, announcement["sha256"], announcement["version"])
        except FarlInputError as error:
            self.swap_error = str(error)
            self.get_logger().error(f"refused new policy, keeping version {self.runtime.policy_version}: {error}")
            return
        self.swap_error = ""
        self.get_logger().info(f"now running task policy version {self.runtime.policy_version} from {folder}")

    def _current_positions(self) -> tuple[dict[str, np.ndarray], dict[str, float]] | None:
        """The newest positions and their sample times, or None while a required pose is missing or stale."""
        now = time.monotonic()
        with self._lock:
            if any(s not in self.positions for s in self.spec.required_sources):
                return None
            if any(now - self.positions[s][1] > self.pose_timeout_s for s in self.spec.required_sources):
                return None
            return ({name: value for name, (value, _, _) in self.positions.items()},
                    {name: sampled for name, (_, _, sampled) in self.positions.items()})

    def _on_tick(self) -> None:
        with self._lock:
            episode = self.episode
        if episode is None:
            return
        current = self._current_positions()
        if current is None:
            self.get_logger().warning("poses missing or stale: not acting (the watchdog holds the arm)",
                                      throttle_duration_sec=2.0)
            return
        positions, sampled = current
        obs = self._observation(positions, sampled)
        decision = self.runtime.decide(obs)
        stamp = self.get_clock().now().to_msg()
        self.command_pub.publish(make_twist(self.spec.action_to_velocity(decision.action), stamp=stamp))
        self.tick += 1
        self.decision_pub.publish(self._decision_message(episode, obs, decision, positions))
        self.markers_pub.publish(marker_array(
            static_markers(self.config, stamp)
            + decision_markers(positions[TCP], decision.source, decision.risk, decision.epsilon,
                               decision.hand_path, decision.step_prob, stamp)))

    def _observation(self, positions: dict[str, np.ndarray], sampled: dict[str, float]) -> np.ndarray:
        """The observation of this tick; a velocity field differences the last acted-on tick.

        Its time is the one between the two poses' stamps (`TaskSpec.velocity_intervals`), not
        the ticks': the newest pose can be up to one pose period old. Unstamped poses fall back
        to the measured time between the ticks (a tick skipped for stale poses spans two).
        """
        now = time.monotonic()
        previous, dt = None, None
        with self._lock:  # an episode start clears it from the events thread
            if self._previous_tick is not None and self.spec.has_velocity:
                previous, previously_sampled, then = self._previous_tick
                dt = self.spec.velocity_intervals(sampled, previously_sampled, fallback=now - then)
            self._previous_tick = (positions, sampled, now)
        return self.spec.build_observation(positions, previous, dt)

    def _decision_message(self, episode: int, obs: np.ndarray, d: ShieldDecision,
                          positions: dict[str, np.ndarray]) -> DiagnosticStatus:
        msg = DiagnosticStatus()
        msg.name = "farl/shield"
        msg.level = DiagnosticStatus.WARN if d.source == "recovery" else DiagnosticStatus.OK
        msg.message = d.source
        payload = {
            "tick": self.tick, "episode": episode, "risk": round(float(d.risk), 6),
            "epsilon": round(float(d.epsilon), 6), "source": d.source, "latency_ms": round(float(d.latency_ms), 3),
            "policy_version": int(d.policy_version), "obs": [round(float(v), 6) for v in obs],
            "action": [round(float(v), 6) for v in d.action],
            "action_task": [round(float(v), 6) for v in d.action_task],
            "log_prob": round(float(d.log_prob), 6), "swap_error": self.swap_error,
            "positions": {name: [round(float(v), 6) for v in xyz] for name, xyz in positions.items()},
        }
        msg.values = [KeyValue(key=k, value=v) for k, v in api.DECISION_PAYLOAD.to_pairs(payload)]
        return msg


def main(args: list[str] | None = None) -> None:
    run_node(PROGRAM, ShieldNode, args)


if __name__ == "__main__":
    main(sys.argv)

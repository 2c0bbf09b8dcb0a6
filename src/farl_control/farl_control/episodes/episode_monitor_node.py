"""episode_monitor node: turns the actor's ticks into episodes, transitions and events.

The shield (the actor) publishes one /farl/shield/decision per control tick,
carrying the observation it acted on, the poses it built it from, and the
action it sent. For tick t the monitor waits for decision t+1: its observation
is s_{t+1} and its poses decide reward and success (with the failure signal
seen in between), through `EpisodeTracker`. So a transition's s, a, r and s'
all come from the actor's own view, one tick apart, as in the training twin. When an episode ends it publishes the verdict on
/farl/episode/events, sends the whole episode to the learner on
/farl/learner/transitions, and resets the robot (and, in sim, the scene)
through /farl/robot/reset before starting the next one.

Failure signal: with perception:=ground_truth (sim only) the ground truth of
/farl/sim/scene_state (MuJoCo contacts between the failure bodies). With
perception:=aruco (the real arm, or the sim camera) there is no contact to read:
the task's `failure.perceived` predicate (e.g. block-wall gap below a margin) is
evaluated on every /farl/objects/<name> pose it names. Any failure seen since
the previous tick counts for that tick's state–action pair. An operator's
failure mark counts too, whatever the signal.

Topics
  sub /farl/shield/decision       diagnostic_msgs/DiagnosticStatus (DECISION_PAYLOAD); gaps in its tick
                                  are counted as lost decisions (decisions_dropped in every event)
  sub /farl/robot/ee_pose, /farl/objects/<name>, /farl/sim/scene_state, /farl/teleop/command (interventions:
                                  the step's executed action is the operator's, flagged), /farl/teleop/operator
                                  (failure marks count as failures; reset done, with wait_for_reset_done)
  pub /farl/episode/events        std_msgs/String JSON (EVENT_PAYLOAD): start, verdicts, interventions,
                                  finished, with the running counts
  pub /farl/learner/transitions   std_msgs/String JSON (TRANSITIONS_PAYLOAD), one per finished episode
Payload schemas and QoS: farl_common.interface. A payload that does not validate is counted and logged.
"""
from __future__ import annotations

import sys
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped, TwistStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import Trigger

from farl_common import interface as api
from farl_common.errors import FarlInputError
from farl_common.failure_predicates import PerceivedFailure
from farl_common.interface import PayloadReader, SequenceGaps

from farl_common.task_config import load_task_config
from farl_common.task_spec import TCP, TaskSpec
from farl_control.episodes.tracker import EpisodeResult, EpisodeTracker, transitions_payload
from farl_control.ros.endpoints import client, publisher, subscription
from farl_control.ros.node_main import run_node

PROGRAM = "episode_monitor_node"
RESET_SERVICE = api.ROBOT_RESET.name


class EpisodeMonitorNode(Node):
    def __init__(self) -> None:
        super().__init__("episode_monitor")
        self.declare_parameter("task_config", "tasks/fragile_push_wall.yaml",
                               ParameterDescriptor(description="Task YAML: a task name or a path relative to config/"))
        self.declare_parameter("max_episodes", 0, ParameterDescriptor(
            description="Stop starting episodes after this many (0 = run until shut down)"))
        self.declare_parameter("reset_timeout_s", 60.0, ParameterDescriptor(
            description="How long a /farl/robot/reset may take before the monitor reports it and retries"))
        self.declare_parameter("wait_for_learner", False, ParameterDescriptor(
            description="Start the first episode only once a learner listens on /farl/learner/transitions "
                        "(its episodes would be lost otherwise); later episodes never wait"))
        self.declare_parameter("learner_wait_s", 60.0, ParameterDescriptor(
            description="Give up waiting for the learner after this long and run without it"))
        self.declare_parameter("wait_for_reset_done", False, ParameterDescriptor(
            description="After the arm is home, wait for the operator's *reset done* (/farl/teleop/operator) "
                        "before the next episode: on the real arm a person puts the objects back"))
        self.declare_parameter("perception", "ground_truth", ParameterDescriptor(
            description="ground_truth: failures are the simulator's contacts (/farl/sim/scene_state); aruco: the "
                        "task's failure.perceived predicate on the perceived /farl/objects poses"))
        config = load_task_config(self.get_parameter("task_config").value)
        perception = str(self.get_parameter("perception").value)
        if perception not in ("ground_truth", "aruco"):
            raise FarlInputError(None, f"{perception!r} is not one of ground_truth, aruco", key="parameter perception")
        try:
            self.perceived_failure = PerceivedFailure(config) if perception == "aruco" else None
        except ValueError as error:
            raise FarlInputError(None, str(error)) from None
        self.spec = TaskSpec.from_config(config)
        self.teleop_hold_s = config.control.teleop_hold_s
        self.max_episodes = int(self.get_parameter("max_episodes").value)
        self.reset_timeout_s = float(self.get_parameter("reset_timeout_s").value)
        self.wait_for_learner = bool(self.get_parameter("wait_for_learner").value)
        self.learner_wait_s = float(self.get_parameter("learner_wait_s").value)
        self.wait_for_reset_done = bool(self.get_parameter("wait_for_reset_done").value)
        self.reset_done = threading.Event()
        self.tracker = EpisodeTracker(self.spec)
        self._lock = threading.Lock()
        self.positions: dict[str, np.ndarray] = {}
        self.orientations: dict[str, tuple[float, float, float, float]] = {}
        self.failure_since_step = False
        self.failure_cause = ""  # what set failure_since_step, for the episode's log line
        self.scene_resets: int | None = None  # the sim scene's reset count, as its last scene_state said
        self.episode_first_reset: int | None = None  # scene_state from an older reset belongs to the last episode
        self.pending: dict | None = None
        self.last_teleop = -1e9
        self.last_teleop_velocity = np.zeros(3)
        self.finished = False

        self.decision_reader = PayloadReader(api.DECISION_PAYLOAD, self._warn)
        self.scene_reader = PayloadReader(api.SCENE_STATE_PAYLOAD, self._warn)
        self.decision_gaps = SequenceGaps()
        fast = ReentrantCallbackGroup()
        subscription(self, api.EE_POSE, lambda m: self._on_position(TCP, m), api.NEWEST, callback_group=fast)
        watched = set(self.spec.required_sources) | set(self.perceived_failure.objects if self.perceived_failure else ())
        for name in sorted(watched):
            if name != TCP:
                subscription(self, api.object_topic(name), lambda m, n=name: self._on_position(n, m),
                             callback_group=fast)
        if self.perceived_failure is None:
            # In order, one at a time: the reset count must never step back to an older message's.
            subscription(self, api.SCENE_STATE, self._on_scene_state, callback_group=MutuallyExclusiveCallbackGroup())
        subscription(self, api.TELEOP_COMMAND, self._on_teleop, callback_group=fast)
        self.operator_reader = PayloadReader(api.OPERATOR_PAYLOAD, self._warn)
        subscription(self, api.TELEOP_OPERATOR, self._on_operator, callback_group=fast)
        # One decision at a time, in tick order (a tick's outcome is seen at the next tick; gaps count losses).
        subscription(self, api.SHIELD_DECISION, self._on_decision, callback_group=MutuallyExclusiveCallbackGroup())
        self.events = publisher(self, api.EPISODE_EVENTS)
        self.transitions = publisher(self, api.LEARNER_TRANSITIONS)
        self.reset_client = client(self, api.ROBOT_RESET, callback_group=MutuallyExclusiveCallbackGroup())
        self.fatal: str | None = None  # set when the episode thread fails; main() then exits 1
        self._episode_thread = threading.Thread(target=self._episode_loop, daemon=True, name="episodes")
        self._wake = threading.Event()
        self._stopping = threading.Event()

    # ---- inputs -------------------------------------------------------------
    def _on_position(self, name: str, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        with self._lock:
            self.positions[name] = np.array([p.x, p.y, p.z])
            self.orientations[name] = (q.x, q.y, q.z, q.w)
            if (self.perceived_failure is not None and name in self.perceived_failure.objects
                    and self.tracker.running and self.perceived_failure(self.positions, self.orientations)):
                self._mark_failure(f"perceived ({name})")

    def _mark_failure(self, cause: str) -> None:
        """Under the lock: the coming step ends in failure. The first cause is kept for the log line, which
        is how an operator (or a failing test) tells a simulator failure from an operator's mark."""
        if not self.failure_since_step:
            self.failure_cause = cause
        self.failure_since_step = True

    def _warn(self, line: str) -> None:
        self.get_logger().warning(line, throttle_duration_sec=5.0)

    def _on_scene_state(self, msg: String) -> None:
        scene = self.scene_reader.json(msg.data)
        if scene is None:
            return
        resets = scene.get("resets")
        with self._lock:
            if isinstance(resets, int):
                self.scene_resets = resets
            # A message sent before this episode's reset still describes the last episode's end (e.g. the
            # ball still out of bounds): arriving after the start, it must not fail the new episode.
            stale = (isinstance(resets, int) and self.episode_first_reset is not None
                     and resets < self.episode_first_reset)
            if scene["failure"] and not stale:
                self._mark_failure(f"simulator (scene reset {resets}, episode's first {self.episode_first_reset})")

    def _on_teleop(self, msg: TwistStamped) -> None:
        now = time.monotonic()
        v = msg.twist.linear
        with self._lock:
            new_burst = now - self.last_teleop > self.teleop_hold_s
            self.last_teleop = now
            self.last_teleop_velocity = np.array([v.x, v.y, v.z])
            if new_burst and self.tracker.running:
                self.tracker.note_intervention()
                self._publish_event("intervention")

    def _on_operator(self, msg: String) -> None:
        """An operator's *failure* mark counts like the failure signal (a failure the predicates missed);
        *reset done* releases the next episode (wait_for_reset_done)."""
        event = self.operator_reader.json(msg.data)
        if event is None:
            return
        if event["action"] == "failure":
            with self._lock:
                if self.tracker.running:
                    self._mark_failure(f"operator {event.get('operator', '')}".rstrip())
        elif event["action"] == "reset_done":
            self.reset_done.set()

    def _on_decision(self, msg: DiagnosticStatus) -> None:
        payload = self.decision_reader.pairs((kv.key, kv.value) for kv in msg.values)
        if payload is None:
            return
        with self._lock:
            lost = self.decision_gaps.note(payload["tick"])
        if lost:
            self.get_logger().warning(f"{lost} shield decision(s) lost before tick {payload['tick']} "
                                      f"({self.decision_gaps.dropped} so far)", throttle_duration_sec=5.0)
        decision = {
            "episode": payload["episode"],
            "obs": np.asarray(payload["obs"], dtype=np.float32),
            "action": np.asarray(payload["action"], dtype=np.float32),
            "action_task": np.asarray(payload["action_task"], dtype=np.float32),
            "log_prob": payload["log_prob"],
            "source": payload["source"],
            "risk": payload["risk"],
            "policy_version": payload["policy_version"],
            "positions": {name: np.asarray(xyz, dtype=np.float64) for name, xyz in payload["positions"].items()},
        }
        result, cause = None, ""
        with self._lock:
            if not self.tracker.running or decision["episode"] != self.tracker.episode:
                return
            if self.pending is not None:
                missing = [s for s in self.spec.required_sources if s not in decision["positions"]]
                if missing:
                    self.get_logger().warning(f"decision without poses of {missing}: ignored",
                                              throttle_duration_sec=5.0)
                    return
                p = self.pending
                # The control node lets teleop override while it is younger than teleop_hold_s: then the
                # operator's twist is what the arm executed during this step, not the shield's action.
                intervention = time.monotonic() - self.last_teleop <= self.teleop_hold_s
                action = (self.spec.velocity_to_action(self.last_teleop_velocity).astype(np.float32)
                          if intervention else p["action"])
                result = self.tracker.step(p["obs"], action, p["action_task"], p["log_prob"], p["source"],
                                           p["risk"], decision["obs"], decision["positions"],
                                           self.failure_since_step, p["policy_version"], intervention)
                if result is not None and result.reason == "failure":
                    cause = self.failure_cause
                self.failure_since_step, self.failure_cause = False, ""
            self.pending = None if result is not None else decision
        if result is not None:
            self._finish(result, cause)

    # ---- episodes -----------------------------------------------------------
    def _publish_event(self, kind: str, result: EpisodeResult | None = None) -> None:
        body = {"type": kind, "episode": self.tracker.episode, "counts": self.tracker.counts_dict(),
                "time": time.time(), "decisions_dropped": self.decision_gaps.dropped}
        if result is not None:
            body.update({"steps": result.steps, "return": result.episode_return,
                         "failure_pairs": result.failure_pairs, "shield_triggers": result.shield_triggers,
                         "interventions": result.interventions, "policy_version": result.policy_version})
        self.events.publish(String(data=api.EVENT_PAYLOAD.to_json(body)))

    def _finish(self, result: EpisodeResult, cause: str = "") -> None:
        self._publish_event(result.reason, result)
        payload = transitions_payload(result, self.spec.task)
        self.transitions.publish(String(data=api.TRANSITIONS_PAYLOAD.to_json(payload)))
        self.get_logger().info(
            f"episode {result.episode}: {result.reason} after {result.steps} steps, return "
            f"{result.episode_return:.2f}, failure pairs {result.failure_pairs}, triggers {result.shield_triggers}"
            + (f" (failure from: {cause})" if cause else ""))
        self._wake.set()

    def _reset_robot(self) -> bool:
        # Not wait_for_service: shutdown must not wait seconds for this thread (it is joined before
        # the node is destroyed, so it never touches a destroyed client).
        deadline = time.monotonic() + 5.0
        while not self.reset_client.service_is_ready():
            if self._stopping.wait(0.1):
                return False
            if time.monotonic() > deadline:
                break
        if not self.reset_client.service_is_ready():
            self.get_logger().warning(f"{RESET_SERVICE} not available yet; is the franka node running?")
            return False
        future = self.reset_client.call_async(Trigger.Request())
        deadline = time.monotonic() + self.reset_timeout_s
        while not future.done() and time.monotonic() < deadline and not self._stopping.is_set():
            time.sleep(0.05)
        if not future.done():
            self.get_logger().error(f"{RESET_SERVICE} did not answer within {self.reset_timeout_s:g} s; retrying")
            return False
        response = future.result()
        if not response.success:
            self.get_logger().error(f"reset failed: {response.message}; retrying")
        return bool(response.success)

    def _await_learner(self) -> None:
        """Before the first episode: a learner that starts later than the stack would miss it (volatile topic)."""
        deadline = time.monotonic() + self.learner_wait_s

        def learner_listens() -> bool:  # the learner node itself, not any tool that listens in
            return any("learner" in info.node_name
                       for info in self.get_subscriptions_info_by_topic(api.LEARNER_TRANSITIONS.name))

        while not learner_listens() and not self._stopping.is_set():
            if time.monotonic() > deadline:
                self.get_logger().warning(f"no learner on {api.LEARNER_TRANSITIONS.name} after {self.learner_wait_s:g} s: "
                                          "running episodes without one")
                return
            self.get_logger().info("waiting for the learner before the first episode", throttle_duration_sec=10.0)
            self._stopping.wait(0.2)

    def _await_reset_done(self) -> bool:
        """Block until the operator says the objects are back (False: shutting down)."""
        self.get_logger().info("arm home: waiting for the operator's reset done (put the objects back)")
        while not self.reset_done.wait(0.2):
            if self._stopping.is_set():
                return False
        self.reset_done.clear()
        return True

    def _episode_loop(self) -> None:
        """The episode thread: a failure ends the node with one error line (main() reports `fatal`)."""
        try:
            self._run_episodes()
        except Exception as error:  # noqa: BLE001 - reported, never a thread traceback
            if not self._stopping.is_set():
                self.fatal = f"episode loop failed: {type(error).__name__}: {error}"

    def _run_episodes(self) -> None:
        """Reset → start → wait for the end, until max_episodes or shutdown."""
        if self.wait_for_learner:
            self._await_learner()
        while not self._stopping.is_set():
            with self._lock:
                ready = all(s in self.positions for s in self.spec.required_sources)
            if not ready:
                self._stopping.wait(0.2)
                continue
            if self.max_episodes and self.tracker.counts.episodes >= self.max_episodes:
                with self._lock:
                    self.finished = True
                    self._publish_event("finished")
                self.get_logger().info(f"finished {self.max_episodes} episodes: {self.tracker.counts_dict()}")
                return
            with self._lock:
                before_reset = self.scene_resets
            if not self._reset_robot():
                self._stopping.wait(1.0)
                continue
            if self.wait_for_reset_done and not self._await_reset_done():
                return
            with self._lock:
                self.pending = None
                self.failure_since_step, self.failure_cause = False, ""
                self.episode_first_reset = None if before_reset is None else before_reset + 1
                self.tracker.start()
                self._wake.clear()
                self._publish_event("start")
            while not self._wake.wait(0.2):
                if self._stopping.is_set():
                    return

    def start(self) -> None:
        self._episode_thread.start()

    def shutdown(self) -> None:
        self._stopping.set()
        if self._episode_thread.is_alive():
            self._episode_thread.join(timeout=5.0)
        with self._lock:
            result = self.tracker.abort()
        if result is not None:
            self._publish_event("aborted", result)


def main(args: list[str] | None = None) -> None:
    run_node(PROGRAM, EpisodeMonitorNode, args, on_start=lambda node: node.start())


if __name__ == "__main__":
    main(sys.argv)

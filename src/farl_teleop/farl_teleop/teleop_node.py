"""teleop node: a person (SpaceMouse, keyboard) or the scripted operator drives the TCP and labels episodes.

Input becomes a TCP twist on /farl/teleop/command, which the control node
lets override autonomy while it keeps coming. No input, no message (deadman):
the control node's watchdog stops the arm within control.command_timeout_s.
Speed: full deflection / a held key = teleop.max_linear_speed x the speed
scale the operator picks (teleop.speed_scales). The operator's controls
(start / stop / discard an episode, its kind, failure and success marks,
reset done) go through `session.OperatorSession` and out on
/farl/teleop/operator, which the recorder and the episode monitor read. A
one-line status is redrawn on the terminal (stderr).

After every stopped or discarded episode the node calls /farl/robot/reset (arm
home; in sim also the scene). In sim that completes the reset and *reset done*
is sent by the node; on the real arm the operator sends it once the objects
are back.

Parameters
  task_config (string)  task YAML (name or path relative to config/)
  device      (string)  spacemouse | keyboard | scripted
  kind        (string)  kind of the first episode: task | recovery | failure
  operator    (string)  who operates (episode metadata); default $USER
  episodes    (int)     stop after this many completed episodes (0 = until Ctrl-C)
  simulated   (string|bool) sim/real: in sim the reset service also resets the objects (reset done is automatic)
  hidraw      (string)  SpaceMouse hidraw device ('' = the first 3Dconnexion device found)
  reset_after_episode (bool) call /farl/robot/reset after each episode (default true)

Publishes /farl/teleop/command (TwistStamped, base), /farl/teleop/operator (OPERATOR_PAYLOAD)
Subscribes /farl/robot/ee_pose; scripted also /farl/objects/<name> and /farl/sim/scene_state
Calls /farl/robot/reset
"""
from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import Trigger

from farl_common import interface as api
from farl_common.errors import FarlInputError
from farl_common.interface import PayloadReader
from farl_common.task_config import load_task_config
from farl_common.task_spec import TCP, TaskSpec
from farl_control.ros.endpoints import client, publisher, subscription
from farl_control.ros.node_main import run_node

from .inputs import KeyboardInput, SpaceMouseInput, describe, twist
from .scripted_operator import ScriptedDemo
from .session import OperatorSession

PROGRAM = "teleop_node"
DEVICES = ("spacemouse", "keyboard", "scripted")


def _describe(text: str) -> ParameterDescriptor:
    return ParameterDescriptor(description=text)


class TeleopNode(Node):
    def __init__(self) -> None:
        super().__init__("teleop")
        self.declare_parameter("task_config", "tasks/fragile_push_wall.yaml",
                               _describe("Task YAML: a task name or a path relative to config/"))
        self.declare_parameter("device", "keyboard", _describe("spacemouse | keyboard | scripted"))
        self.declare_parameter("kind", "task", _describe("Kind of the first episode: task | recovery | failure"))
        self.declare_parameter("operator", os.environ.get("USER", "operator"),
                               _describe("Who operates (written into every episode's metadata)"))
        self.declare_parameter("episodes", 0, _describe("Exit after this many completed episodes (0 = until Ctrl-C)"))
        self.declare_parameter("simulated", "sim", _describe("sim | real: in sim the reset service also puts the "
                                                             "objects back, so reset done is sent automatically"))
        self.declare_parameter("hidraw", "", _describe("SpaceMouse hidraw device; '' = first 3Dconnexion device"))
        self.declare_parameter("reset_after_episode", True,
                               _describe("Call /farl/robot/reset (arm home) after each stopped or discarded episode"))
        config = load_task_config(self.get_parameter("task_config").value)
        self.config, self.spec = config, TaskSpec.from_config(config)
        device = str(self.get_parameter("device").value)
        kind = str(self.get_parameter("kind").value)
        if device not in DEVICES:
            raise FarlInputError(None, f"{device!r} is not one of {', '.join(DEVICES)}", key="parameter device")
        if kind not in api.DEMO_KINDS:
            raise FarlInputError(None, f"{kind!r} is not one of {', '.join(api.DEMO_KINDS)}", key="parameter kind")
        simulated = str(self.get_parameter("simulated").value).lower() in ("sim", "true", "1")
        self.episodes = int(self.get_parameter("episodes").value)
        self.reset_after = bool(self.get_parameter("reset_after_episode").value)
        self.simulated = simulated
        teleop = config.teleop
        self.session = OperatorSession(operator=str(self.get_parameter("operator").value), device=device, kind=kind,
                                       require_reset=not simulated, speed_scales=teleop.speed_scales,
                                       scale_index=teleop.initial_scale_index)
        self.device_name = device
        self.input = None
        self.terminal = None
        self.scripted: ScriptedDemo | None = None
        if device == "scripted":
            if config.scripted_operator is None:
                raise FarlInputError(config.path, "has no scripted_operator section", key="scripted_operator")
            self.scripted = ScriptedDemo(config.scripted_operator, kind, self.episodes or 1)
        elif device == "keyboard":
            from .devices.keyboard import HELP, RawTerminal

            try:
                self.terminal = RawTerminal().__enter__()
            except OSError as error:
                raise FarlInputError(None, str(error), key="parameter device") from None
            self.input = KeyboardInput(self.terminal, teleop)
            print(HELP, file=sys.stderr, flush=True)
        else:
            from .devices.spacemouse import HidrawReader, find_hidraw

            path = str(self.get_parameter("hidraw").value) or find_hidraw()
            if not path:
                raise FarlInputError(None, "no 3Dconnexion SpaceMouse found under /sys/class/hidraw; plug it in "
                                           "or pass hidraw:=/dev/hidrawN", key="parameter hidraw")
            try:
                self.input = SpaceMouseInput(HidrawReader.open(path), teleop)
            except OSError as error:
                raise FarlInputError(path, str(error)) from None
            print("SpaceMouse: left button start/stop, right button mark failure, both reset done; "
                  "keyboard controls are not read with this device", file=sys.stderr, flush=True)

        self._lock = threading.Lock()
        self._session_lock = threading.Lock()  # the timer and the reset's completion both drive the session
        self.positions: dict[str, np.ndarray] = {}
        self.failure_seen = False
        self.success_seen = False
        self.resetting = False
        self.fatal: str | None = None
        self.tty = sys.stderr.isatty()
        self._last_status = ""
        self._last_status_print = 0.0
        self.command_pub = publisher(self, api.TELEOP_COMMAND)
        self.operator_pub = publisher(self, api.TELEOP_OPERATOR)
        fast = ReentrantCallbackGroup()
        subscription(self, api.EE_POSE, lambda m: self._on_pose(TCP, m), api.NEWEST, callback_group=fast)
        if self.scripted is not None:
            for name in self.spec.required_sources:
                if name != TCP:
                    subscription(self, api.object_topic(name), lambda m, n=name: self._on_pose(n, m),
                                 callback_group=fast)
            self.scene_reader = PayloadReader(api.SCENE_STATE_PAYLOAD)
            subscription(self, api.SCENE_STATE, self._on_scene, callback_group=fast)
        self.reset_client = client(self, api.ROBOT_RESET, callback_group=ReentrantCallbackGroup())
        self.timer = self.create_timer(1.0 / teleop.rate_hz, self._tick,
                                       callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(f"teleop: device {device}, operator {self.session.operator}, first kind {kind}, "
                               f"{'sim' if simulated else 'real arm'}")

    # ---- inputs -------------------------------------------------------------
    def _on_pose(self, name: str, msg: PoseStamped) -> None:
        p = msg.pose.position
        with self._lock:
            self.positions[name] = np.array([p.x, p.y, p.z])

    def _on_scene(self, msg: String) -> None:
        scene = self.scene_reader.json(msg.data)
        if scene is not None:
            with self._lock:
                self.failure_seen |= scene["failure"]
                self.success_seen = scene["success"]

    # ---- the loop -----------------------------------------------------------
    def _tick(self) -> None:
        now = time.monotonic()
        if self.scripted is not None:
            with self._lock:
                positions = dict(self.positions)
                failure, self.failure_seen = self.failure_seen, False
            tcp = positions.get(TCP)
            have_all = all(s in positions for s in self.spec.required_sources)
            success = self.success_seen or (have_all and self.spec.success(positions))
            velocity, actions = self.scripted.tick(now, None if self.resetting else tcp, success,
                                                   failure and self.session.recording)
            axes = None
            if velocity is not None:
                self._publish_twist(np.asarray(velocity), np.zeros(3))
        else:
            axes, actions = self.input.poll(now)
            if axes is not None:
                linear, angular = twist(axes, self.config.teleop, self.session.speed_scale)
                self._publish_twist(linear, angular)
        for action in actions:
            with self._session_lock:
                if self.resetting and not self.session.recording and action in ("start", "toggle"):
                    self.session.message = "wait: the arm is going home"
                    continue
                events = self.session.handle(action)
            for event in events:
                self.operator_pub.publish(String(data=api.OPERATOR_PAYLOAD.to_json(event)))
                self.get_logger().info(f"operator: {event['action']} episode {event['episode']} ({event['kind']})"
                                       + (f": {event['outcome']}" if "outcome" in event else ""))
                if event["action"] in ("stop", "discard") and not self.session.recording:
                    self._after_episode()
        self._show_status(describe(axes))
        if self.episodes and self.session.completed >= self.episodes and not self.session.recording \
                and not self.resetting:
            self.done = True

    def _publish_twist(self, linear: np.ndarray, angular: np.ndarray) -> None:
        msg = TwistStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = api.BASE_FRAME
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in linear)
        msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = (float(v) for v in angular)
        self.command_pub.publish(msg)

    def _after_episode(self) -> None:
        if self.resetting:
            return
        if not self.reset_after:
            self._reset_finished(True)
            return
        if not self.reset_client.service_is_ready():
            self.get_logger().warning(f"{api.ROBOT_RESET.name} not available: reset the arm by hand")
            self._reset_finished(False)
            return
        self.resetting = True
        self.session.message = "resetting (arm going home)"
        self.reset_client.call_async(Trigger.Request()).add_done_callback(
            lambda future: self._reset_finished(bool(future.result() and future.result().success)))

    def _reset_finished(self, ok: bool) -> None:
        self.resetting = False
        if not ok:
            self.session.message = "reset failed or unavailable: check the arm"
        if self.simulated:  # the service put the objects back too
            with self._session_lock:
                events = self.session.handle("reset_done")
            for event in events:
                self.operator_pub.publish(String(data=api.OPERATOR_PAYLOAD.to_json(event)))
            if self.scripted is not None:
                self.scripted.reset_done()
        elif ok:
            self.session.message = "arm home: put the objects back, then reset done"

    def _show_status(self, moving: str) -> None:
        line = self.session.status_line(moving)
        now = time.monotonic()
        if self.tty:
            if line != self._last_status and now - self._last_status_print >= 0.1:
                columns = 120
                sys.stderr.write("\r\x1b[2K" + line[:columns])
                sys.stderr.flush()
                self._last_status, self._last_status_print = line, now
        elif self.session.message and self.session.message != self._last_status:
            self._last_status = self.session.message
            print(f"[teleop] {line}", file=sys.stderr, flush=True)

    done = False

    def shutdown(self) -> None:
        self.timer.cancel()
        if self.terminal is not None:
            self.terminal.__exit__(None, None, None)
            self.terminal = None
            if self.tty:
                sys.stderr.write("\n")
        if self.session.recording:  # the episode never finished: say so to the recorder
            for event in self.session.handle("discard"):
                self.operator_pub.publish(String(data=api.OPERATOR_PAYLOAD.to_json(event)))


def main(args: list[str] | None = None) -> None:
    run_node(PROGRAM, TeleopNode, args, exit_when=lambda node: getattr(node, "done", False))


if __name__ == "__main__":
    main(sys.argv)

"""franka node: the only process that moves the FR3 (through franky / libfranka).

Every command from upstream (shield on /farl/robot/command, human on
/farl/teleop/command) goes through `safety.CommandFilter` before it reaches the
arm: NaN/inf and wrong frames rejected, speed clipped, workspace box enforced,
stale commands stopped by the watchdog, teleop overriding while held. The
filter's decision is streamed at `rate_hz` from a dedicated thread, so callback
load (services, status, other subscribers) never delays the control loop. A
fresh valid command wakes that thread and goes to the arm at once (then again
every period while it stays fresh): waiting for the next tick would add up to
a whole period of latency, at random, between the actor and the arm — a delay
the training twin does not have.

Parameters (defaults from the task config)
  task_config (string)      task YAML: a task name or a path relative to config/
  robot_ip    (string)      FCI address of the arm / franky-sim's loopback address
  simulated   (string|bool) "sim"/"real" (or true/false): in sim, reset also resets the scene
  rate_hz     (double)      command streaming rate; default control.rate_hz
  autostart   (bool)        configure and activate on start (false: wait for a lifecycle manager)
  allow_non_rt_kernel (bool) run without real-time although robot.realtime says enforce, on a
                            non-PREEMPT_RT kernel (default false: refuse to start; logged as an error)

Publishes  /farl/robot/joint_states (JointState), /farl/robot/ee_pose (PoseStamped, frame base)
           at control.state_rate_hz; /farl/robot/executed (TwistStamped, base): every velocity sent
           to the arm, as sent; /farl/robot/status (DiagnosticArray) at
           control.status_rate_hz with keys: mode (unconfigured | inactive | idle | autonomous |
           teleop | stopped | resetting | error | finalized), watchdog, source, last_reasons, last_rejection, rejected_count,
           clipped_count, watchdog_trips, refused_count, error_count, last_error,
           loop_period_p50_ms, loop_period_p99_ms, sim_real_time_factor, rate_hz.
Services   /farl/robot/stop (Trigger): stop now and refuse motion until reset.
           /farl/robot/reset (Trigger): stop, joint motion to robot.home_joints, in sim
           also /farl/sim/reset_scene; then motion is allowed again.

A managed (lifecycle) node: configure = connect to the arm and publish its
state; activate = accept commands and stream them; deactivate = stop the arm and
refuse commands (state keeps flowing); cleanup = disconnect; shutdown (or
SIGINT/SIGTERM) = stop and disconnect. `farl launch` and the launch file drive
configure → activate (parameter autostart:=false); run on its own
(autostart:=true, the default) it does both itself and exits 1 with one error
line if the arm cannot be reached. A transition that is not allowed from the
current state is refused, never fatal.

The arm is stopped on SIGINT/SIGTERM and on any exception (try/finally). A
process that crashes upstream simply stops sending: the watchdog stops the arm
within command_timeout_s plus one control period.
"""
from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import threading
import time
from collections import deque

import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String
from std_srvs.srv import Trigger

from farl_common import interface as api
from farl_common.errors import FarlInputError, exit_on_input_error
from farl_common.interface import PayloadReader
from farl_common.task_config import load_task_config
from farl_control.robot.arm import ArmError, ArmState, FrankyArm
from farl_control.robot.realtime import OVERRIDE_PARAMETER, plan_realtime, read_kernel_facts
from farl_control.robot.safety import AUTONOMOUS, TELEOP, CommandFilter, Decision
from farl_control.ros.endpoints import client, publisher, service, subscription
from farl_control.ros.messages import make_joint_state, make_pose, make_status, twist_to_command
from farl_control.ros.spin_thread import SpinThread, tear_down
from farl_control.ros.stop_signals import route_stop_signals

PROGRAM = "franka_node"
STATUS_NAME = "farl/franka"
PERIOD_WINDOW = 200  # control periods kept for the p50/p99 in the status
SIM_RESET_TIMEOUT_S = 5.0

MODES = ("unconfigured", "inactive", "idle", "autonomous", "teleop", "stopped", "resetting", "error", "finalized")
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
RCLError = _rclpy.RCLError  # what rclpy's lifecycle state machine raises for a transition it does not have


def parse_simulated(value: object) -> bool:
    """`simulated` accepts the launcher's robot:=sim|real or a bool."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("sim", "true", "1", "yes"):
        return True
    if text in ("real", "false", "0", "no"):
        return False
    raise FarlInputError(None, f"expected sim or real (or true/false), got {value!r}", key="parameter simulated")


class FrankaNode(LifecycleNode):
    def __init__(self) -> None:
        super().__init__("franka")
        self._refuse_invalid_transitions()
        self.declare_parameter("task_config", "tasks/fragile_push_wall.yaml",
                               ParameterDescriptor(description="Task YAML: a task name or a path relative to config/"))
        self.config = load_task_config(self.get_parameter("task_config").value)
        ctrl = self.config.control
        self.declare_parameter("robot_ip", "127.0.0.1",
                               ParameterDescriptor(description="FCI address of the arm, or franky-sim's loopback address"))
        self.declare_parameter("simulated", "sim", ParameterDescriptor(
            description="sim or real (or true/false): in sim, reset also resets the scene via " + api.SIM_RESET_SCENE.name,
            dynamic_typing=True))
        self.declare_parameter("rate_hz", ctrl.rate_hz, ParameterDescriptor(
            description="Rate (Hz) at which filtered velocity commands are streamed to the arm",
            type=ParameterType.PARAMETER_DOUBLE))
        self.declare_parameter("autostart", True, ParameterDescriptor(
            description="Configure (connect) and activate (stream) on start; false = wait for the "
                        "lifecycle transitions of a manager (farl launch, the launch file)"))
        self.autostart = bool(self.get_parameter("autostart").value)
        self.robot_ip = str(self.get_parameter("robot_ip").value)
        self.simulated = parse_simulated(self.get_parameter("simulated").value)
        self.rate_hz = float(self.get_parameter("rate_hz").value)
        if not 0.0 < self.rate_hz <= 1000.0:
            raise FarlInputError(None, f"must be in (0, 1000], got {self.rate_hz}", key="parameter rate_hz")

        self.limits = dataclasses.replace(ctrl, rate_hz=self.rate_hz)  # the look-ahead follows the actual rate
        self.filter = CommandFilter(self.limits)
        self.declare_parameter(OVERRIDE_PARAMETER, False, ParameterDescriptor(
            description="Run without real-time on a kernel without PREEMPT_RT although robot.realtime enforces "
                        "it (bench tests only; logged as an error). false: refuse to start on such a kernel"))
        realtime = plan_realtime(self.config.robot.realtime, self.simulated, read_kernel_facts(),
                                 bool(self.get_parameter(OVERRIDE_PARAMETER).value), source=self.config.path)
        if realtime.warning:
            self.get_logger().error(realtime.warning)
        self.arm = FrankyArm(self.robot_ip, self.config.robot, hold_s=ctrl.command_timeout_s,
                             realtime=realtime.enforce)
        self.lock = threading.Lock()
        self.shutdown_event = threading.Event()  # the process is ending (signal, or a loop failed)
        self.state_stop = threading.Event()  # ends the state loop (cleanup, shutdown)
        self.motion_stop = threading.Event()  # ends the control loop (deactivate, cleanup, shutdown)
        self.wake = threading.Event()  # a fresh command (or a stop) wakes the control loop
        self.fatal: str | None = None
        self.lifecycle = "unconfigured"  # unconfigured | inactive | active | finalized
        self.state_thread: threading.Thread | None = None
        self.control_thread: threading.Thread | None = None

        # Mode and counters, all guarded by self.lock.
        self.stopped = False
        self.resetting = False
        self.error_pending = False  # after a reflex: hold still until the next valid command
        self.seen_errors = 0
        self.decision = Decision((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), None)
        self.last_reasons: tuple[str, ...] = ()
        self.last_rejection = ""
        self.rejected = 0
        self.clipped = 0
        self.watchdog_trips = 0
        self.refused = 0
        self.stop_requests = 0  # a stop during a reset wins over the reset
        self.periods: deque[float] = deque(maxlen=PERIOD_WINDOW)
        self.sim_rtf: float | None = None
        self.latest_state: ArmState | None = None

        io_group = ReentrantCallbackGroup()
        self.joint_pub = publisher(self, api.JOINT_STATES)
        self.pose_pub = publisher(self, api.EE_POSE)
        self.status_pub = publisher(self, api.ROBOT_STATUS)
        self.executed_pub = publisher(self, api.EXECUTED_COMMAND)
        subscription(self, api.ROBOT_COMMAND, lambda m: self._on_command(m, AUTONOMOUS), callback_group=io_group)
        subscription(self, api.TELEOP_COMMAND, lambda m: self._on_command(m, TELEOP), callback_group=io_group)
        service_group = MutuallyExclusiveCallbackGroup()  # one stop/reset at a time
        service(self, api.ROBOT_STOP, self._on_stop, callback_group=io_group)
        service(self, api.ROBOT_RESET, self._on_reset, callback_group=service_group)
        self.create_timer(1.0 / ctrl.status_rate_hz, self._publish_status, callback_group=io_group)
        self.scene_reset = None
        if self.simulated:
            self.scene_reset = client(self, api.SIM_RESET_SCENE, callback_group=io_group)
            self.scene_reader = PayloadReader(api.SCENE_STATE_PAYLOAD, self._warn)
            subscription(self, api.SCENE_STATE, self._on_scene_state, callback_group=io_group)

    # ---- lifecycle -------------------------------------------------------------
    def _refuse_invalid_transitions(self) -> None:
        """rclpy raises out of the change_state service on a transition the current state does not
        have (e.g. activate while unconfigured), which would end the node that holds the arm:
        answer success=false instead."""
        served = self._service_change_state.callback

        def change_state(request, response):
            try:
                return served(request, response)
            except RCLError:
                self.get_logger().warning(f"refused lifecycle transition {request.transition.id} "
                                          f"{request.transition.label!r} in state {self.lifecycle}")
                response.success = False
                return response

        self._service_change_state.callback = change_state

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Connect to the arm (retrying while franky-sim starts) and publish its state."""
        try:
            self.arm.connect(cancel=self.shutdown_event)
            self.latest_state = self.arm.state()
        except ArmError as error:
            print(f"{PROGRAM}: error: {error}", file=sys.stderr, flush=True)
            return FAILURE
        self.state_stop.clear()
        self.state_thread = self._start_loop(self._state_loop, "state")
        self.lifecycle = "inactive"
        self.get_logger().info(f"connected to the arm at {self.robot_ip} ({'sim' if self.simulated else 'real'}), "
                               f"task {self.config.task}; inactive: commands refused until activated")
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Accept commands and stream the filtered ones at rate_hz."""
        with self.lock:
            self.filter.clear()  # nothing sent while inactive may move the arm now
            self.error_pending = False
            self.decision = Decision((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), None)
        self.motion_stop.clear()
        self.control_thread = self._start_loop(self._control_loop, "control")
        self.lifecycle = "active"
        self.get_logger().info(f"active: streaming filtered commands at {self.rate_hz:g} Hz")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Refuse commands and stop the arm; its state keeps flowing."""
        self.lifecycle = "inactive"
        self._stop_motion()
        self.get_logger().info("inactive: arm stopped, commands refused")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._halt()
        self.lifecycle = "unconfigured"
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._halt()
        self.lifecycle = "finalized"
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._halt()
        self.lifecycle = "unconfigured"
        return SUCCESS

    def shutdown(self) -> None:
        """The process ends (signal, or a loop failed): the lifecycle shutdown, so the arm stops. Idempotent."""
        self.shutdown_event.set()  # also cancels a connect still retrying
        if self.lifecycle != "finalized":
            try:
                self.trigger_shutdown()
            except RCLError:  # mid-transition (e.g. configuring): halt directly
                pass
        self._halt()
        self.lifecycle = "finalized"

    def _halt(self) -> None:
        """Stop the control loop and the arm, then the state loop, then disconnect."""
        self.lifecycle = "unconfigured" if self.lifecycle == "active" else self.lifecycle
        self._stop_motion()
        self.state_stop.set()
        self._join(self.state_thread)
        try:
            self.arm.disconnect()
        except Exception as error:  # the arm may already be gone; nothing else to do
            self.get_logger().error(f"stopping the arm failed: {error}")

    def _stop_motion(self) -> None:
        self.motion_stop.set()
        self.wake.set()
        self._join(self.control_thread)
        try:
            self.arm.stop()
        except Exception as error:  # noqa: BLE001 - reported; the arm's own motion timeout still stops it
            self.get_logger().error(f"stopping the arm failed: {error}")

    @staticmethod
    def _join(thread: threading.Thread | None) -> None:
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    def _start_loop(self, loop, name: str) -> threading.Thread:
        thread = threading.Thread(target=self._guarded, args=(loop,), name=name, daemon=True)
        thread.start()
        return thread

    def _guarded(self, loop) -> None:
        """A loop that dies takes the node down (and the arm stops) instead of leaving it half-alive."""
        try:
            loop()
        except Exception as error:
            self.fatal = f"{loop.__name__} failed: {type(error).__name__}: {error}"
            self.shutdown_event.set()

    # ---- command intake ----------------------------------------------------------
    def _on_command(self, msg: TwistStamped, source: str) -> None:
        command = twist_to_command(msg, source, time.monotonic())
        with self.lock:
            if self.stopped or self.resetting or self.lifecycle != "active":
                self.refused += 1
                return
            reason = self.filter.receive(command)
            if reason is not None:
                self.rejected += 1
                self.last_rejection = reason
                self.last_reasons = (reason,)
                return
            if self.error_pending:
                self.error_pending = False  # the next valid command resumes motion after a reflex
        self.wake.set()

    def _on_scene_state(self, msg: String) -> None:
        scene = self.scene_reader.json(msg.data)
        if scene is not None:
            self.sim_rtf = scene["real_time_factor"]

    def _warn(self, line: str) -> None:
        self.get_logger().warning(line, throttle_duration_sec=5.0)

    # ---- the control loop ----------------------------------------------------------
    def _tick(self, now: float) -> Decision | None:
        """Decide this period's command; None = send nothing (stopped / resetting)."""
        state = self.latest_state
        with self.lock:
            if self.arm.error_count != self.seen_errors:  # a reflex happened while sending
                self.seen_errors = self.arm.error_count
                self.error_pending = True
                self.filter.clear()
            if self.stopped or self.resetting:
                return None
            if self.error_pending or state is None:
                decision = Decision((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), None)
            else:
                decision = self.filter.decide(now, state.ee_pos)
            if decision.watchdog and not self.decision.watchdog:
                self.watchdog_trips += 1
            if decision.clipped:
                self.clipped += 1
            if decision.reasons:
                self.last_reasons = decision.reasons
            self.decision = decision
            return decision

    def _control_loop(self) -> None:
        period = 1.0 / self.rate_hz
        next_tick = time.monotonic()
        last = None
        was_moving = False
        woken = False
        while not self.motion_stop.is_set():
            now = time.monotonic()
            if last is not None and not woken:  # the timer's own period (its jitter is what we report)
                self.periods.append(now - last)
            if not woken:
                last = now
            decision = self._tick(now)
            if decision is not None and not (decision.is_zero and not was_moving):
                # Zero is streamed until the arm has been told to rest once; an idle arm gets nothing.
                self.arm.send(decision.linear, decision.angular)
                self._publish_executed(decision)
                was_moving = not decision.is_zero
            elif decision is None:
                was_moving = False
            if woken:  # a fresh command was just sent: the next re-send is one period from now
                next_tick = now + period
                last = now
            else:
                next_tick += period
            delay = next_tick - time.monotonic()
            if delay < 0:  # overran: skip the lost ticks instead of bursting
                next_tick = time.monotonic()
                delay = 0.0
            woken = self.wake.wait(delay)
            self.wake.clear()

    def _publish_executed(self, decision: Decision) -> None:
        """What the arm was just told (recorded with demos; the learner's executed action)."""
        msg = TwistStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = api.BASE_FRAME
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = decision.linear
        msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = decision.angular
        self.executed_pub.publish(msg)

    # ---- state publishing ----------------------------------------------------------
    def _state_loop(self) -> None:
        period = 1.0 / self.config.control.state_rate_hz
        next_tick = time.monotonic()
        while not self.state_stop.is_set():
            state = self.arm.state()
            self.latest_state = state
            stamp = self.get_clock().now().to_msg()
            self.joint_pub.publish(make_joint_state(state.q, state.dq, state.tau, stamp))
            self.pose_pub.publish(make_pose(state.ee_pos, state.ee_quat_xyzw, stamp))
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay < 0:
                next_tick = time.monotonic()
                delay = 0.0
            self.state_stop.wait(delay)

    # ---- services ---------------------------------------------------------------
    def _on_stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self.lock:
            self.stopped = True
            self.stop_requests += 1
            self.filter.clear()
        at_rest = self.arm.stop()
        response.success = True
        response.message = "stopped; motion refused until /farl/robot/reset" + ("" if at_rest else " (still decelerating)")
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self.lifecycle != "active":
            response.success = False
            response.message = f"the control node is {self.lifecycle}: configure and activate it first"
            return response
        with self.lock:
            self.resetting = True
            self.filter.clear()
            stops_before = self.stop_requests
        try:
            self.arm.go_home(self.config.robot.home_joints)
            if self.simulated:
                error = self._reset_scene()
                if error:
                    raise ArmError(error)
        except ArmError as error:
            with self.lock:
                self.resetting = False
                self.stopped = True
                interrupted = self.stop_requests != stops_before
            response.success = False
            response.message = ("reset interrupted by /farl/robot/stop; motion stays refused" if interrupted
                                else f"reset failed, motion stays refused: {error}")
            return response
        with self.lock:
            self.filter.clear()
            self.resetting = False
            if self.stop_requests != stops_before:
                response.success = False
                response.message = "reset interrupted by /farl/robot/stop; motion stays refused"
                return response
            self.stopped = False
            self.error_pending = False
        response.success = True
        response.message = "at home" + (" and scene reset" if self.simulated else "") + "; motion allowed"
        return response

    def _reset_scene(self) -> str | None:
        assert self.scene_reset is not None
        if not self.scene_reset.wait_for_service(timeout_sec=SIM_RESET_TIMEOUT_S):
            return f"{api.SIM_RESET_SCENE.name} is not available (is sim_robot_node running?)"
        done = threading.Event()
        future = self.scene_reset.call_async(Trigger.Request())
        future.add_done_callback(lambda _: done.set())
        if not done.wait(SIM_RESET_TIMEOUT_S):
            return f"{api.SIM_RESET_SCENE.name} did not answer within {SIM_RESET_TIMEOUT_S:g} s"
        result = future.result()
        return None if result.success else f"scene reset failed: {result.message}"

    # ---- status -------------------------------------------------------------------
    def mode(self) -> str:
        if self.lifecycle != "active":
            return self.lifecycle
        if self.resetting:
            return "resetting"
        if self.stopped:
            return "stopped"
        if self.error_pending:
            return "error"
        return self.decision.source or "idle"

    def _publish_status(self) -> None:
        with self.lock:
            mode = self.mode()
            periods = sorted(self.periods)
            values = {
                "mode": mode,
                "watchdog": "tripped" if self.decision.watchdog else "ok",
                "source": self.decision.source or "none",
                "last_reasons": " | ".join(self.last_reasons),
                "last_rejection": self.last_rejection,
                "rejected_count": self.rejected,
                "clipped_count": self.clipped,
                "watchdog_trips": self.watchdog_trips,
                "refused_count": self.refused,
                "error_count": self.arm.error_count,
                "last_error": self.arm.last_error or "",
                "loop_period_p50_ms": f"{1000 * statistics.median(periods):.2f}" if periods else "",
                "loop_period_p99_ms": f"{1000 * periods[int(0.99 * (len(periods) - 1))]:.2f}" if periods else "",
                "sim_real_time_factor": "" if self.sim_rtf is None else f"{self.sim_rtf:.3f}",
                "rate_hz": f"{self.rate_hz:g}",
            }
        level = DiagnosticStatus.ERROR if mode == "error" else (
            DiagnosticStatus.WARN if mode in ("stopped", "unconfigured", "finalized") or values["watchdog"] == "tripped"
            else DiagnosticStatus.OK)
        self.status_pub.publish(make_status(STATUS_NAME, level, mode, values, self.get_clock().now().to_msg(),
                                            hardware_id=self.robot_ip))


def main(args: list[str] | None = None) -> None:
    done = threading.Event()
    node: FrankaNode | None = None

    def on_signal() -> None:
        done.set()
        if node is not None:
            node.shutdown_event.set()  # a connect still retrying gives up now

    route_stop_signals(on_signal)  # before any thread starts: libfranka's I/O must never take a signal
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    spin: SpinThread | None = None
    executor = MultiThreadedExecutor(num_threads=3)
    code = 0
    try:
        with exit_on_input_error(PROGRAM):
            node = FrankaNode()
        executor.add_node(node)
        spin = SpinThread(executor, name=PROGRAM)
        spin.start()
        if node.autostart and not done.is_set():
            if node.trigger_configure() != SUCCESS:  # on_configure printed why
                code = 1 if not done.is_set() else 0
            elif node.trigger_activate() != SUCCESS:
                print(f"{PROGRAM}: error: activation failed; arm stopped", file=sys.stderr, flush=True)
                code = 1
        while code == 0 and not done.wait(0.1):
            if node.fatal:
                print(f"{PROGRAM}: error: {node.fatal}; arm stopped", file=sys.stderr, flush=True)
                code = 1
            elif not spin.is_alive():
                print(f"{PROGRAM}: error: executor stopped: {spin.error}; arm stopped", file=sys.stderr, flush=True)
                code = 1
    finally:
        tear_down(node, spin, executor, PROGRAM)  # node.shutdown() stops the arm whatever brought us here
    if node is not None and node.arm.unusable:
        # A helper thread still waits in franky's destructor for the motion that would not end. The interpreter's
        # finalization must not wait for it: this process ending is what closes the connection (arm stopped).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()

"""The FR3 as a small arm interface, over franky (libfranka) only.

LeRobot-style: connect(), state(), send(twist) → twist actually sent, stop(),
go_home(joints), recover(), disconnect(). The same code drives the real arm and
franky-sim, which serves the libfranka protocol from MuJoCo.

Velocity commands are asynchronous `CartesianVelocityMotion`s held for
`hold_s` (the control node passes its command timeout): each new command takes
over the previous one seamlessly, and if the control loop itself stalls, the
motion runs out and libfranka decelerates the arm to rest — a second watchdog
below the one in `safety`.

A libfranka reflex or control error (`franky.ControlException` and friends)
does not propagate: it is recorded in `last_error`, automatic error recovery
is called, and `send` returns zero until the caller decides motion may resume
(the control node resumes on the next valid command).

A motion that neither finishes nor stops (seen twice in hundreds of go-homes
against franky-sim on a loaded machine: franky kept the joint motion as
"running", every later motion was refused with "the type of motion cannot
change") is ended by re-opening the connection: libfranka stops the arm when
its connection closes, and the new one starts with no motion running.

Closing is bounded. franky's Robot destructor stops the running motion and
then waits for it to end with no time limit, so a motion that truly will not
end would hang whoever drops the last reference, holding the motion lock the
shutdown path needs (seen once in CI: the reset service never answered and
the node had to be killed). The old robot is therefore dropped on a helper
thread and waited for `robot.connect_timeout_s`; if it has not closed by then
the arm is marked unusable, every later call raises an ArmError that says so,
and the control node exits: the process ending closes the connection, which
stops the arm (libfranka's rule on the real arm, franky-sim's in sim).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Sequence

import franky

from farl_common.task_config import RobotConfig

Vec3 = tuple[float, float, float]
ZERO3: Vec3 = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class ArmState:
    """Measured state; poses in the base frame, quaternion (x, y, z, w)."""

    q: tuple[float, ...]
    dq: tuple[float, ...]
    tau: tuple[float, ...]
    ee_pos: Vec3
    ee_quat_xyzw: tuple[float, float, float, float]
    stamp: float  # time.monotonic() when read


def _drop_realtime_priority() -> None:
    """Put the calling thread back to normal scheduling after libfranka raised it.

    libfranka makes the thread that constructs the robot SCHED_FIFO when it can
    (as root it can). In a Python process that thread and every thread started
    from it afterwards (executor, state and control loops) would then hold the
    CPU against franky-sim and the rest of the stack: measured, the simulated
    arm dropped to a quarter of real time. The 1 kHz loop that needs real-time
    priority is libfranka's own motion thread, which sets its priority itself.
    """
    if hasattr(os, "sched_setscheduler"):
        try:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            pass


# What franky raises when a motion cannot be started or fails. InvalidMotionTypeException (a new
# motion of another type while one still runs, e.g. a velocity command during go-home) is not a
# franky.Exception; RuntimeError is Ruckig failing inside an asynchronous motion.
FRANKY_ERRORS = (franky.Exception, franky.InvalidMotionTypeException, RuntimeError)


class ArmError(RuntimeError):
    """The arm could not be reached or refused an operation; the message says what to check."""


class _MotionWillNotEnd(Exception):
    """A motion is still running after it should have finished and stop() could not end it."""


class FrankyArm:
    """One FR3 (real or franky-sim) at `hostname` through franky."""

    def __init__(self, hostname: str, robot: RobotConfig, hold_s: float, realtime: bool = False):
        """`realtime`: libfranka's RealtimeConfig.Enforce (decided by `robot.realtime.plan_realtime`),
        else Ignore (franky-sim, or a real arm explicitly allowed on a non-RT kernel)."""
        self.hostname = hostname
        self.realtime = realtime
        self.cfg = robot
        self.hold_ms = max(1, int(round(hold_s * 1000)))
        self.robot: franky.Robot | None = None
        self._lock = threading.Lock()  # one motion command at a time
        self.last_error: str | None = None
        self.error_count = 0
        self.error_time: float | None = None  # monotonic time of the last reflex / control error
        self._preempted = False  # stop() preempted a joint motion (go home)
        self._connection_open = threading.Event()  # cleared while the connection is being re-opened
        self._connection_open.set()
        self.reopen_count = 0
        self.unusable: str | None = None  # why the connection could not be closed; set once, never cleared

    # ---- lifecycle -------------------------------------------------------
    def connect(self, timeout_s: float | None = None, cancel: threading.Event | None = None) -> None:
        """Connect, retrying for `timeout_s` (franky-sim may still be starting) unless `cancel` is set."""
        timeout_s = self.cfg.connect_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.robot = franky.Robot(
                    self.hostname,
                    relative_dynamics_factor=self.cfg.relative_dynamics_factor,
                    default_torque_threshold=self.cfg.torque_threshold,
                    default_force_threshold=self.cfg.force_threshold,
                    realtime_config=(franky.RealtimeConfig.Enforce if self.realtime
                                     else franky.RealtimeConfig.Ignore),
                )
                break
            except franky.Exception as error:
                if time.monotonic() >= deadline:
                    raise ArmError(
                        f"cannot reach the arm at {self.hostname} within {timeout_s:g} s ({error}); "
                        "check robot_ip, that FCI is enabled (real) or sim_robot_node is running (sim)"
                    ) from None
                if cancel is not None and cancel.wait(0.5):
                    raise ArmError(f"connecting to the arm at {self.hostname} was cancelled") from None
                if cancel is None:
                    time.sleep(0.5)
        _drop_realtime_priority()
        if self.robot.has_errors:
            self.robot.recover_from_errors()

    def disconnect(self) -> None:
        """Stop and drop the connection (libfranka closes it when the object goes), bounded as in reopen()."""
        if self.robot is not None:
            self.stop()
            self._close()

    # ---- state -------------------------------------------------------------
    def state(self) -> ArmState:
        # One read of libfranka's state (when idle each read waits for the next 1 kHz packet).
        s = self._require().state
        pose = s.O_T_EE
        return ArmState(
            q=tuple(float(v) for v in s.q),
            dq=tuple(float(v) for v in s.dq),
            tau=tuple(float(v) for v in s.tau_J),
            ee_pos=tuple(float(v) for v in pose.translation),  # type: ignore[arg-type]
            ee_quat_xyzw=tuple(float(v) for v in pose.quaternion),  # type: ignore[arg-type]
            stamp=time.monotonic(),
        )

    # ---- motion --------------------------------------------------------------
    def send(self, linear: Vec3, angular: Vec3 = ZERO3) -> tuple[Vec3, Vec3]:
        """Stream one end-effector velocity (base frame); returns what was actually commanded."""
        motion = franky.CartesianVelocityMotion(
            franky.Twist(list(linear), list(angular)), duration=franky.Duration(self.hold_ms)
        )
        with self._lock:
            # The robot is taken under the lock: a thread waiting here must not keep the old connection
            # alive while `reopen` (which holds the lock) replaces it.
            r = self.robot
            if r is None:
                if not self._connection_open.is_set():
                    return ZERO3, ZERO3  # being re-opened: nothing to send to; the arm is stopped
                raise ArmError(self.unusable or "the arm is not connected")
            try:
                r.move(motion, asynchronous=True)
            except franky.InvalidMotionTypeException:
                # A pose or joint motion (go home) still runs: a velocity command must not replace it
                # mid-way, and the arm is not at fault. Nothing is sent; it ends on its own or on stop().
                return ZERO3, ZERO3
            except FRANKY_ERRORS as error:
                # RuntimeError: franky's motion planner (Ruckig) failing inside the previous asynchronous
                # motion, e.g. "Motion planner failed with error code -110", rethrown here. Seen under
                # heavy CPU load; it is not a franky.Exception and used to end the control loop.
                self._on_error(error)
                return ZERO3, ZERO3
        return linear, angular

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Decelerate to rest now; True once no motion is running."""
        with self._lock:
            r = self.robot  # under the lock, as in send()
            if r is None:
                return True
            try:
                r.move(franky.CartesianVelocityMotion(franky.Twist(list(ZERO3), list(ZERO3)),
                                                      duration=franky.Duration(1)), asynchronous=True)
                return bool(r.join_motion(timeout=timeout_s))
            except franky.InvalidMotionTypeException:
                # A pose or joint motion (go home) is running: preempt it instead, and wait until it
                # has really ended so that the next motion of another type can start.
                self._preempted = True
                try:
                    r.stop()
                    return bool(r.join_motion(timeout=timeout_s))
                except FRANKY_ERRORS as error:
                    self._on_error(error)
                    return not r.poll_motion() if self._safe_poll(r) else False
            except FRANKY_ERRORS as error:
                self._on_error(error)
                return not r.poll_motion() if self._safe_poll(r) else False

    def go_home(self, joints: Sequence[float], timeout_s: float | None = None) -> None:
        """Stop, lift (robot.reset_lift_z), then a joint motion to `joints`; ArmError if it fails,
        is stopped or overruns.

        The motion lock is held only to start each motion, so `stop()` can preempt
        it while this waits. If a motion will not end, the connection is re-opened
        (the arm stops) before the ArmError, so that the caller's next try can move.
        """
        timeout_s = self.cfg.motion_timeout_s if timeout_s is None else timeout_s
        try:
            self._go_home(joints, timeout_s)
            return
        except _MotionWillNotEnd as stuck:
            problem = str(stuck)  # outside this block: its traceback holds the old robot alive
        self.reopen()
        raise ArmError(f"{problem}; the connection to the arm was re-opened (arm stopped), "
                       "the next reset can move it")

    def _go_home(self, joints: Sequence[float], timeout_s: float) -> None:
        r = self._require()
        deadline = time.monotonic() + timeout_s
        if not self.stop() and not self.stop(timeout_s=max(0.0, deadline - time.monotonic())):
            # The velocity motion still runs after its stop (stop() waits 2 s; a loaded machine can take longer):
            # starting the lift or joint motion now would only be refused as a motion of another type.
            raise _MotionWillNotEnd(f"the running motion did not stop within {timeout_s:g} s "
                                    "(robot.motion_timeout_s)")
        self._preempted = False
        motions = []
        lift_z = self.cfg.reset_lift_z
        if lift_z is not None:
            pose = r.state.O_T_EE
            x, y, z = (float(v) for v in pose.translation)
            if z < lift_z:  # straight up first, orientation kept
                motions.append(franky.CartesianMotion(franky.RobotPose(franky.Affine([x, y, lift_z], pose.quaternion))))
        motions.append(franky.JointMotion(franky.JointState(list(joints))))
        try:
            for motion in motions:
                with self._lock:
                    r.move(motion, asynchronous=True)
                finished = r.join_motion(timeout=max(0.0, deadline - time.monotonic()))
                if not finished or self._preempted:
                    break
        except franky.InvalidMotionTypeException as error:
            if self._preempted:
                raise ArmError("stopped before reaching home") from None
            # stop() above returned, yet a motion of another type still runs.
            raise _MotionWillNotEnd(f"going home failed: {error}") from None
        except FRANKY_ERRORS as error:
            if self._preempted:  # our own stop(), not a fault of the arm
                raise ArmError("stopped before reaching home") from None
            self._on_error(error)
            raise ArmError(f"going home failed: {error}") from None
        if self._preempted:  # stop() ended the motion; franky may report that as finished, without an error
            raise ArmError("stopped before reaching home")
        if not finished:
            overrun = f"going home did not finish within {timeout_s:g} s (robot.motion_timeout_s)"
            if not self.stop():
                raise _MotionWillNotEnd(overrun + " and the motion would not stop")
            raise ArmError(overrun)

    def reopen(self) -> None:
        """Close the connection and open a new one (the arm stops; state() waits meanwhile).

        ArmError if the old connection will not close (the arm is then unusable) or no new one can be made."""
        self._connection_open.clear()
        try:
            self.reopen_count += 1
            self._close()
            with self._lock:
                self.connect()
        finally:
            self._connection_open.set()

    def _close(self) -> None:
        """Drop the robot (the last reference: libfranka closes the connection) on a helper thread, bounded.

        Outside the motion lock, so stop() and send() stay answerable meanwhile (send() returns zero while
        there is no robot)."""
        with self._lock:
            doomed = [self.robot]  # the helper thread's clear() drops the last reference, there
            self.robot = None
        closer = threading.Thread(target=doomed.clear, name="franky-close", daemon=True)
        del doomed
        closer.start()
        closer.join(timeout=self.cfg.connect_timeout_s)
        if closer.is_alive():
            self.unusable = (f"the arm's motion would not end and its connection did not close within "
                             f"{self.cfg.connect_timeout_s:g} s (robot.connect_timeout_s); restart the control "
                             "node (its exit closes the connection, which stops the arm)")
            raise ArmError(self.unusable)

    def recover(self) -> bool:
        """libfranka's automatic error recovery; True if the arm is usable again."""
        r = self._require()
        try:
            return bool(r.recover_from_errors())
        except franky.Exception as error:
            self.last_error = f"error recovery failed: {error}"
            return False

    # ---- internals -----------------------------------------------------------
    def _require(self) -> franky.Robot:
        if self.robot is None and not self._connection_open.is_set():
            # A re-open in progress: closing and connecting are each bounded by connect_timeout_s (connect() may
            # overrun its deadline by one attempt, hence the slack).
            self._connection_open.wait(3 * self.cfg.connect_timeout_s)
        if self.unusable:
            raise ArmError(self.unusable)
        robot = self.robot
        if robot is None:
            raise ArmError("the arm is not connected")
        return robot

    @staticmethod
    def _safe_poll(r: franky.Robot) -> bool:
        try:
            r.poll_motion()
            return True
        except FRANKY_ERRORS:
            return False

    def _on_error(self, error: Exception) -> None:
        self.error_count += 1
        self.error_time = time.monotonic()
        self.last_error = f"{type(error).__name__}: {error}"
        self.recover()

"""The arm interface's reaction to libfranka errors (a reflex cannot be provoked in franky-sim).

A stand-in for `franky.Robot` raises the real `franky.ControlException`; the
arm must not propagate it, must call automatic error recovery, report the
error, and return zero as the twist actually sent.
"""
from __future__ import annotations

import threading
import time

import franky
import pytest

from farl_control.robot.arm import ArmError, FrankyArm
from farl_common.task_config import load_task_config

REFLEX = 'libfranka: Move command aborted: motion aborted by reflex! ["cartesian_reflex"]'


class _State:
    def __init__(self, tcp):
        self.O_T_EE = franky.Affine(list(tcp), [1.0, 0.0, 0.0, 0.0])


class ReflexRobot:
    """Raises a reflex on the next move, like libfranka does after a collision."""

    has_errors = False

    def __init__(self, tcp=(0.555, -0.22, 0.30)):
        self.recoveries = 0
        self.moves = 0
        self.motions = []
        self.fail_next = True
        self.state = _State(tcp)

    def move(self, motion, asynchronous=False):
        self.moves += 1
        self.motions.append(motion)
        if self.fail_next:
            self.fail_next = False
            raise franky.ControlException(REFLEX)

    def recover_from_errors(self):
        self.recoveries += 1
        return True

    def join_motion(self, timeout=None):
        return True

    def poll_motion(self):
        return False


@pytest.fixture
def arm():
    config = load_task_config("fragile_push_wall")
    a = FrankyArm("127.0.0.1", config.robot, hold_s=config.control.command_timeout_s)
    a.robot = ReflexRobot()  # type: ignore[assignment]
    return a


def test_reflex_is_reported_recovered_and_nothing_sent(arm):
    sent = arm.send((0.05, 0.0, 0.0))
    assert sent == ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    assert arm.error_count == 1 and "reflex" in arm.last_error and arm.error_time is not None
    assert arm.robot.recoveries == 1
    # The next command goes through once recovered.
    assert arm.send((0.05, 0.0, 0.0)) == ((0.05, 0.0, 0.0), (0.0, 0.0, 0.0))
    assert arm.error_count == 1


def test_reflex_during_go_home_is_an_arm_error(arm):
    arm.robot.fail_next = False
    original = arm.robot.move

    def move(motion, asynchronous=False):
        if isinstance(motion, franky.JointMotion):
            raise franky.ControlException(REFLEX)
        return original(motion, asynchronous)

    arm.robot.move = move
    with pytest.raises(ArmError, match="going home failed"):
        arm.go_home(load_task_config("fragile_push_wall").robot.home_joints)
    assert arm.robot.recoveries == 1


def test_go_home_from_low_lifts_straight_up_first(arm):
    """A TCP below robot.reset_lift_z rises vertically before the joint motion home."""
    lift_z = arm.cfg.reset_lift_z
    assert lift_z is not None
    arm.robot = ReflexRobot(tcp=(0.58, 0.05, 0.04))  # low, beside the wall, next to the pushed block
    arm.robot.fail_next = False
    arm.go_home(load_task_config("fragile_push_wall").robot.home_joints)
    kinds = [type(m).__name__ for m in arm.robot.motions]
    assert kinds[-2:] == ["CartesianMotion", "JointMotion"]
    target = arm.robot.motions[-2].target.pose.end_effector_pose
    assert list(target.translation) == pytest.approx([0.58, 0.05, lift_z])  # same x, y: straight up


def test_go_home_from_high_goes_straight_home(arm):
    arm.robot.fail_next = False
    arm.go_home(load_task_config("fragile_push_wall").robot.home_joints)
    assert [type(m).__name__ for m in arm.robot.motions][-1:] == ["JointMotion"]
    assert not any(type(m).__name__ == "CartesianMotion" for m in arm.robot.motions)


def test_unconnected_arm_refuses_clearly():
    config = load_task_config("fragile_push_wall")
    a = FrankyArm("127.0.0.1", config.robot, hold_s=0.3)
    with pytest.raises(ArmError, match="not connected"):
        a.send((0.0, 0.0, 0.0))
    assert a.stop() is True  # stopping nothing is fine (shutdown paths call it unconditionally)


class BusyRobot(ReflexRobot):
    """A pose or joint motion (go home) is still running: franky refuses a motion of another type."""

    def __init__(self):
        super().__init__()
        self.fail_next = False
        self.running = "JointMotion"
        self.stops = 0

    def move(self, motion, asynchronous=False):
        if self.running and type(motion).__name__ != self.running:
            raise franky.InvalidMotionTypeException(
                "The type of motion cannot change during runtime. Please ensure that the previous motion "
                "finished before using a new type of motion.")
        return super().move(motion, asynchronous)

    def stop(self):
        self.stops += 1
        self.running = None


def test_a_velocity_command_during_go_home_is_dropped_not_fatal(arm):
    """franky's InvalidMotionTypeException is not a franky.Exception: it once escaped a callback and
    took the control node down after a go-home overran. A velocity command then sends nothing."""
    arm.robot = BusyRobot()
    assert arm.send((0.05, 0.0, 0.0)) == ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    assert arm.error_count == 0 and arm.robot.recoveries == 0  # not a fault of the arm


def test_stop_preempts_a_running_go_home_and_waits_for_it(arm):
    arm.robot = BusyRobot()
    assert arm.stop() is True
    assert arm.robot.stops == 1
    # Once preempted, the next velocity command goes through.
    assert arm.send((0.05, 0.0, 0.0)) == ((0.05, 0.0, 0.0), (0.0, 0.0, 0.0))


class StuckMotionRobot(ReflexRobot):
    """A joint motion franky keeps as running: join never finishes, stop() cannot end it,
    and every motion of another type is refused, as seen against franky-sim under load."""

    def __init__(self):
        super().__init__(tcp=(0.555, -0.22, 0.40))  # above reset_lift_z: go-home is the joint motion only
        self.fail_next = False
        self.running_joint_motion = False

    def move(self, motion, asynchronous=False):
        if self.running_joint_motion and not isinstance(motion, franky.JointMotion):
            raise franky.InvalidMotionTypeException("The type of motion cannot change during runtime.")
        super().move(motion, asynchronous)
        if isinstance(motion, franky.JointMotion):
            self.running_joint_motion = True

    def stop(self):
        pass

    def join_motion(self, timeout=None):
        return not self.running_joint_motion


def test_a_motion_that_will_not_end_reopens_the_connection_so_the_next_reset_moves(arm, monkeypatch):
    import farl_control.robot.arm as arm_module

    stuck = StuckMotionRobot()
    arm.robot = stuck
    fresh = []

    def connect_new(*_args, **_kwargs):
        fresh.append(ReflexRobot(tcp=(0.555, -0.22, 0.40)))
        fresh[-1].fail_next = False
        return fresh[-1]

    monkeypatch.setattr(arm_module.franky, "Robot", connect_new)
    home = load_task_config("fragile_push_wall").robot.home_joints
    with pytest.raises(ArmError, match="would not stop; the connection to the arm was re-opened"):
        arm.go_home(home, timeout_s=0.05)
    assert arm.robot is fresh[0] and arm.reopen_count == 1
    arm.go_home(home, timeout_s=0.05)  # the next reset goes through on the new connection
    assert isinstance(fresh[0].motions[-1], franky.JointMotion)


def test_a_motion_of_another_type_refused_at_go_home_also_reopens(arm, monkeypatch):
    import farl_control.robot.arm as arm_module

    stuck = StuckMotionRobot()
    stuck.state = _State((0.555, -0.22, 0.10))  # below reset_lift_z: go-home starts with a Cartesian lift
    stuck.running_joint_motion = True
    arm.robot = stuck
    monkeypatch.setattr(arm_module.franky, "Robot", lambda *a, **k: ReflexRobot())
    with pytest.raises(ArmError, match="the running motion did not stop within 0.05 s.*re-opened"):
        arm.go_home(load_task_config("fragile_push_wall").robot.home_joints, timeout_s=0.05)
    assert arm.reopen_count == 1 and arm.robot is not stuck


class UnclosableRobot(StuckMotionRobot):
    """franky's destructor stops the running motion and waits for it to end, without a time limit: with a motion
    that will not end, dropping the last reference never returns."""

    def __init__(self, released: threading.Event):
        super().__init__()
        self.released = released

    def __del__(self):
        self.released.wait()


def test_a_connection_that_will_not_close_makes_the_arm_unusable_within_the_connect_timeout(monkeypatch):
    """Seen once in CI: the reset service hung for good in reopen() and the node had to be killed. Now the reset
    fails within the bound with a message that says what to do, and nothing else hangs on the motion lock."""
    import dataclasses
    import farl_control.robot.arm as arm_module

    config = load_task_config("fragile_push_wall")
    robot_config = dataclasses.replace(config.robot, connect_timeout_s=0.3)
    arm = FrankyArm("127.0.0.1", robot_config, hold_s=config.control.command_timeout_s)
    released = threading.Event()
    arm.robot = UnclosableRobot(released)
    connects = []
    monkeypatch.setattr(arm_module.franky, "Robot", lambda *a, **k: connects.append(1) or ReflexRobot())
    try:
        started = time.monotonic()
        with pytest.raises(ArmError, match="connection did not close within 0.3 s.*restart the control node"):
            arm.go_home(config.robot.home_joints, timeout_s=0.05)
        assert time.monotonic() - started < 2.0
        assert connects == []  # franky-sim takes one client: no new connection while the old one is open
        for call in (arm.state, lambda: arm.send((0.05, 0.0, 0.0))):
            with pytest.raises(ArmError, match="restart the control node"):
                call()
        assert arm.stop() is True  # the shutdown path does not wait for the stuck close
        arm.disconnect()
    finally:
        released.set()


def test_a_command_waiting_for_the_motion_lock_does_not_keep_the_old_connection_alive(arm):
    """reopen() holds the motion lock while it drops the old robot: a send() waiting for that lock must not
    hold a reference to it, or libfranka's connection stays open and the new one cannot be made."""
    import gc
    import threading
    import weakref

    old = arm.robot
    old.fail_next = False
    gone = weakref.ref(old)
    del old
    results = []
    arm._connection_open.clear()  # as reopen() does
    with arm._lock:
        sender = threading.Thread(target=lambda: results.append(arm.send((0.05, 0.0, 0.0))))
        sender.start()
        sender.join(timeout=0.2)  # now blocked on the lock
        assert sender.is_alive()
        arm.robot = None
        gc.collect()
        assert gone() is None, "a waiting send() kept the old robot alive"
    sender.join(timeout=2.0)
    arm._connection_open.set()
    assert results == [((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))]  # nothing sent while there is no connection


def test_a_go_home_that_stop_preempted_is_an_error_even_when_franky_reports_it_finished(arm):
    """franky can end a preempted joint motion without raising: going home must still report the stop,
    or the control node goes on to reset the scene (in sim: the arm is put home) despite it."""
    arm.robot = BusyRobot()
    arm.robot.running = None  # nothing runs when going home starts
    original_join = arm.robot.join_motion

    def join_motion(timeout=None):
        arm._preempted = True  # a stop() from another thread arrived while waiting
        return original_join(timeout)

    arm.robot.join_motion = join_motion
    with pytest.raises(ArmError, match="stopped before reaching home"):
        arm.go_home(load_task_config("fragile_push_wall").robot.home_joints, timeout_s=1.0)

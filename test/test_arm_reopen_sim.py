"""Re-opening the connection to franky-sim mid-motion: the arm stops, state reads go on, and
the next go-home moves it (the last resort of `FrankyArm.go_home` when a motion will not end)."""
from __future__ import annotations

import threading
import time

import franky
import pytest

from farl_common.task_config import load_task_config
from farl_control.robot.arm import FrankyArm

pytestmark = [pytest.mark.ros, pytest.mark.sim]

CONFIG = load_task_config("fragile_push_wall")


@pytest.fixture
def arm(processes, robot_ip):
    processes.start("sim_robot", ["sim_robot_node", "--ros-args", "-p", f"robot_ip:={robot_ip}"])
    a = FrankyArm(robot_ip, CONFIG.robot, hold_s=CONFIG.control.command_timeout_s)
    a.connect(timeout_s=60.0)
    yield a
    a.disconnect()


def test_reopening_mid_motion_stops_the_arm_and_the_next_go_home_moves_it(arm):
    home = list(CONFIG.robot.home_joints)
    target = list(home)
    target[0] += 0.6
    arm.robot.move(franky.JointMotion(franky.JointState(target), relative_dynamics_factor=0.05), asynchronous=True)
    time.sleep(1.0)
    assert arm.robot.is_in_control
    reads, stop_reading = [], threading.Event()

    def read_state() -> None:  # the control node's state loop keeps reading through the re-open
        while not stop_reading.is_set():
            reads.append(arm.state().q[0])
            time.sleep(0.01)

    reader = threading.Thread(target=read_state)
    reader.start()
    try:
        arm.reopen()
        assert not arm.robot.is_in_control
        q_after = arm.state().q[0]
        time.sleep(0.5)
        assert abs(arm.state().q[0] - q_after) < 2e-3, "the arm kept moving after the connection closed"
    finally:
        stop_reading.set()
        reader.join(timeout=5.0)
    assert reads and not reader.is_alive()
    arm.go_home(home, timeout_s=20.0)
    assert abs(arm.state().q[0] - home[0]) < 0.01 and arm.reopen_count == 1

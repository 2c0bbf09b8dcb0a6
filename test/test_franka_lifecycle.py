"""The control node as a managed (lifecycle) node, driven through its standard lifecycle services.

configure = connect to the arm and publish its state; activate = accept and
stream commands; deactivate = stop the arm and refuse commands; a transition the
current state does not have is refused, never fatal. `farl launch` drives
configure -> activate itself, and a configure that fails takes the stack down.
"""
from __future__ import annotations

import shutil
import signal
import sys
import time

import pytest
import yaml
from lifecycle_msgs.msg import Transition

from farl_common.paths import config_dir
from farl_control.launching.lifecycle import LifecycleClient
from farl_control.ros.client import RobotClient, dist
from test_franka_node_sim import CTRL, PERIOD, STARTUP_TIMEOUT_S, STOP_BOUND_S

pytestmark = [pytest.mark.ros]

SPEED = 0.05  # m/s, -y: well inside the box for the few seconds the test moves


def moved_while_streaming(robot: RobotClient, seconds: float) -> float:
    """Stream a -y command for `seconds`; how far the TCP went (m)."""
    start = robot.pos()
    robot.stream((0.0, -SPEED, 0.0), duration_s=seconds, rate_hz=CTRL.rate_hz)
    return dist(start, robot.pos())


@pytest.mark.sim
@pytest.mark.timeout(120)
def test_configure_connects_activate_streams_deactivate_stops(processes, robot_ip):
    processes.start("sim_robot", ["sim_robot_node", "--ros-args", "-p", f"robot_ip:={robot_ip}"])
    franka = processes.start("franka", ["franka_node", "--ros-args", "-p", f"robot_ip:={robot_ip}",
                                        "-p", "simulated:=sim", "-p", "autostart:=false"])
    robot, lifecycle = RobotClient("lifecycle_test_probe"), LifecycleClient("lifecycle_test_manager")
    try:
        # Unconfigured: no connection, so no state; status says so; motion services refuse.
        assert lifecycle.state("franka", STARTUP_TIMEOUT_S) == "unconfigured"
        assert robot.wait_for(lambda: robot.status.get("mode") == "unconfigured", 10.0)
        assert robot.pos() is None
        assert "configure and activate it first" in robot.call("reset", 10.0).message
        # A transition this state does not have is refused, and the node carries on.
        assert lifecycle.change("franka", Transition.TRANSITION_ACTIVATE) is False
        assert franka.alive()

        # configure: connected, state flowing, commands refused (counted), the arm does not move.
        assert lifecycle.change("franka", Transition.TRANSITION_CONFIGURE, 60.0) is True
        assert lifecycle.state("franka") == "inactive"
        assert robot.wait_for(lambda: robot.pos() is not None and robot.status.get("mode") == "inactive", 10.0)
        refused = int(robot.status["refused_count"])
        assert moved_while_streaming(robot, 1.0) < 0.001
        assert robot.wait_for(lambda: int(robot.status["refused_count"]) >= refused + 5, 3.0)

        # activate: reset works and commands move the arm.
        assert lifecycle.change("franka", Transition.TRANSITION_ACTIVATE) is True
        assert robot.call("reset", 40.0).success
        assert moved_while_streaming(robot, 1.5) > 0.02

        # deactivate while moving: the arm stops within the watchdog bound, commands are refused again,
        # and its state keeps flowing.
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.8:
            robot.send((0.0, SPEED, 0.0))
            time.sleep(PERIOD)
        samples = robot.samples_since(time.monotonic() - 0.2)
        assert dist(samples[0].pos, samples[-1].pos) > 0.002, "not moving before the deactivation"
        t_deactivate = time.monotonic()
        assert lifecycle.change("franka", Transition.TRANSITION_DEACTIVATE) is True
        still = robot.time_until_still(t_deactivate, timeout_s=5.0)
        print(f"\ndeactivated while moving at {SPEED} m/s: still after {still} s (bound {STOP_BOUND_S:.2f} s)")
        assert still is not None and still < STOP_BOUND_S
        assert robot.wait_for(lambda: robot.status.get("mode") == "inactive", 3.0)
        assert moved_while_streaming(robot, 1.0) < 0.001
        assert len(robot.samples_since(time.monotonic() - 0.5)) > 10

        # activate again: moving again; cleanup (from inactive) disconnects: the state stops.
        assert lifecycle.change("franka", Transition.TRANSITION_ACTIVATE) is True
        assert moved_while_streaming(robot, 1.5) > 0.02
        assert lifecycle.change("franka", Transition.TRANSITION_DEACTIVATE) is True
        assert lifecycle.change("franka", Transition.TRANSITION_CLEANUP) is True
        assert lifecycle.state("franka") == "unconfigured"
        time.sleep(0.5)
        assert len(robot.samples_since(time.monotonic() - 0.5)) == 0
    finally:
        lifecycle.close()
        robot.close()
    franka.popen.send_signal(signal.SIGTERM)
    assert franka.popen.wait(timeout=15) == 0
    assert "Traceback" not in franka.log_text() and "never retrieved" not in franka.log_text()


@pytest.mark.timeout(60)
def test_farl_launch_takes_the_stack_down_when_the_arm_cannot_be_configured(processes, tmp_path):
    """robot:=real at an address nothing answers on: configure fails after robot.connect_timeout_s."""
    config = tmp_path / "config"
    shutil.copytree(config_dir() / "tasks", config / "tasks")
    shutil.copytree(config_dir() / "stacks", config / "stacks")
    task = config / "tasks" / "fragile_push_wall.yaml"
    data = yaml.safe_load(task.read_text())
    data["robot"]["connect_timeout_s"] = 1.0
    task.write_text(yaml.safe_dump(data))
    launcher = processes.start("farl_launch", [sys.executable, "-m", "farl_learner.cli", "launch", "fragile_push_wall",
                                               "robot:=real", "robot_ip:=127.0.0.9", "autonomy:=false"],
                               env={"FARL_CONFIG_DIR": str(config)})
    code = launcher.popen.wait(timeout=45)
    log = launcher.log_text()
    assert code == 1, log
    assert "[launch] error: required node franka could not be brought up (configure failed): " \
           "franka_node: error: cannot reach the arm at 127.0.0.9" in log, log
    assert "[launch] franka stopped (exit code 0)" in log
    assert "Traceback" not in log and "never retrieved" not in log, log

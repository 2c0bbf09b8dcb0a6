"""Runs that stop when a required node dies, and nodes that never outlive their launcher.

- A child of `ManagedProcess` gets SIGTERM from the kernel when its owner is
  SIGKILLed, and shuts down through its own handler.
- `farl launch` SIGKILLed: its simulator and control node exit within seconds,
  and the simulator's address is free for the next run.
- `farl run` whose shield (or learner) cannot start: the run ends within
  seconds, exit 1, the node's own error line repeated at the end, the control
  node stopped cleanly (the arm stopped), and no traceback or "exception was
  never retrieved" anywhere in the output.
- `farl launch` whose managed control node cannot be configured (the arm is
  unreachable) takes the stack down the same way.
- `farl run` in sim whose control node crashes mid-run: the launcher starts it
  again, the monitor's next reset brings the arm home, and the run finishes.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from farl_common.paths import config_dir
from farl_control.launching.processes import free_loopback_ip as free_ip, loopback_port_free, wait_until
from model_folders import known_risk_folder

NOISE = re.compile(r"Traceback|never retrieved|Exception in thread|terminate called|a callback failed")


def gone(pid: int) -> bool:
    """The process no longer runs (absent, or a zombie waiting for its new parent to reap it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return "\nState:\tZ" in status


CHILD = textwrap.dedent("""
    import pathlib, signal, sys, time
    marker = pathlib.Path(sys.argv[1])
    def stop(*_):
        marker.write_text("SIGTERM")
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    marker.write_text("ready")
    while True:
        time.sleep(0.1)
""")
OWNER = textwrap.dedent("""
    import sys, time
    from farl_control.launching.processes import ManagedProcess
    child = ManagedProcess("child", [sys.executable, "-c", sys.argv[1], sys.argv[2]], log_path=sys.argv[3])
    print(child.pid, flush=True)
    time.sleep(120)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
@pytest.mark.timeout(60)
def test_a_child_is_told_to_stop_when_its_owner_is_killed_hard(tmp_path):
    marker = tmp_path / "marker"
    owner = subprocess.Popen([sys.executable, "-c", OWNER, CHILD, str(marker), str(tmp_path / "child.log")],
                             stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        child = int(owner.stdout.readline())
        assert wait_until(lambda: marker.exists() and marker.read_text() == "ready", 30.0)
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(timeout=10)
        assert wait_until(lambda: gone(child), 5.0), "the child outlived its SIGKILLed owner"
        assert marker.read_text() == "SIGTERM"  # it shut down through its handler, as a node stops the arm
    finally:
        if owner.poll() is None:
            os.killpg(owner.pid, signal.SIGKILL)


def launched_pids(log: str) -> dict[str, int]:
    return {name: int(pid) for name, pid in re.findall(r"\[launch\] started (\w+) \(pid (\d+)\)", log)}


@pytest.mark.ros
@pytest.mark.sim
@pytest.mark.timeout(120)
def test_farl_launch_killed_hard_leaves_no_node_behind(processes, robot_ip):
    launcher = processes.start("farl_launch", [sys.executable, "-m", "farl_learner.cli", "launch", "fragile_push_wall",
                                               "autonomy:=false", f"robot_ip:={robot_ip}"])
    assert wait_until(lambda: "[launch] franka configured and active" in launcher.log_text(), 60.0), \
        launcher.log_text()[-3000:]
    nodes = launched_pids(launcher.log_text())
    assert set(nodes) == {"sim_robot", "franka"}
    assert not loopback_port_free(robot_ip, 1337)  # franky-sim serves the arm there
    t_kill = time.monotonic()
    os.kill(launcher.pid, signal.SIGKILL)  # the launcher only: its nodes run in their own sessions
    launcher.popen.wait(timeout=10)
    assert wait_until(lambda: all(gone(pid) for pid in nodes.values()), 15.0), \
        f"nodes outlived their launcher: {[n for n, pid in nodes.items() if not gone(pid)]}"
    elapsed = time.monotonic() - t_kill
    assert wait_until(lambda: loopback_port_free(robot_ip, 1337), 5.0), "the next run could not start its simulator"
    print(f"\nlauncher SIGKILLed: sim_robot and franka gone {elapsed:.1f} s later, {robot_ip}:1337 free again")


def farl_run(processes, tmp_path: Path, *arguments: str) -> tuple[int, str, float]:
    t0 = time.monotonic()
    job = processes.start("farl_run", [sys.executable, "-m", "farl_learner.cli", "run", "fragile_push_wall",
                                       "--episodes", "1", "--out", str(tmp_path / "run"),
                                       "--ros-domain", os.environ["ROS_DOMAIN_ID"], *arguments])
    code = job.popen.wait(timeout=90)
    return code, job.log_text(), time.monotonic() - t0


@pytest.mark.ros
@pytest.mark.sim
@pytest.mark.timeout(120)
@pytest.mark.parametrize("node", ["shield", "learner"])
def test_a_required_node_that_cannot_start_ends_the_run_at_once(processes, tmp_path, node):
    if node == "shield":  # no model folder at all: the shield refuses to start
        models, error = tmp_path / "nonexistent", "shield_node: error: " + str(tmp_path / "nonexistent")
    else:  # ONNX graphs but no torch checkpoints: the shield runs, the learner refuses to start
        models, error = known_risk_folder(tmp_path / "onnx_only"), "learner_node: error: "
    code, log, elapsed = farl_run(processes, tmp_path, f"models_dir:={models}")
    last = log.strip().splitlines()[-1]
    print(f"\n{node} cannot start: farl run exit {code} after {elapsed:.1f} s; last line: {last}")
    assert code == 1, log[-4000:]
    assert last.startswith(f"[farl run] error: required node {node} exited with code 2: {error}"), log[-4000:]
    franka = re.search(r"\[launch\] franka stopped \(exit code (-?\d+)\)", log)
    assert franka, log[-4000:]
    # 0: its shutdown stopped the arm. -15: on a loaded machine the launcher's SIGTERM can arrive while franka_node
    # is still importing, before it installed its signal handling, and then it had not reached the arm either.
    assert franka.group(1) == "0" or (franka.group(1) == "-15" and "connected to the arm" not in log), log[-4000:]
    assert "[launch] sim_robot stopped (exit code 0)" in log
    assert "episode 1/1" not in log  # no episode ran without it
    assert not NOISE.search(log), NOISE.search(log).group(0) + "\n" + log[-4000:]
    assert elapsed < 45.0  # start-up of the stack, then seconds (the monitor used to wait 60 s for the learner)


@pytest.mark.ros
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
                                               "robot:=real", "robot_ip:=127.0.0.9", "autonomy:=false",
                                               # this test machine's kernel need not be real-time
                                               "allow_non_rt_kernel:=true"],
                               env={"FARL_CONFIG_DIR": str(config)})
    code = launcher.popen.wait(timeout=45)
    log = launcher.log_text()
    assert code == 1, log
    assert "[launch] error: required node franka could not be brought up (configure failed): " \
           "franka_node: error: cannot reach the arm at 127.0.0.9" in log, log
    assert "[launch] franka stopped (exit code 0)" in log
    assert not NOISE.search(log), log


@pytest.mark.ros
@pytest.mark.sim
@pytest.mark.timeout(300)
def test_a_control_node_that_crashes_mid_run_in_sim_is_restarted_and_the_run_finishes(processes, tmp_path):
    """SIGKILL stands in for the crash seen on loaded machines (a connection franky could not close, which ends
    the node): the arm stops with the connection, the launcher starts the node again, and the run goes on."""
    job = processes.start("farl_run", [sys.executable, "-m", "farl_learner.cli", "run", "fragile_push_wall",
                                       "--episodes", "3", "--out", str(tmp_path / "run"),
                                       "--ros-domain", os.environ["ROS_DOMAIN_ID"], f"robot_ip:={free_ip()}"])
    assert wait_until(lambda: "episode 1/3" in job.log_text() or job.popen.poll() is not None, 150.0), \
        job.log_text()[-4000:]
    started = re.search(r"\[launch\] started franka \(pid (\d+)\)", job.log_text())
    assert started and job.popen.poll() is None, job.log_text()[-4000:]
    os.kill(int(started.group(1)), signal.SIGKILL)
    code = job.popen.wait(timeout=240)
    log = job.log_text()
    print(f"\ncontrol node SIGKILLed after episode 1: farl run exit {code}; last line: {log.strip().splitlines()[-1]}")
    assert code == 0, log[-6000:]
    assert "[launch] franka exited with code -9; restarting it (restart 1 of 2)" in log, log[-6000:]
    assert log.count("[launch] franka configured and active") == 2, log[-6000:]
    assert "episode 3/3" in log and "[farl run] 3 episodes" in log, log[-6000:]

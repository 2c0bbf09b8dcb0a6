"""Bad configuration: the robot-side nodes print one `error:` line naming file and key, exit 2.

No simulator is needed: the nodes must refuse to start before touching the arm.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from farl_common.paths import task_config_path
from farl_control.robot.realtime import read_kernel_facts

pytestmark = pytest.mark.ros

GOOD = yaml.safe_load(task_config_path("fragile_push_wall").read_text())


def run_node(processes, executable: str, *params: str, timeout_s: float = 30.0) -> tuple[int, list[str]]:
    argv = [executable, "--ros-args"]
    for p in params:
        argv += ["-p", p]
    proc = processes.start(executable, argv)
    try:
        code = proc.popen.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{executable} did not exit within {timeout_s} s:\n{proc.log_text()}")
    lines = [line for line in proc.log_text().splitlines() if line.strip()]
    return code, lines


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_one_error_line(code: int, lines: list[str], program: str, *needles: str) -> None:
    assert code == 2, lines
    assert len(lines) == 1, "expected exactly one line, got:\n" + "\n".join(lines)
    assert lines[0].startswith(f"{program}: error: ")
    assert "Traceback" not in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("program", ["franka_node", "sim_robot_node"])
def test_missing_config_file(processes, tmp_path, program):
    missing = tmp_path / "nope.yaml"
    code, lines = run_node(processes, program, f"task_config:={missing}", "robot_ip:=127.0.0.9")
    assert_one_error_line(code, lines, program, str(missing), "file not found")


@pytest.mark.timeout(60)
def test_malformed_yaml(processes, tmp_path):
    bad = write(tmp_path, "malformed.yaml", "task: x\ncontrol: [1, 2\n  rate_hz: 10\n")
    code, lines = run_node(processes, "franka_node", f"task_config:={bad}", "robot_ip:=127.0.0.9")
    assert_one_error_line(code, lines, "franka_node", str(bad), "malformed YAML", "line")


@pytest.mark.timeout(60)
def test_workspace_min_above_max(processes, tmp_path):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    data["control"]["workspace_min"] = [0.80, -0.35, 0.035]  # x min > x max 0.75
    bad = write(tmp_path, "box.yaml", yaml.safe_dump(data))
    code, lines = run_node(processes, "franka_node", f"task_config:={bad}", "robot_ip:=127.0.0.9")
    assert_one_error_line(code, lines, "franka_node", str(bad), "control.workspace_min", "x: min 0.8")


@pytest.mark.timeout(60)
def test_missing_key(processes, tmp_path):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    del data["control"]["max_linear_speed"]
    bad = write(tmp_path, "nospeed.yaml", yaml.safe_dump(data))
    code, lines = run_node(processes, "franka_node", f"task_config:={bad}", "robot_ip:=127.0.0.9")
    assert_one_error_line(code, lines, "franka_node", str(bad), "control.max_linear_speed", "missing")


@pytest.mark.timeout(60)
def test_bad_simulated_parameter(processes):
    code, lines = run_node(processes, "franka_node", "simulated:=maybe", "robot_ip:=127.0.0.9")
    assert_one_error_line(code, lines, "franka_node", "simulated", "maybe")


@pytest.mark.timeout(60)
def test_unreachable_arm_is_one_clear_line(processes, tmp_path):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    data["robot"]["connect_timeout_s"] = 1.0
    cfg = write(tmp_path, "fast.yaml", yaml.safe_dump(data))
    proc = processes.start("franka_node", ["franka_node", "--ros-args", "-p", f"task_config:={cfg}",
                                           "-p", "robot_ip:=127.0.0.9"])
    code = proc.popen.wait(timeout=30)
    lines = [line for line in proc.log_text().splitlines() if line.strip()]
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("franka_node: error: cannot reach the arm at 127.0.0.9"), lines


NON_RT_KERNEL = not read_kernel_facts().realtime


@pytest.mark.timeout(60)
@pytest.mark.skipif(not NON_RT_KERNEL, reason="this machine runs a PREEMPT_RT kernel: the real arm may start")
def test_real_arm_on_a_non_rt_kernel_refuses_to_start_in_one_line(processes):
    """robot.realtime.real is enforce by default: no connection attempt, the way out named."""
    code, lines = run_node(processes, "franka_node", "simulated:=real", "robot_ip:=127.0.0.9")
    assert_one_error_line(code, lines, "franka_node", "fragile_push_wall.yaml: robot.realtime.real",
                          "PREEMPT_RT", "allow_non_rt_kernel:=true")


@pytest.mark.timeout(60)
@pytest.mark.skipif(not NON_RT_KERNEL, reason="this machine runs a PREEMPT_RT kernel: no override happens")
def test_the_non_rt_override_is_logged_as_an_error_before_connecting(processes, tmp_path):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    data["robot"]["connect_timeout_s"] = 1.0
    cfg = write(tmp_path, "fast.yaml", yaml.safe_dump(data))
    code, lines = run_node(processes, "franka_node", f"task_config:={cfg}", "simulated:=real",
                           "robot_ip:=127.0.0.9", "allow_non_rt_kernel:=true")
    assert code == 1, lines
    assert any("[ERROR]" in line and "allow_non_rt_kernel:=true OVERRIDES robot.realtime.real" in line
               for line in lines), lines
    assert lines[-1].startswith("franka_node: error: cannot reach the arm at 127.0.0.9"), lines

"""`farl doctor`: each check passes on a good PC and fails (or warns) with its fix on a bad one.

The checks are pure functions of injected SystemFacts, so both outcomes of each
are covered here on any machine; one run of the real command checks the
wiring (the CLI, fact gathering, one line per check, the exit code).
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from farl_common.task_config import RealtimeConfig
from farl_control.doctor import checks
from farl_control.doctor.checks import FAIL, PASS, WARN, run_checks
from farl_control.doctor.facts import (ArmReach, DoctorOptions, SystemFacts, UsbDevice, cpu_governors,
                                       free_disk_bytes, probe_arm, usb_devices)
from farl_control.robot.realtime import KernelFacts

GIB = 1024 ** 3
SIM = DoctorOptions(robot="sim")
REAL = DoctorOptions(robot="real", robot_ip="172.16.0.2")
RT_KERNEL = KernelFacts("6.8.2-rt11", "#1 SMP PREEMPT_RT", "1\n")
GENERIC_KERNEL = KernelFacts("6.8.0-45-generic", "#45 SMP PREEMPT_DYNAMIC", None)
ALL_MODULES = {m: None for m in ("rclpy", "onnxruntime", "franky", "mujoco", "franky_sim", "torch")}

# A lab PC ready for the real arm (and, with robot sim, for simulation).
GOOD = SystemFacts(
    environ={"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_DOMAIN_ID": "42"},
    modules=ALL_MODULES, kernel=RT_KERNEL, rtprio_limit=99, memlock_limit=-1, is_root=False,
    cpu_governors=("performance",) * 8, free_disk_bytes=200 * GIB,
    usb_devices=(UsbDevice("8086", "Intel(R) RealSense(TM) Depth Camera 435", "123456789012"),),
    libfranka_version="0.21.2", realtime=RealtimeConfig(), models_dir="config/models/fragile_push_wall",
    arm=ArmReach(fci_open=True, desk_open=True))


def bad(**changes) -> SystemFacts:
    return dataclasses.replace(GOOD, **changes)


def result(name: str, facts: SystemFacts, options: DoctorOptions) -> checks.CheckResult:
    found = [r for r in run_checks(facts, options) if r.name == name]
    assert len(found) == 1, [r.name for r in run_checks(facts, options)]
    return found[0]


@pytest.mark.parametrize("options", [SIM, REAL], ids=["sim", "real"])
def test_a_good_pc_passes_every_check(options):
    results = run_checks(GOOD, options)
    assert [r for r in results if r.status != PASS] == []


def test_in_sim_a_generic_laptop_passes():
    """No RT kernel, no limits, no governor, no camera, no arm: none of it matters in sim."""
    laptop = bad(kernel=GENERIC_KERNEL, rtprio_limit=0, memlock_limit=64 * 1024, cpu_governors=("powersave",),
                 usb_devices=(), arm=None)
    assert {r.status for r in run_checks(laptop, SIM)} == {PASS}


def test_the_real_arm_checks_only_what_the_robot_side_imports():
    names = {r.name for r in run_checks(GOOD, REAL)}
    assert "import mujoco" not in names and "import franky_sim" not in names
    assert {"import rclpy", "import onnxruntime", "import franky", "import torch"} <= names


@pytest.mark.parametrize("environ, status", [
    ({"ROS_DOMAIN_ID": "42"}, WARN),
    ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET", "ROS_DOMAIN_ID": "42"}, WARN),
    ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "OFF", "ROS_DOMAIN_ID": "42"}, FAIL),
    ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "localhost", "ROS_DOMAIN_ID": "42"}, FAIL),
])
def test_discovery_range(environ, status):
    check = result("ros-discovery", bad(environ=environ), SIM)
    assert check.status == status and "ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST" in check.fix


@pytest.mark.parametrize("value, status", [(None, WARN), ("abc", FAIL), ("300", FAIL), ("150", WARN), ("101", WARN)])
def test_domain_id(value, status):
    environ = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"} | ({} if value is None else {"ROS_DOMAIN_ID": value})
    check = result("ros-domain", bad(environ=environ), SIM)
    assert check.status == status and "ROS_DOMAIN_ID" in check.fix


def test_a_domain_whose_dds_ports_stay_below_the_ephemeral_range_passes():
    environ = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_DOMAIN_ID": "100"}
    assert result("ros-domain", bad(environ=environ), SIM).status == PASS


def test_the_domain_check_follows_this_kernels_ephemeral_range():
    environ = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_DOMAIN_ID": "100"}
    narrowed = bad(environ=environ, ephemeral_ports=(20000, 60999))  # a PC whose range starts lower
    check = result("ros-domain", narrowed, SIM)
    assert check.status == WARN and "32400-32649" in check.detail and "20000-60999" in check.detail


@pytest.mark.parametrize("module, options", [("rclpy", SIM), ("onnxruntime", REAL), ("franky", REAL),
                                             ("mujoco", SIM), ("franky_sim", SIM)])
def test_a_module_the_stack_needs_that_does_not_import_fails(module, options):
    facts = bad(modules=ALL_MODULES | {module: "ModuleNotFoundError: No module named " + repr(module)})
    check = result(f"import {module}", facts, options)
    assert check.status == FAIL and "No module named" in check.detail and check.fix


def test_torch_is_optional_on_the_robot_side():
    check = result("import torch", bad(modules=ALL_MODULES | {"torch": "ModuleNotFoundError: torch"}), REAL)
    assert check.status == WARN and "learner" in check.detail


def test_a_config_that_does_not_load_fails_with_its_line_and_skips_the_models():
    line = "config/tasks/fragile_push_wall.yaml: control.rate_hz: must be > 0, got 0.0"
    facts = bad(config_problem=line, realtime=None)
    assert result("config", facts, SIM).status == FAIL and result("config", facts, SIM).detail == line
    assert result("models", facts, SIM).status == WARN


def test_a_corrupt_model_folder_fails_with_the_manifests_line():
    line = "models/policy.onnx: sha256 differs from manifest.json (file changed or corrupt); re-export"
    check = result("models", bad(manifest_problem=line), SIM)
    assert check.status == FAIL and check.detail == line and "farl pretrain-twin" in check.fix


def test_a_generic_kernel_fails_for_the_real_arm_as_the_control_node_would_refuse_it():
    check = result("rt-kernel", bad(kernel=GENERIC_KERNEL), REAL)
    assert check.status == FAIL and "PREEMPT_RT" in check.fix and "allow_non_rt_kernel" in check.fix


def test_a_generic_kernel_only_warns_when_the_task_config_ignores_real_time():
    facts = bad(kernel=GENERIC_KERNEL, realtime=RealtimeConfig(real="ignore"))
    assert result("rt-kernel", facts, REAL).status == WARN


@pytest.mark.parametrize("rtprio, memlock, root, status", [
    (0, -1, False, FAIL), (50, -1, False, FAIL), (99, 64 * 1024, False, WARN), (0, 64 * 1024, True, PASS),
    (-1, -1, False, PASS)])
def test_rt_limits(rtprio, memlock, root, status):
    check = result("rt-limits", bad(rtprio_limit=rtprio, memlock_limit=memlock, is_root=root), REAL)
    assert check.status == status
    if status != PASS:
        assert "rtprio 99" in check.fix and "memlock" in check.fix


@pytest.mark.parametrize("governors, status", [(("powersave", "performance"), WARN), ((), WARN),
                                               (("performance",), PASS)])
def test_cpu_governor(governors, status):
    check = result("cpu-governor", bad(cpu_governors=governors), REAL)
    assert check.status == status
    if governors and status == WARN:
        assert "powersave" in check.detail and "performance" in check.fix


@pytest.mark.parametrize("arm, status, needle", [
    (ArmReach(fci_open=False, desk_open=True), FAIL, "activate FCI"),
    (ArmReach(fci_open=False, desk_open=False), FAIL, "static address"),
    (None, FAIL, "--robot-ip"),
])
def test_robot_network(arm, status, needle):
    check = result("robot-network", bad(arm=arm), dataclasses.replace(REAL, robot_ip=None) if arm is None else REAL)
    assert check.status == status and needle in check.fix


def test_an_incompatible_robot_server_fails_libfranka_and_an_unreachable_one_only_warns():
    refused = ArmReach(True, True, "IncompatibleVersionException: libfranka: Incompatible library version "
                                   "(server version: 9, library version: 10)", incompatible=True)
    check = result("libfranka", bad(arm=refused), REAL)
    assert check.status == FAIL and "server version: 9" in check.detail and "compatibility" in check.fix
    assert result("libfranka", bad(arm=ArmReach(False, False)), REAL).status == WARN


def test_no_realsense_warns_for_the_real_arm():
    assert result("realsense", bad(usb_devices=(UsbDevice("046d", "SpaceMouse", ""),)), REAL).status == WARN
    assert "123456789012" in result("realsense", GOOD, REAL).detail


@pytest.mark.parametrize("free, status", [(int(0.5 * GIB), FAIL), (5 * GIB, WARN), (None, WARN), (50 * GIB, PASS)])
def test_free_disk_for_recordings(free, status):
    assert result("disk", bad(free_disk_bytes=free), SIM).status == status


def test_a_line_carries_status_name_detail_and_the_fix_only_when_not_passing():
    line = checks.CheckResult("disk", FAIL, "0.5 GiB free", "free space").line()
    assert line.startswith("FAIL  disk") and line.endswith("-- fix: free space")
    assert "fix" not in checks.CheckResult("disk", PASS, "50 GiB free", "free space").line()


# ---- fact gathering on injected file trees -------------------------------------------------


def test_governors_and_usb_devices_are_read_from_sysfs(tmp_path):
    for cpu, governor in (("cpu0", "performance"), ("cpu1", "powersave")):
        (tmp_path / "cpu" / cpu / "cpufreq").mkdir(parents=True)
        (tmp_path / "cpu" / cpu / "cpufreq" / "scaling_governor").write_text(governor + "\n")
    assert cpu_governors(tmp_path / "cpu") == ("performance", "powersave")
    device = tmp_path / "usb" / "2-1"
    device.mkdir(parents=True)
    for name, text in (("idVendor", "8086"), ("product", "Intel(R) RealSense(TM) Depth Camera 435"),
                       ("serial", "0123")):
        (device / name).write_text(text + "\n")
    assert usb_devices(tmp_path / "usb") == (UsbDevice("8086", "Intel(R) RealSense(TM) Depth Camera 435", "0123"),)


def test_free_disk_is_measured_at_the_nearest_existing_folder(tmp_path):
    assert free_disk_bytes(tmp_path / "runs" / "not-yet") > 0


def test_an_arm_without_fci_is_not_connected_to():
    reach = probe_arm("172.16.0.2", port_open=lambda host, port: port == 443)
    assert reach == ArmReach(fci_open=False, desk_open=True)


# ---- the command ------------------------------------------------------------------------------


def farl_doctor(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "farl_learner.cli", "doctor", *argv], capture_output=True,
                          text=True, timeout=120)


def test_farl_doctor_prints_one_line_per_check_and_exits_1_on_a_failure(tmp_path):
    """A model folder without a manifest is a FAIL whatever this machine is like."""
    done = farl_doctor("--models-dir", str(tmp_path), "--runs-dir", str(tmp_path))
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 1, done.stdout + done.stderr
    body = lines[1:-1]
    assert len(body) == len(checks.all_checks(SIM)) and all(line[:4] in (PASS, WARN, FAIL) for line in body)
    assert any(line.startswith("FAIL  models") and "manifest not found" in line for line in body), body
    assert lines[-1].startswith("farl doctor: ") and lines[-1].endswith("fail")


def test_farl_doctor_reports_the_environment_it_was_started_with_not_the_clis():
    """The CLI forces LOCALHOST for its own traffic; the operator's unset variable must still be seen."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "ROS_AUTOMATIC_DISCOVERY_RANGE"}
    done = subprocess.run([sys.executable, "-m", "farl_learner.cli", "doctor"], capture_output=True, text=True,
                          timeout=120, env=env)
    assert "WARN  ros-discovery" in done.stdout, done.stdout + done.stderr

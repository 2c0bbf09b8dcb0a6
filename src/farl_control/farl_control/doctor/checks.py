"""The checks of `farl doctor`: pure functions from SystemFacts to one PASS/WARN/FAIL line with its fix.

FAIL: the stack (or, with robot real, the arm) will not run, or runs unsafely.
WARN: it runs, but something an operator should know is off.
Checks that matter only for the real arm pass in sim with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from farl_control.launching.processes import domain_clear_of_ephemeral_ports, ros_domain_ports
from farl_control.doctor.facts import (DESK_PORT, FCI_PORT, LEARNING_MODULES, SIM_MODULES, UNLIMITED,
                                       DoctorOptions, SystemFacts)

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
GIB = 1024 ** 3
MIN_FREE_BYTES, WARN_FREE_BYTES = 1 * GIB, 10 * GIB
RTPRIO_NEEDED = 99  # libfranka raises its control thread to the highest SCHED_FIFO priority
MEMLOCK_WANTED = 100 * 1024 ** 2  # Franka's set-up guide: memlock 102400 KiB
DISCOVERY_RANGES = ("LOCALHOST", "SUBNET", "SYSTEM_DEFAULT", "OFF")
LIMITS_FIX = ("in /etc/security/limits.conf: '@realtime - rtprio 99' and '@realtime - memlock 102400', "
              "add the user to group realtime, log in again (docker: the compose file's ulimits)")


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status}  {self.name:<18} {self.detail}"
        return f"{text} -- fix: {self.fix}" if self.fix and self.status != PASS else text


Check = Callable[[SystemFacts, DoctorOptions], CheckResult]


def _real(options: DoctorOptions) -> bool:
    return options.robot == "real"


def check_discovery(facts: SystemFacts, options: DoctorOptions) -> CheckResult:
    value = facts.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE")
    name = "ros-discovery"
    if value is None:
        return CheckResult(name, WARN, "ROS_AUTOMATIC_DISCOVERY_RANGE unset: ROS 2 discovers across the subnet",
                           "export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (source scripts/env.sh)")
    if value not in DISCOVERY_RANGES:
        return CheckResult(name, FAIL, f"ROS_AUTOMATIC_DISCOVERY_RANGE={value} is not one of "
                                       f"{', '.join(DISCOVERY_RANGES)}", "export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST")
    if value == "OFF":
        return CheckResult(name, FAIL, "ROS_AUTOMATIC_DISCOVERY_RANGE=OFF: the nodes cannot find each other",
                           "export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST")
    if value != "LOCALHOST" and not _real(options):
        return CheckResult(name, WARN, f"ROS_AUTOMATIC_DISCOVERY_RANGE={value}: simulation traffic reaches the "
                                       "network", "export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST")
    return CheckResult(name, PASS, f"ROS_AUTOMATIC_DISCOVERY_RANGE={value}")


def check_domain(facts: SystemFacts, options: DoctorOptions) -> CheckResult:
    value = facts.environ.get("ROS_DOMAIN_ID")
    name = "ros-domain"
    if value is None:
        return CheckResult(name, WARN, "ROS_DOMAIN_ID unset: domain 0, shared with every other ROS user",
                           "export ROS_DOMAIN_ID=<1..100, one per robot> (scripts/env.sh sets 42)")
    if not value.isdigit() or not 0 <= int(value) <= 232:
        return CheckResult(name, FAIL, f"ROS_DOMAIN_ID={value!r} is not an integer in 0..232",
                           "export ROS_DOMAIN_ID=<1..100>")
    if not domain_clear_of_ephemeral_ports(int(value), facts.ephemeral_ports):
        ports, (low, high) = ros_domain_ports(int(value)), facts.ephemeral_ports
        return CheckResult(name, WARN, f"ROS_DOMAIN_ID={value}: its DDS ports {ports.start}-{ports.stop - 1} lie in "
                                       f"the ephemeral range {low}-{high}, where libfranka's UDP socket may get one "
                                       "(the control node then stops with 'incorrect object size')",
                           "export ROS_DOMAIN_ID=<1..100>")
    return CheckResult(name, PASS, f"ROS_DOMAIN_ID={value}")


def _module_check(module: str, needed: bool, why: str, fix: str) -> Check:
    def check(facts: SystemFacts, options: DoctorOptions) -> CheckResult:
        problem = facts.modules.get(module, "not checked")
        if problem is None:
            return CheckResult(f"import {module}", PASS, why)
        return CheckResult(f"import {module}", FAIL if needed else WARN, f"{problem} ({why})", fix)
    return check


def module_checks(options: DoctorOptions) -> list[Check]:
    setup = "scripts/setup.sh (pip set-up) or rosdep install (ROS install, see rosdep/farl.yaml)"
    checks = [
        _module_check("rclpy", True, "every node", "source /opt/ros/jazzy/setup.bash, or " + setup),
        _module_check("onnxruntime", True, "the shield", setup),
        _module_check("franky", True, "the control node (libfranka)", setup),
    ]
    if not _real(options):
        checks += [_module_check(m, True, "the simulated FR3", setup) for m in SIM_MODULES]
    checks += [_module_check(m, False, "optional on the robot side: the learner and the farl training commands",
                             "the learner image, or scripts/setup.sh") for m in LEARNING_MODULES]
    return checks


def check_config(facts: SystemFacts, options: DoctorOptions) -> CheckResult:
    if facts.config_problem:
        return CheckResult("config", FAIL, facts.config_problem, "correct the file and key named")
    return CheckResult("config", PASS, f"tasks/{options.task}.yaml and stacks/{options.task}.yaml load")


def check_models(facts: SystemFacts, options: DoctorOptions) -> CheckResult:
    if facts.config_problem:
        return CheckResult("models", WARN, "not checked: the config did not load", "fix the config first")
    if facts.manifest_problem:
        return CheckResult("models", FAIL, facts.manifest_problem,
                           f"farl pretrain-twin {options.task} --out <folder>, then --models-dir / models_dir:=")
    return CheckResult("models", PASS, f"{facts.models_dir}: manifest and checksums verified")


def check_rt_kernel(facts: SystemFacts, options: DoctorOptions) -> CheckResult:
    name = "rt-kernel"
    if not _real(options):
        return CheckResult(name, PASS, f"not needed in sim ({facts.kernel.describe()})")
    mode = facts.realtime.real if facts.realtime is not None else "enforce"
    if facts.kernel.realtime:
        return CheckResult(name, PASS, f"PREEMPT_RT ({facts.kernel.describe()})")
    if mode == "ignore":
        return CheckResult(name, WARN, f"not real-time ({facts.kernel.describe()}); robot.realtime.real: ignore "
                                       "lets the arm run anyway", "boot a PREEMPT_RT kernel (docs/BRINGUP.md)")
    return CheckResult(name, FAIL, f"not real-time ({facts.kernel.describe()}): the control node will refuse the "
                                   "real arm", "boot a PREEMPT_RT kernel (docs/BRINGUP.md); "
                                               "allow_non_rt_kernel:=true only for bench tests")


def check_rt_limits(facts: SystemFacts, options: DoctorOptions) -> CheckResult:
    name = "rt-limits"
    rtprio = "unlimited" if facts.rtprio_limit == UNLIMITED else str(facts.rtprio_limit)
    memlock = "unlimited" if facts.memlock_limit == UNLIMITED else f"{facts.memlock_limit // 1024} KiB"
    detail = f"rtprio {rtprio}, memlock {memlock}" + (" (root)" if facts.is_root else "")
    if not _real(options):
        return CheckResult(name, PASS, f"not needed in sim ({detail})")
    if not facts.is_root and facts.rtprio_limit != UNLIMITED and facts.rtprio_limit < RTPRIO_NEEDED:
        return CheckResult(name, FAIL, f"{detail}: libfranka cannot raise its loop to priority {RTPRIO_NEEDED}",
                           LIMITS_FIX)
    if not facts.is_root and facts.memlock_limit != UNLIMITED and facts.memlock_limit < MEMLOCK_WANTED:
        return CheckResult(name, WARN, f"{detail}: below the 100 MiB Franka recommends", LIMITS_FIX)
    return CheckResult(name, PASS, detail)


def check_governor(facts: SystemFacts, options: DoctorOptions) -> CheckResult:
    name = "cpu-governor"
    if not _real(options):
        return CheckResult(name, PASS, "not needed in sim")
    fix = "sudo cpupower frequency-set -g performance (or set it in the BIOS / a systemd unit)"
    if not facts.cpu_governors:
        return CheckResult(name, WARN, "no cpufreq governor exposed: cannot tell", "check the BIOS power settings")
    others = sorted({g for g in facts.cpu_governors if g != "performance"})
    if others:
        return CheckResult(name, WARN, f"{', '.join(others)} on some CPUs: frequency changes add loop jitter", fix)
    return CheckResult(name, PASS, f"performance on {len(facts.cpu_governors)} CPUs")


def check_robot_network(facts: SystemFacts, options: DoctorOptions) -> CheckResult:
    name = "robot-network"
    if not _real(options):
        return CheckResult(name, PASS, "skipped in sim")
    ip = options.robot_ip
    if facts.arm is None:
        return CheckResult(name, FAIL, "no robot IP given", "farl doctor --robot real --robot-ip <FCI address>")
    if facts.arm.fci_open:
        return CheckResult(name, PASS, f"{ip}:{FCI_PORT} (FCI) answers")
    if facts.arm.desk_open:
        return CheckResult(name, FAIL, f"{ip} answers (Desk, port {DESK_PORT}) but FCI port {FCI_PORT} is closed",
                           "in Desk: unlock the joints and activate FCI")
    return CheckResult(name, FAIL, f"nothing answers at {ip}",
                       "cable to the arm's control box (not the arm base), a static address on the same subnet "
                       "(e.g. 172.16.0.1/24 for 172.16.0.2), the arm switched on (docs/BRINGUP.md)")


def check_libfranka(facts: SystemFacts, options: DoctorOptions) -> CheckResult:
    name = "libfranka"
    version = facts.libfranka_version or "unknown version"
    if not _real(options):
        return CheckResult(name, PASS, f"libfranka {version} (franky-sim speaks its protocol)")
    if facts.arm is None or not facts.arm.fci_open:
        return CheckResult(name, WARN, f"libfranka {version}: not compared with the robot (FCI unreachable)",
                           "fix robot-network, then run farl doctor again")
    if facts.arm.incompatible:
        return CheckResult(name, FAIL, f"the robot refuses libfranka {version}: {facts.arm.connect_problem}",
                           "match the robot system version and libfranka (Franka's compatibility table; "
                           "docs/BRINGUP.md)")
    if facts.arm.connect_problem:
        return CheckResult(name, WARN, f"libfranka {version}: connecting failed: {facts.arm.connect_problem}",
                           "see the error; is another FCI client connected?")
    return CheckResult(name, PASS, f"libfranka {version} accepted by the robot's server")


def check_realsense(facts: SystemFacts, options: DoctorOptions) -> CheckResult:
    name = "realsense"
    cameras = [d for d in facts.usb_devices if d.vendor == "8086" and "realsense" in d.product.lower()]
    if not _real(options):
        return CheckResult(name, PASS, "not needed in sim (the scene publishes object poses)")
    if not cameras:
        return CheckResult(name, WARN, "no Intel RealSense on USB",
                           "plug the camera into a USB 3 port (compose: /dev/bus/usb is passed through)")
    return CheckResult(name, PASS, ", ".join(f"{d.product} serial {d.serial or '?'}" for d in cameras))


def check_disk(facts: SystemFacts, options: DoctorOptions) -> CheckResult:
    name = "disk"
    where = str(options.runs_dir)
    if facts.free_disk_bytes is None:
        return CheckResult(name, WARN, f"cannot measure free space at {where}", f"check that {where} is writable")
    free = f"{facts.free_disk_bytes / GIB:.1f} GiB free at {where}"
    fix = f"free space, or point the run folders at a bigger disk (farl run --out, run_dir:=)"
    if facts.free_disk_bytes < MIN_FREE_BYTES:
        return CheckResult(name, FAIL, free + " (recordings need more than 1 GiB)", fix)
    if facts.free_disk_bytes < WARN_FREE_BYTES:
        return CheckResult(name, WARN, free + " (less than 10 GiB)", fix)
    return CheckResult(name, PASS, free)


def all_checks(options: DoctorOptions) -> list[Check]:
    return [check_discovery, check_domain, *module_checks(options), check_config, check_models, check_rt_kernel,
            check_rt_limits, check_governor, check_robot_network, check_libfranka, check_realsense, check_disk]


def run_checks(facts: SystemFacts, options: DoctorOptions) -> list[CheckResult]:
    return [check(facts, options) for check in all_checks(options)]

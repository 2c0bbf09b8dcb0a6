"""What `farl doctor` needs to know about this PC, read once into one frozen value.

Everything the checks look at is a field here (environment, importable
modules, kernel, limits, governors, USB devices, disk, the arm's ports, the
config and model folder as loaded), so checks are pure functions of facts and
tests inject facts instead of patching the system.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import resource
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from farl_common.errors import FarlInputError
from farl_common.task_config import RealtimeConfig
from farl_control.launching.processes import ephemeral_port_range
from farl_control.robot.realtime import KernelFacts, read_kernel_facts

FCI_PORT = 1337  # libfranka's command connection: open only while FCI is activated in Desk
DESK_PORT = 443  # Desk (the arm's web interface): open whenever the arm is up
SIM_MODULES = ("mujoco", "franky_sim")
ROBOT_MODULES = ("rclpy", "onnxruntime", "franky")
LEARNING_MODULES = ("torch",)
UNLIMITED = -1


@dataclass(frozen=True)
class DoctorOptions:
    task: str = "fragile_push_wall"
    robot: str = "sim"
    """sim | real."""
    robot_ip: str | None = None
    models_dir: str | None = None
    """None: the stack's models_dir default."""
    runs_dir: Path = Path("runs")
    """Where recordings and run folders go (free disk is measured there)."""


@dataclass(frozen=True)
class UsbDevice:
    vendor: str
    product: str
    serial: str


@dataclass(frozen=True)
class ArmReach:
    """The arm's ports and, when FCI answered, what libfranka said on connecting (None: accepted)."""

    fci_open: bool
    desk_open: bool
    connect_problem: str | None = None
    incompatible: bool = False
    """libfranka refused the robot's server version (franky.IncompatibleVersionException)."""


@dataclass(frozen=True)
class SystemFacts:
    environ: Mapping[str, str]
    modules: Mapping[str, str | None]
    """Module -> None if it imports, else the error (one line)."""
    kernel: KernelFacts
    rtprio_limit: int
    """Soft RLIMIT_RTPRIO (UNLIMITED = -1)."""
    memlock_limit: int
    """Soft RLIMIT_MEMLOCK in bytes (UNLIMITED = -1)."""
    is_root: bool
    cpu_governors: tuple[str, ...]
    """scaling_governor of each CPU that exposes one; () when none does."""
    free_disk_bytes: int | None
    usb_devices: tuple[UsbDevice, ...] = ()
    libfranka_version: str | None = None
    realtime: RealtimeConfig | None = None
    """The task config's robot.realtime, None when the config did not load."""
    config_problem: str | None = None
    models_dir: str | None = None
    manifest_problem: str | None = None
    arm: ArmReach | None = None
    """None in sim (nothing is probed)."""
    ephemeral_ports: tuple[int, int] = (32768, 60999)
    """The kernel's range for port-0 binds (net.ipv4.ip_local_port_range), where libfranka's UDP socket lands."""


def import_problem(module: str) -> str | None:
    try:
        importlib.import_module(module)
    except Exception as error:  # a broken shared library is as fatal as a missing package
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".rstrip(": ")
    return None


def _limit(which: int) -> int:
    soft, _ = resource.getrlimit(which)
    return UNLIMITED if soft == resource.RLIM_INFINITY else int(soft)


def cpu_governors(root: Path = Path("/sys/devices/system/cpu")) -> tuple[str, ...]:
    out = []
    for path in sorted(root.glob("cpu[0-9]*/cpufreq/scaling_governor")):
        try:
            out.append(path.read_text().strip())
        except OSError:
            pass
    return tuple(out)


def usb_devices(root: Path = Path("/sys/bus/usb/devices")) -> tuple[UsbDevice, ...]:
    def read(path: Path) -> str:
        try:
            return path.read_text().strip()
        except OSError:
            return ""

    return tuple(UsbDevice(read(d / "idVendor"), read(d / "product"), read(d / "serial"))
                 for d in sorted(root.glob("*")) if (d / "idVendor").is_file())


def free_disk_bytes(folder: Path) -> int | None:
    """Free bytes on the file system that holds `folder` (its nearest existing parent)."""
    folder = folder.resolve()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def libfranka_version() -> str | None:
    """libfranka as bundled in franky-control's wheel (libfranka-<hash>.so.<version>)."""
    try:
        files = importlib.metadata.files("franky-control") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        name = Path(str(file)).name
        if name.startswith("libfranka") and ".so." in name:
            return name.split(".so.", 1)[1]
    return None


def port_open(host: str, port: int, timeout_s: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def probe_arm(ip: str, port_open: Callable[[str, int], bool] = port_open) -> ArmReach:
    """Ports first; only when FCI answers, a franky connection (libfranka checks the server version there).

    Connecting does not move the arm; real-time is not asked for, so this works on any kernel.
    """
    fci, desk = port_open(ip, FCI_PORT), port_open(ip, DESK_PORT)
    if not fci:
        return ArmReach(fci_open=False, desk_open=desk)
    try:
        import franky

        franky.Robot(ip, realtime_config=franky.RealtimeConfig.Ignore)
    except Exception as error:  # noqa: BLE001 - reported, never raised
        incompatible = type(error).__name__ == "IncompatibleVersionException"
        return ArmReach(True, desk, f"{type(error).__name__}: {error}", incompatible)
    return ArmReach(True, desk)


def load_stack_facts(options: DoctorOptions) -> dict:
    """The task and stack configs and the model folder, loaded as the nodes load them."""
    from farl_common.paths import resolve_config_path
    from farl_common.task_config import load_task_config
    from farl_control.launching.stack import load_stack

    out: dict = {}
    try:
        task = load_task_config(options.task)
        stack = load_stack(options.task)
    except FarlInputError as error:
        return {"config_problem": str(error)}
    out["realtime"] = task.robot.realtime
    models = options.models_dir or next(a.default for a in stack.arguments if a.name == "models_dir")
    out["models_dir"] = str(resolve_config_path(models))
    try:
        from farl_common.task_spec import TaskSpec
        from farl_control.shield.manifest import load_manifest

        spec = TaskSpec.from_config(task)
        load_manifest(out["models_dir"], expect_task=task.task, expect_obs_dim=spec.obs_dim,
                      expect_action_dim=spec.action_dim)
    except FarlInputError as error:
        out["manifest_problem"] = str(error)
    except ImportError as error:  # onnxruntime missing: reported by its own check
        out["manifest_problem"] = f"cannot check the ONNX graphs: {error}"
    return out


def gather_facts(options: DoctorOptions, environ: Mapping[str, str] | None = None) -> SystemFacts:
    wanted = (*ROBOT_MODULES, *(SIM_MODULES if options.robot == "sim" else ()), *LEARNING_MODULES)
    modules = {m: import_problem(m) for m in wanted}
    return SystemFacts(
        environ=dict(os.environ if environ is None else environ),
        modules=modules,
        kernel=read_kernel_facts(),
        rtprio_limit=_limit(resource.RLIMIT_RTPRIO),
        memlock_limit=_limit(resource.RLIMIT_MEMLOCK),
        is_root=os.geteuid() == 0,
        cpu_governors=cpu_governors(),
        free_disk_bytes=free_disk_bytes(options.runs_dir),
        usb_devices=usb_devices(),
        libfranka_version=libfranka_version(),
        arm=probe_arm(options.robot_ip) if options.robot == "real" and options.robot_ip else None,
        ephemeral_ports=ephemeral_port_range(),
        **load_stack_facts(options),
    )

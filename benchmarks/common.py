"""What every benchmark script does first: a private ROS graph, the command and the machine, the arm.

Import this module before anything that imports rclpy: it sets the environment
(`isolate`) at import time, so a benchmark never shares a ROS domain with a
running stack, another benchmark or a test session, and never leaves loopback.

    from common import REPO, RESULTS, SimulatedArm, command_line, machine
"""
from __future__ import annotations

import os
import platform
import random
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

from farl_control.launching.processes import private_ros_domain  # imports no DDS

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def isolate() -> str:
    """Loopback-only DDS in a private domain (FARL_BENCH_DOMAIN_ID pins one); returns the domain.

    Forced, not setdefault: scripts/env.sh exports the stack's default 42 into every shell.
    """
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_DOMAIN_ID"] = os.environ.get("FARL_BENCH_DOMAIN_ID") or str(
        private_ros_domain(random.Random(os.getpid())))
    os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["PYTHONUNBUFFERED"] = "1"
    return os.environ["ROS_DOMAIN_ID"]


ROS_DOMAIN_ID = isolate()


def command_line() -> str:
    """How this run was started, as it goes into the results (repeatable as written)."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(REPO) if script.is_relative_to(REPO) else script.name
    return " ".join(["python", str(shown), *map(shlex.quote, sys.argv[1:])])


def machine() -> dict:
    """What the figures were measured on (a shared 2-core machine reads very differently from the lab PC)."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "load_avg_1min": round(os.getloadavg()[0], 2),
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}


def relative(text: str) -> str:
    """Results name paths relative to the repository (and temporary folders as <tmp>): they are read elsewhere."""
    text = text.replace(str(REPO) + "/", "")
    return re.sub(re.escape(tempfile.gettempdir()) + r"/[\w.-]+/", "<tmp>/", text)


class SimulatedArm:
    """franky-sim + the control node on a free loopback address, and a RobotClient once the node is active.

    `with SimulatedArm() as arm:` ... `arm.client`, `arm.start_franka(rate_hz)`, `arm.add(...)`;
    every process is stopped (control node before simulator) on exit, whatever happened.
    """

    def __init__(self, name: str = "bench", logs: Path | None = None, sim_parameters: dict | None = None):
        from farl_control.launching.processes import free_loopback_ip

        self.name = name
        self.sim_parameters = dict(sim_parameters or {})  # e.g. {"perception": "aruco"}
        self.ip = free_loopback_ip()
        self.logs = logs or Path(tempfile.mkdtemp(prefix=f"farl_{name}_"))
        self.processes: list = []
        self.client = None

    def add(self, name: str, argv: list[str]):
        """Start another process of the benchmark (a learner, a CPU hog) under the same supervision."""
        from farl_control.launching.processes import ManagedProcess

        proc = ManagedProcess(name, argv, env=dict(os.environ), log_path=self.logs / f"{name}.log", cwd=REPO)
        self.processes.append(proc)
        return proc

    def start_franka(self, rate_hz: float | None = None, timeout_s: float = 60.0):
        """A control node (at `rate_hz`, default the task's) on this simulator; returns once it is active."""
        argv = ["franka_node", "--ros-args", "-p", f"robot_ip:={self.ip}", "-p", "simulated:=sim"]
        if rate_hz is not None:
            argv += ["-p", f"rate_hz:={rate_hz}"]
        franka = self.add(f"franka_{rate_hz:g}" if rate_hz else "franka", argv)
        expected = None if rate_hz is None else f"{rate_hz:g}"
        if not self.client.wait_for(lambda: franka.alive() and self.client.wait_until_active(0.0) and (
                expected is None or self.client.status.get("rate_hz") == expected), timeout_s):
            raise RuntimeError(f"franka_node did not come up:\n{franka.log_text()[-3000:]}")
        return franka

    def __enter__(self) -> "SimulatedArm":
        from farl_control.ros.client import RobotClient

        extra = [a for key, value in self.sim_parameters.items() for a in ("-p", f"{key}:={value}")]
        self.add("sim_robot", ["sim_robot_node", "--ros-args", "-p", f"robot_ip:={self.ip}", *extra])
        self.client = RobotClient(f"{self.name}_client")
        return self

    def __exit__(self, *_: object) -> None:
        if self.client is not None:
            self.client.close()
        for proc in reversed(self.processes):
            proc.stop(grace_s=5.0)

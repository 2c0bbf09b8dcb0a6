"""Shared fixtures: an isolated ROS graph per test session and processes that always die.

Every process a test starts goes through `processes`, which kills its whole
process group on teardown whether the test passed or failed.
"""
from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# DDS stays on loopback; each test session gets its own domain so concurrent
# sessions (or a running stack) never see each other's topics.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
# Forced, not setdefault: scripts/env.sh exports ROS_DOMAIN_ID=42 into every shell that sources it, so
# with setdefault every session on the machine shared domain 42 (commands and status crossed between
# concurrent test runs). FARL_TEST_DOMAIN_ID pins one on purpose.
from farl_control.launching.processes import private_ros_domain  # noqa: E402 (imports no DDS)

os.environ["ROS_DOMAIN_ID"] = (os.environ.get("FARL_TEST_DOMAIN_ID")
                               or str(private_ros_domain(random.Random(os.getpid()))))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ["PYTHONUNBUFFERED"] = "1"

from farl_control.launching.processes import ManagedProcess, free_loopback_ip  # noqa: E402


class ProcessPool:
    """Starts child processes for one test and stops them all at teardown."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list[ManagedProcess] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ManagedProcess:
        full_env = dict(os.environ)
        full_env.update(env or {})
        proc = ManagedProcess(name, argv, env=full_env, log_path=self.log_dir / f"{name}.log", cwd=REPO)
        self.started.append(proc)
        return proc

    def python(self, name: str, module: str, *args: str, env: dict[str, str] | None = None) -> ManagedProcess:
        """Start `python -m module args...` with this interpreter."""
        return self.start(name, [sys.executable, "-m", module, *args], env=env)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop(grace_s=3.0)

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} -----\n{p.log_text()[-4000:]}" for p in self.started)


@pytest.fixture
def processes(tmp_path, request):
    pool = ProcessPool(tmp_path / "logs")
    yield pool
    pool.stop_all()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print(pool.logs())


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def robot_ip() -> str:
    """A loopback address where no franky-sim is listening yet (one per test)."""
    return free_loopback_ip()

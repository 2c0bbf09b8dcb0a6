"""Child processes that never outlive their owner.

Used by the pip-side launcher, the tests and the benchmarks: each child runs in
its own process group so that stopping it also stops whatever it spawned, and
shutdown escalates SIGINT → SIGTERM → SIGKILL with bounded waits, so a hung
node can never keep the arm (or a test run) alive.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Mapping, Sequence


class _OutputPrefixer(threading.Thread):
    """Copies a child's output to ours, each line prefixed with [name] (as ros2 launch does)."""

    def __init__(self, name: str, stream):
        super().__init__(daemon=True, name=f"output-{name}")
        self.prefix = f"[{name}] "
        self.stream = stream

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            sys.stdout.write(self.prefix + raw.decode(errors="replace"))
            sys.stdout.flush()


class ManagedProcess:
    """One child process in its own process group.

    Output goes to `log_path` if given, else (with `prefix_output`) to our stdout
    line by line behind `[name]`, else straight to our stdout.
    """

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
                 log_path: str | Path | None = None, cwd: str | Path | None = None,
                 prefix_output: bool = False):
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_path) if log_path else None
        self._log: IO[bytes] | None = None
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=self._log or (subprocess.PIPE if prefix_output else None),
            stderr=subprocess.STDOUT if (self._log or prefix_output) else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if prefix_output and not self._log:
            _OutputPrefixer(name, self.popen.stdout).start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def kill_hard(self) -> None:
        """SIGKILL the whole group at once: what a crash looks like to the rest of the stack."""
        self._signal_group(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, grace_s: float = 5.0) -> int | None:
        """SIGINT, then SIGTERM, then SIGKILL, each after `grace_s`; returns the exit code."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if self.popen.poll() is not None:
                break
            self._signal_group(sig)
            try:
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                continue
        # Children of the node that ignored the group signal still go.
        self._signal_group(signal.SIGKILL)
        if self._log:
            self._log.close()
            self._log = None
        return self.popen.returncode

    def log_text(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")
        return ""


def stop_all(processes: Sequence[ManagedProcess], grace_s: float = 5.0) -> None:
    """Stop processes in reverse start order (the arm's driver last but one, sim last)."""
    for proc in reversed(list(processes)):
        proc.stop(grace_s)


def loopback_port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_loopback_ip(ports: Sequence[int] = (1337, 1338)) -> str:
    """A random 127.0.x.y where nothing listens on `ports` (franky-sim's): one simulator per address,
    so concurrent test sessions and benchmarks never share an arm."""
    import random

    rng = random.Random()
    for _ in range(200):
        ip = f"127.0.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
        if all(loopback_port_free(ip, port) for port in ports):
            return ip
    raise RuntimeError("no free loopback address for franky-sim")


def wait_until(predicate, timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll `predicate` until it is true or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())

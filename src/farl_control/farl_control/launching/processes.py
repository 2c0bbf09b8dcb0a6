"""Child processes that never outlive their owner.

Used by the pip-side launcher, the tests and the benchmarks: each child runs in
its own process group so that stopping it also stops whatever it spawned, and
shutdown escalates SIGTERM → SIGKILL with a bounded wait, so a hung node can
never keep the arm (or a test run) alive. SIGTERM, not SIGINT, comes first: every
FARL entry point handles both the same way, but a child stopped while it is still
importing (torch takes seconds) dies of SIGTERM silently, where SIGINT would
print a KeyboardInterrupt traceback.

When the owner itself dies without stopping them (SIGKILL, the OOM killer), the
kernel sends each child SIGTERM (Linux `PR_SET_PDEATHSIG`, set between fork and
exec): a node then shuts down as on Ctrl-C, the control node stopping the arm,
instead of living on and blocking the next run's arm and simulator address.
The signal follows the *thread* that started the child, so start children from
a thread that lives as long as they should (the main thread, as the launcher does).
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Callable, Mapping, Sequence

PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_DEATH_SIGNAL = signal.SIGTERM  # a node's graceful shutdown: the arm is stopped on the way out


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to SIGTERM the child when its parent dies (None off Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child must not load libraries
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(PARENT_DEATH_SIGNAL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), PARENT_DEATH_SIGNAL)

    return preexec


class _OutputPrefixer(threading.Thread):
    """Copies a child's output to ours, each line prefixed with [name] (as ros2 launch does)."""

    def __init__(self, name: str, stream, recent: deque[str]):
        super().__init__(daemon=True, name=f"output-{name}")
        self.prefix = f"[{name}] "
        self.stream = stream
        self.recent = recent

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            line = raw.decode(errors="replace")
            self.recent.append(line.rstrip("\n"))
            sys.stdout.write(self.prefix + line)
            sys.stdout.flush()


class ManagedProcess:
    """One child process in its own process group.

    Output goes to `log_path` if given, else (with `prefix_output`) to our stdout
    line by line behind `[name]`, else straight to our stdout.
    """

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
                 log_path: str | Path | None = None, cwd: str | Path | None = None,
                 prefix_output: bool = False, terminal: bool = False):
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_path) if log_path else None
        self._log: IO[bytes] | None = None
        self._recent: deque[str] = deque(maxlen=50)  # the last output lines (prefix_output only)
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=self._log or (subprocess.PIPE if prefix_output else None),
            # terminal: our stdin and stderr, so a node can read keys and redraw a status line there.
            stderr=None if terminal else subprocess.STDOUT if (self._log or prefix_output) else None,
            stdin=None if terminal else subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent(),
        )
        self._prefixer: _OutputPrefixer | None = None
        if prefix_output and not self._log:
            self._prefixer = _OutputPrefixer(name, self.popen.stdout, self._recent)
            self._prefixer.start()

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
        """SIGTERM, then SIGKILL after `grace_s`; returns the exit code."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
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

    def recent_lines(self) -> list[str]:
        """The last lines the child wrote (its log's, or what was echoed with prefix_output)."""
        if self._prefixer is not None:
            if self.popen.poll() is not None:
                self._prefixer.join(timeout=1.0)  # the child has exited: let its last lines arrive
            return list(self._recent)
        return self.log_text().splitlines()[-50:]

    def error_line(self) -> str | None:
        """The child's last `error:` line (every FARL entry point reports a fatal problem as one), if any."""
        lines = [line for line in self.recent_lines() if ": error: " in line]
        return lines[-1].strip() if lines else None


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


DDS_PORT_BASE, DDS_DOMAIN_GAIN, DDS_PORTS_PER_DOMAIN = 7400, 250, 250  # RTPS well-known port mapping
MAX_ROS_DOMAIN = 232
SHARED_ROS_DOMAINS = frozenset({0, 42})  # DDS's default and scripts/env.sh's: other stacks live there


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range for port-0 binds (libfranka's UDP socket takes one of these)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def ros_domain_ports(domain: int) -> range:
    """The UDP ports DDS participants of `domain` send to (discovery and user traffic)."""
    start = DDS_PORT_BASE + DDS_DOMAIN_GAIN * domain
    return range(start, start + DDS_PORTS_PER_DOMAIN)


def domain_clear_of_ephemeral_ports(domain: int, low_high: tuple[int, int] | None = None) -> bool:
    """True when none of `domain`'s DDS ports can be handed to a port-0 bind (e.g. libfranka's)."""
    low, high = low_high or ephemeral_port_range()
    ports = ros_domain_ports(domain)
    return ports.stop <= low or ports.start > high


def private_ros_domain(rng=None) -> int:
    """A random ROS domain for one test session, run or benchmark whose DDS ports lie outside the
    ephemeral range.

    In a domain whose ports overlap it (100-214 on Linux), libfranka's UDP state socket, bound to port
    0, can get a port that DDS discovery sends to: the control node then reads an RTPS packet as a
    robot state and stops with "libfranka: incorrect object size".
    """
    import random

    low_high = ephemeral_port_range()
    safe = [d for d in range(MAX_ROS_DOMAIN + 1)
            if d not in SHARED_ROS_DOMAINS and domain_clear_of_ephemeral_ports(d, low_high)]
    return (rng or random.Random()).choice(safe)


def wait_until(predicate, timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll `predicate` until it is true or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())

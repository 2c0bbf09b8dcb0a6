"""The teleop node as a process, driven by key bytes on a pseudo-terminal and HID reports on a FIFO.

No simulator: a probe listens on /farl/teleop/command and /farl/teleop/operator.
Checks what an operator relies on: a held key streams twists at the configured
speed, a released one stops them (deadman), the controls become operator events
with the right outcome, and the status line is drawn on the terminal.
"""
from __future__ import annotations

import os
import pty
import signal
import struct
import subprocess
import sys
import threading
import time

import pytest
from geometry_msgs.msg import TwistStamped
from std_msgs.msg import String

from farl_common import interface as api
from farl_common.task_config import load_task_config
from farl_control.ros.client import RobotClient
from farl_control.ros.endpoints import subscription

pytestmark = [pytest.mark.ros]


class Probe:
    def __init__(self) -> None:
        self.client = RobotClient("teleop_test_probe")
        self.lock = threading.Lock()
        self.commands: list[tuple[float, TwistStamped]] = []
        self.events: list[dict] = []
        subscription(self.client.node, api.TELEOP_COMMAND, self._on_command)
        subscription(self.client.node, api.TELEOP_OPERATOR, self._on_event)

    def _on_command(self, msg: TwistStamped) -> None:
        with self.lock:
            self.commands.append((time.monotonic(), msg))

    def _on_event(self, msg: String) -> None:
        with self.lock:
            self.events.append(api.OPERATOR_PAYLOAD.from_json(msg.data))

    def wait_for_node(self, timeout: float = 30.0) -> bool:
        """Until the teleop node's publishers are discovered (its events are volatile: none may be missed)."""
        node = self.client.node
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.count_publishers(api.TELEOP_OPERATOR.name) and node.count_publishers(api.TELEOP_COMMAND.name):
                time.sleep(1.0)  # the publisher's side of the match
                return True
            time.sleep(0.1)
        return False

    def wait_for(self, predicate, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(self):
                    return True
            time.sleep(0.05)
        return False


def start_node(*params: str, stdin=None, stderr=None) -> subprocess.Popen:
    argv = [sys.executable, "-m", "farl_teleop.teleop_node", "--ros-args", "-p", "task_config:=fragile_push_wall",
            "-p", "operator:=ana", "-p", "reset_after_episode:=false"]
    for p in params:
        argv += ["-p", p]
    return subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)


def stop_node(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            return proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait()
    return proc.returncode


@pytest.mark.timeout(120)
def test_keyboard_on_a_terminal_drives_labels_and_stops_when_released():
    teleop = load_task_config("fragile_push_wall").teleop
    master, slave = pty.openpty()
    screen = bytearray()

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            screen.extend(data)

    probe = Probe()
    proc = start_node("device:=keyboard", stdin=slave, stderr=slave)
    os.close(slave)
    threading.Thread(target=drain, daemon=True).start()
    try:
        deadline = time.monotonic() + 30
        while b"idle, next: task #1" not in screen and time.monotonic() < deadline:
            assert proc.poll() is None, screen.decode(errors="replace")[-2000:]
            time.sleep(0.1)
        assert b"idle, next: task #1" in screen, screen.decode(errors="replace")[-2000:]
        assert probe.wait_for_node()
        os.write(master, b" ")
        assert probe.wait_for(lambda p: any(e["action"] == "start" for e in p.events))
        t_press = time.monotonic()
        while time.monotonic() - t_press < 1.5:  # a held key: the terminal repeats it every ~30 ms
            os.write(master, b"w")
            time.sleep(0.03)
        released = time.monotonic()
        time.sleep(teleop.key_hold_s + 0.6)
        with probe.lock:
            commands = list(probe.commands)
        assert len(commands) >= 20, len(commands)
        scale = teleop.speed_scales[teleop.initial_scale_index]
        last = commands[-1][1].twist.linear
        assert last.x == pytest.approx(teleop.max_linear_speed * scale) and last.y == 0.0 and last.z == 0.0
        assert commands[-1][1].header.frame_id == api.BASE_FRAME
        assert commands[-1][0] <= released + teleop.key_hold_s + 0.4  # deadman: nothing after the hold time
        gaps = [b[0] - a[0] for a, b in zip(commands, commands[1:])]
        assert max(gaps) < teleop.key_hold_s - 0.1  # one unbroken motion while the key is held (load allowed)
        os.write(master, b"f")
        os.write(master, b" ")
        assert probe.wait_for(lambda p: any(e["action"] == "stop" for e in p.events))
        with probe.lock:
            events = list(probe.events)
        stop = next(e for e in events if e["action"] == "stop")
        assert [e["action"] for e in events] == ["start", "failure", "stop"] + [e["action"] for e in events[3:]]
        assert stop["outcome"] == "failure" and stop["operator"] == "ana" and stop["device"] == "keyboard"
        assert b"REC task #1" in screen
    finally:
        code = stop_node(proc)
        probe.client.close()
        os.close(master)
    assert code == 0


@pytest.mark.timeout(120)
def test_spacemouse_reports_become_twists_and_button_actions(tmp_path):
    teleop = load_task_config("fragile_push_wall").teleop
    fifo = tmp_path / "hidraw"
    os.mkfifo(fifo)
    probe = Probe()
    proc = start_node("device:=spacemouse", f"hidraw:={fifo}", stderr=subprocess.DEVNULL)
    writer = None
    try:
        deadline = time.monotonic() + 30
        while writer is None and time.monotonic() < deadline:
            assert proc.poll() is None
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader yet
                time.sleep(0.1)
        assert writer is not None
        assert probe.wait_for_node()

        def report(data: bytes, pause: float = 0.15) -> None:
            # A FIFO, unlike hidraw, may join reports in one read: buttons are paced well apart
            # (the node reads every 1/rate_hz); joined motion reports only garble rotation, unused here.
            os.write(writer, data)
            time.sleep(pause)

        report(bytes([3, 1, 0]))  # left button: press ...
        report(bytes([3, 0, 0]))  # ... and release: start
        assert probe.wait_for(lambda p: any(e["action"] == "start" for e in p.events))
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:
            report(bytes([1]) + struct.pack("<3h", 350, 0, 0), pause=0.02)  # full right
        assert probe.wait_for(lambda p: len(p.commands) >= 5)
        time.sleep(0.3)  # the FIFO drained: the button reports below arrive alone
        with probe.lock:
            last = probe.commands[-1][1].twist.linear
        scale = teleop.speed_scales[teleop.initial_scale_index]
        assert last.y == pytest.approx(-teleop.max_linear_speed * scale) and last.x == 0.0
        report(bytes([3, 2, 0]))
        report(bytes([3, 0, 0]))
        assert probe.wait_for(lambda p: any(e["action"] == "failure" for e in p.events))
    finally:
        if writer is not None:
            os.close(writer)
        code = stop_node(proc)
        probe.client.close()
    assert code == 0

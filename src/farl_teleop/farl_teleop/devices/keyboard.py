"""Keyboard teleoperation from a terminal (works over ssh): key bytes -> motion and operator controls.

The terminal is put in cbreak mode (no line buffering, no echo; Ctrl-C still
interrupts), and bytes are read without blocking. A terminal only reports
presses, not releases: a held key arrives as one byte, a pause (the
auto-repeat delay, typically 0.25-0.5 s), then a byte every ~30 ms. So a motion
key commands motion for `key_hold_s` after its last byte, longer than that
delay: holding the key gives one unbroken motion, releasing it stops the arm
within `key_hold_s` (deadman: no key, no command).

Keys (also printed by the teleop node at start):
    w / s, Up / Down       TCP +x / -x (away from / toward the base)
    a / d, Left / Right    TCP +y / -y
    q / e                  TCP up / down
    + / -                  speed scale up / down
    space                  start / stop an episode
    x                      discard the episode being recorded (or the one just stopped)
    1 / 2 / 3              next episode's kind: task / recovery / failure
    f                      mark: failure happened
    g                      mark: success (goal reached)
    r                      reset done (objects put back)
    Ctrl-C                 quit
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

MOTION_KEYS: dict[str, tuple[int, float]] = {  # key -> (base axis, sign)
    "w": (0, 1.0), "up": (0, 1.0), "s": (0, -1.0), "down": (0, -1.0),
    "a": (1, 1.0), "left": (1, 1.0), "d": (1, -1.0), "right": (1, -1.0),
    "q": (2, 1.0), "e": (2, -1.0),
}
CONTROL_KEYS: dict[str, str] = {
    " ": "toggle", "x": "discard", "1": "kind:task", "2": "kind:recovery", "3": "kind:failure",
    "f": "failure", "g": "success", "r": "reset_done", "+": "faster", "=": "faster", "-": "slower",
}
_ARROWS = {b"A": "up", b"B": "down", b"C": "right", b"D": "left"}
HELP = ("keys: w/s a/d q/e (or arrows) move, +/- speed, space start/stop, x discard, "
        "1/2/3 kind task/recovery/failure, f failure, g success, r reset done, Ctrl-C quit")


class KeyDecoder:
    """Bytes from the terminal -> key names ('w', 'up', ' ', ...); an escape sequence may span reads."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> list[str]:
        buffer, keys = self.pending + data, []
        self.pending = b""
        i = 0
        while i < len(buffer):
            byte = buffer[i:i + 1]
            if byte == b"\x1b":
                if i + 1 >= len(buffer) or (buffer[i + 1:i + 2] == b"[" and i + 2 >= len(buffer)):
                    self.pending = buffer[i:]  # wait for the rest of the sequence
                    break
                if buffer[i + 1:i + 2] == b"[" and buffer[i + 2:i + 3] in _ARROWS:
                    keys.append(_ARROWS[buffer[i + 2:i + 3]])
                    i += 3
                    continue
                i += 1  # a lone escape or a sequence we do not use
                continue
            if byte.isascii():
                keys.append(byte.decode().lower() if byte.isalpha() else byte.decode())
            i += 1
        return keys


@dataclass
class KeyboardMapper:
    """Key names -> the current motion (axes in [-1, 1], deadman by `key_hold_s`) and control actions."""

    key_hold_s: float

    def __post_init__(self) -> None:
        self.last_press: dict[str, float] = {}

    def press(self, keys: list[str], now: float) -> list[str]:
        """Register keys pressed at `now`; returns the control actions among them, in order."""
        actions = []
        for key in keys:
            if key in MOTION_KEYS:
                self.last_press[key] = now
            elif key in CONTROL_KEYS:
                actions.append(CONTROL_KEYS[key])
        return actions

    def axes(self, now: float) -> np.ndarray | None:
        """[vx, vy, vz, wx, wy, wz] from the motion keys still held; None when none is (no command)."""
        out, held = np.zeros(6), False
        for key, pressed_at in self.last_press.items():
            if now - pressed_at <= self.key_hold_s:
                axis, sign = MOTION_KEYS[key]
                out[axis] += sign
                held = True
        if not held:
            return None
        return np.clip(out, -1.0, 1.0)


class RawTerminal:
    """cbreak mode on a terminal for the lifetime of the `with` block (restored on any exit)."""

    def __init__(self, fd: int | None = None):
        self.fd = sys.stdin.fileno() if fd is None else fd
        self._saved = None

    def __enter__(self) -> "RawTerminal":
        import termios
        import tty

        if not os.isatty(self.fd):
            raise OSError("the keyboard device needs a terminal on stdin (run it in a terminal or over ssh -t)")
        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        os.set_blocking(self.fd, False)
        return self

    def read(self) -> bytes:
        try:
            return os.read(self.fd, 1024)
        except BlockingIOError:
            return b""

    def __exit__(self, *exc) -> None:
        import termios

        os.set_blocking(self.fd, True)
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSANOW, self._saved)

"""3Dconnexion SpaceMouse: HID input reports -> 6-axis deflection and buttons.

Read from the kernel's hidraw device (/dev/hidrawN), which delivers exactly the
HID input reports hidapi would: no extra Python package and no daemon
(spacenavd) needed, and the parsing below is the code a test drives with raw
report bytes. The report layout is the one pyspacemouse documents for these
devices:

    report 1: translation x, y, z  as int16 little endian (older devices: 7 bytes;
              SpaceMouse Wireless / Compact in wireless mode: 13 bytes, rotation follows)
    report 2: rotation rx, ry, rz  as int16 little endian
    report 3: buttons, a bitmask (bit 0 left, bit 1 right)

The device reports only while it is deflected (and once more at rest), so "no
report for input_timeout_s" is no input: the deadman.

Device axes (puck seen from the operator: x right, y toward the operator, z
down, as the raw reports give them) are mapped to the robot base frame for an
operator facing the robot from the front: pushing the puck away moves the TCP
away from the base (+x), to the right moves it right (-y), lifting the puck
lifts the TCP (+z).
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

VENDOR_IDS = (0x046D, 0x256F)  # Logitech (older 3Dconnexion devices), 3Dconnexion
# base axis <- sign * device axis, for translation and rotation: (index, sign) per base axis.
_BASE_FROM_DEVICE = ((1, -1.0), (0, -1.0), (2, -1.0))
LEFT, RIGHT = 0x01, 0x02


@dataclass
class SpaceMouseState:
    """The latest deflection (raw counts, device axes) and buttons, with the time of the last report."""

    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    rotation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    buttons: int = 0
    last_report: float | None = None


def apply_report(state: SpaceMouseState, report: bytes, now: float) -> bool:
    """Update `state` from one input report; returns False for a report this code does not know."""
    if not report:
        return False
    report_id = report[0]
    if report_id == 1 and len(report) >= 7:
        state.translation = np.array(struct.unpack_from("<3h", report, 1), dtype=float)
        if len(report) >= 13:
            state.rotation = np.array(struct.unpack_from("<3h", report, 7), dtype=float)
    elif report_id == 2 and len(report) >= 7:
        state.rotation = np.array(struct.unpack_from("<3h", report, 1), dtype=float)
    elif report_id == 3 and len(report) >= 2:
        state.buttons = report[1]
    else:
        return False
    state.last_report = now
    return True


def deflection(state: SpaceMouseState, full_scale: float, deadband: float) -> np.ndarray:
    """[vx, vy, vz, wx, wy, wz] in the base frame, each in [-1, 1], zero inside the deadband."""
    out = np.zeros(6)
    for i, (axis, sign) in enumerate(_BASE_FROM_DEVICE):
        out[i] = sign * state.translation[axis]
        out[3 + i] = sign * state.rotation[axis]
    out = np.clip(out / full_scale, -1.0, 1.0)
    # Deadband with rescaling, so output starts at 0 just outside it and still reaches 1.
    magnitude = np.abs(out)
    out = np.where(magnitude < deadband, 0.0, np.sign(out) * (magnitude - deadband) / (1.0 - deadband))
    return out


class ButtonChords:
    """Buttons act on release, by the set held during the press: left, right, or both together (a chord).

    Acting on release lets the operator press both buttons without the first
    one to go down firing on its own.
    """

    def __init__(self) -> None:
        self.held = 0

    def update(self, buttons: int) -> int | None:
        """The chord (bitmask) completed by this report, or None."""
        if buttons:
            self.held |= buttons
            return None
        chord, self.held = self.held, 0
        return chord or None


def find_hidraw(sys_class: str | Path = "/sys/class/hidraw") -> Path | None:
    """/dev/hidrawN of the first 3Dconnexion device, from sysfs (None if there is none)."""
    root = Path(sys_class)
    if not root.is_dir():
        return None
    for entry in sorted(root.iterdir()):
        try:
            uevent = (entry / "device" / "uevent").read_text()
        except OSError:
            continue
        for line in uevent.splitlines():
            if line.startswith("HID_ID="):
                try:
                    _, vendor, _product = line.split("=", 1)[1].split(":")
                except ValueError:
                    continue
                if int(vendor, 16) in VENDOR_IDS:
                    return Path("/dev") / entry.name
    return None


class HidrawReader:
    """Non-blocking reads of input reports from a hidraw device (or any file descriptor, e.g. a pipe in tests)."""

    def __init__(self, fd: int):
        self.fd = fd
        os.set_blocking(fd, False)

    @staticmethod
    def open(path: str | Path) -> "HidrawReader":
        try:
            return HidrawReader(os.open(str(path), os.O_RDONLY | os.O_NONBLOCK))
        except PermissionError:
            raise PermissionError(f"{path}: permission denied; add a udev rule for the SpaceMouse "
                                  "(see README: teleoperation) or run with access to the device") from None

    def reports(self, size: int = 64) -> list[bytes]:
        """Every report waiting (hidraw returns one report per read)."""
        out = []
        while True:
            try:
                data = os.read(self.fd, size)
            except BlockingIOError:
                break
            if not data:
                break
            out.append(data)
        return out

    def close(self) -> None:
        os.close(self.fd)

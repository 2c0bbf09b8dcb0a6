"""Devices behind one interface for the teleop node: `poll(now) -> (axes | None, actions)`.

`axes` is [vx, vy, vz, wx, wy, wz] in [-1, 1] in the base frame, None when the
operator gives no input (then nothing is published: deadman). `actions` are
operator controls for `session.OperatorSession`. `twist()` scales axes to a
velocity with the task config's teleop section and the current speed scale.
"""
from __future__ import annotations

import numpy as np

from farl_common.task_config import TeleopConfig

from .devices.keyboard import KeyboardMapper, KeyDecoder
from .devices.spacemouse import LEFT, RIGHT, ButtonChords, SpaceMouseState, apply_report, deflection

# SpaceMouse buttons (acting on release): left = start/stop, right = mark failure, both = reset done.
CHORD_ACTIONS = {LEFT: "toggle", RIGHT: "failure", LEFT | RIGHT: "reset_done"}


def twist(axes: np.ndarray, config: TeleopConfig, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(linear m/s, angular rad/s) for device axes at speed `scale`."""
    axes = np.clip(np.asarray(axes, dtype=float), -1.0, 1.0)
    return axes[:3] * config.max_linear_speed * scale, axes[3:] * config.max_angular_speed * scale


def describe(axes: np.ndarray | None) -> str:
    """'x+ z-' for the status line."""
    if axes is None:
        return ""
    names = ("x", "y", "z", "rx", "ry", "rz")
    return " ".join(f"{n}{'+' if v > 0 else '-'}" for n, v in zip(names, axes) if abs(v) > 1e-6)


class SpaceMouseInput:
    """Input reports from `reader` (a `HidrawReader`, or anything with `reports()`)."""

    name = "spacemouse"

    def __init__(self, reader, config: TeleopConfig):
        self.reader, self.config = reader, config
        self.state = SpaceMouseState()
        self.chords = ButtonChords()

    def poll(self, now: float) -> tuple[np.ndarray | None, list[str]]:
        actions = []
        for report in self.reader.reports():
            if apply_report(self.state, report, now) and report[0] == 3:
                chord = self.chords.update(self.state.buttons)
                if chord in CHORD_ACTIONS:
                    actions.append(CHORD_ACTIONS[chord])
        last = self.state.last_report
        if last is None or now - last > self.config.input_timeout_s:
            return None, actions
        axes = deflection(self.state, self.config.spacemouse_full_scale, self.config.deadband)
        return (axes if np.any(axes) else None), actions


class KeyboardInput:
    """Key bytes from `source` (a `RawTerminal`, or anything with `read() -> bytes`)."""

    name = "keyboard"

    def __init__(self, source, config: TeleopConfig):
        self.source, self.config = source, config
        self.decoder = KeyDecoder()
        self.mapper = KeyboardMapper(config.key_hold_s)

    def poll(self, now: float) -> tuple[np.ndarray | None, list[str]]:
        actions = self.mapper.press(self.decoder.feed(self.source.read()), now)
        return self.mapper.axes(now), actions

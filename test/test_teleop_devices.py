"""Teleop devices, driven only at the byte level: SpaceMouse HID reports and terminal key bytes.

The mapping code under test is the one the teleop node runs: report parsing,
deadband, axis mapping to the base frame, button chords, key decoding, the
keyboard's hold window (deadman), speed scaling from the task config. No ROS.
"""
from __future__ import annotations

import os
import socket
import struct

import numpy as np
import pytest

from farl_common.task_config import TeleopConfig, load_task_config
from farl_teleop.devices.keyboard import KeyboardMapper, KeyDecoder
from farl_teleop.devices.spacemouse import HidrawReader, find_hidraw
from farl_teleop.inputs import KeyboardInput, SpaceMouseInput, twist

CONFIG = TeleopConfig(max_linear_speed=0.1, speed_scales=(0.5, 1.0), initial_scale_index=1, deadband=0.1,
                      spacemouse_full_scale=350.0, input_timeout_s=0.15, key_hold_s=0.6)


def translation(x: int, y: int, z: int) -> bytes:
    return bytes([1]) + struct.pack("<3h", x, y, z)


def rotation(rx: int, ry: int, rz: int) -> bytes:
    return bytes([2]) + struct.pack("<3h", rx, ry, rz)


def buttons(mask: int) -> bytes:
    return bytes([3, mask, 0])


class HidPair:
    """A hidraw stand-in: a datagram socket pair keeps one report per read, as /dev/hidrawN does."""

    def __init__(self) -> None:
        self.device, self.host = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.reader = HidrawReader(self.host.fileno())

    def send(self, *reports: bytes) -> None:
        for report in reports:
            self.device.send(report)


@pytest.fixture
def hid():
    pair = HidPair()
    yield pair
    pair.device.close()
    pair.host.close()


def test_spacemouse_push_away_moves_the_tcp_away_from_the_base_at_full_speed(hid):
    mouse = SpaceMouseInput(hid.reader, CONFIG)
    hid.send(translation(0, -350, 0), rotation(0, 0, 0))  # device y points toward the operator
    axes, actions = mouse.poll(now=10.0)
    assert actions == []
    np.testing.assert_allclose(axes[:3], [1.0, 0.0, 0.0])
    linear, angular = twist(axes, CONFIG, scale=1.0)
    np.testing.assert_allclose(linear, [0.1, 0.0, 0.0])
    np.testing.assert_allclose(angular, 0.0)  # max_angular_speed 0: the gripper keeps pointing down


def test_spacemouse_right_and_lift_map_to_minus_y_and_plus_z_and_speed_scales(hid):
    mouse = SpaceMouseInput(hid.reader, CONFIG)
    hid.send(translation(350, 0, -350))  # right, lifted (device z points down)
    axes, _ = mouse.poll(now=1.0)
    np.testing.assert_allclose(axes[:3], [0.0, -1.0, 1.0])
    linear, _ = twist(axes, CONFIG, scale=0.5)
    np.testing.assert_allclose(linear, [0.0, -0.05, 0.05])


def test_spacemouse_wireless_report_carries_translation_and_rotation_in_one(hid):
    mouse = SpaceMouseInput(hid.reader, TeleopConfig(max_angular_speed=0.5, deadband=0.0))
    hid.send(bytes([1]) + struct.pack("<6h", 0, 0, 0, 0, 0, -350))
    axes, _ = mouse.poll(now=1.0)
    np.testing.assert_allclose(axes, [0, 0, 0, 0, 0, 1.0])


def test_spacemouse_deadband_and_silence_mean_no_command(hid):
    mouse = SpaceMouseInput(hid.reader, CONFIG)
    hid.send(translation(20, -20, 10))  # below 10 % of full scale: a hand resting on the puck
    assert mouse.poll(now=1.0)[0] is None
    hid.send(translation(0, -175, 0))
    axes, _ = mouse.poll(now=2.0)
    assert axes is not None and 0 < axes[0] < 1.0  # rescaled outside the deadband
    assert mouse.poll(now=2.1)[0] is not None  # no new report yet, still within input_timeout_s
    assert mouse.poll(now=2.2)[0] is None  # device went quiet: deadman


def test_spacemouse_buttons_act_on_release_and_a_chord_is_its_own_action(hid):
    mouse = SpaceMouseInput(hid.reader, CONFIG)
    hid.send(buttons(1))
    assert mouse.poll(now=1.0)[1] == []  # pressed, not yet released
    hid.send(buttons(0))
    assert mouse.poll(now=1.1)[1] == ["toggle"]
    hid.send(buttons(2), buttons(0))
    assert mouse.poll(now=1.2)[1] == ["failure"]
    hid.send(buttons(1), buttons(3), buttons(2), buttons(0))  # both held together, released one by one
    assert mouse.poll(now=1.3)[1] == ["reset_done"]


def test_unknown_reports_are_ignored(hid):
    mouse = SpaceMouseInput(hid.reader, CONFIG)
    hid.send(bytes([23, 1, 2, 3]), bytes([1, 0]))
    assert mouse.poll(now=1.0) == (None, [])


def test_find_hidraw_picks_the_3dconnexion_device_from_sysfs(tmp_path):
    for name, hid_id in (("hidraw0", "0003:0000046D:0000C52B"), ("hidraw1", "0003:0000256F:0000C635")):
        (tmp_path / name / "device").mkdir(parents=True)
        (tmp_path / name / "device" / "uevent").write_text(f"DRIVER=hid-generic\nHID_ID={hid_id}\n")
    # 046D is Logitech too: the first matching entry wins, in name order
    assert str(find_hidraw(tmp_path)) == "/dev/hidraw0"
    (tmp_path / "hidraw0" / "device" / "uevent").write_text("HID_ID=0003:00001234:00000001\n")
    assert str(find_hidraw(tmp_path)) == "/dev/hidraw1"
    assert find_hidraw(tmp_path / "missing") is None


class KeyBytes:
    def __init__(self) -> None:
        self.pending = b""

    def read(self) -> bytes:
        data, self.pending = self.pending, b""
        return data


def test_key_decoder_reads_letters_arrows_and_split_escape_sequences():
    decoder = KeyDecoder()
    assert decoder.feed(b"wA \x1b[A") == ["w", "a", " ", "up"]
    assert decoder.feed(b"\x1b") == []  # the rest of the sequence is still on its way
    assert decoder.feed(b"[D+") == ["left", "+"]
    assert decoder.feed(b"\x1bx") == ["x"]  # a lone escape is dropped


def test_a_held_key_moves_without_a_gap_and_a_released_one_stops_within_the_hold_time():
    keys = KeyBytes()
    keyboard = KeyboardInput(keys, CONFIG)
    keys.pending = b"w"
    axes, _ = keyboard.poll(now=0.0)
    np.testing.assert_allclose(axes[:3], [1, 0, 0])
    # the terminal's auto-repeat starts ~0.5 s later: the motion must not stop in between
    assert keyboard.poll(now=0.5)[0] is not None
    keys.pending = b"ww"
    assert keyboard.poll(now=0.55)[0] is not None
    assert keyboard.poll(now=1.1)[0] is not None
    assert keyboard.poll(now=1.2)[0] is None  # released: no command (deadman)


def test_two_keys_combine_and_opposite_keys_cancel():
    mapper = KeyboardMapper(key_hold_s=0.6)
    mapper.press(["w", "q"], now=0.0)
    np.testing.assert_allclose(mapper.axes(0.1)[:3], [1, 0, 1])
    mapper.press(["s"], now=0.2)
    np.testing.assert_allclose(mapper.axes(0.3)[:3], [0, 0, 1])


def test_keyboard_controls_map_to_operator_actions():
    keys = KeyBytes()
    keyboard = KeyboardInput(keys, CONFIG)
    keys.pending = b" 2fgrx+-\x1b[C"
    axes, actions = keyboard.poll(now=0.0)
    assert actions == ["toggle", "kind:recovery", "failure", "success", "reset_done", "discard", "faster", "slower"]
    np.testing.assert_allclose(axes[:3], [0, -1, 0])


def test_speed_comes_from_the_task_config():
    config = load_task_config("fragile_push_wall")
    teleop = config.teleop
    assert teleop.max_linear_speed <= config.control.max_linear_speed  # (the control node would clip it anyway)
    linear, _ = twist(np.array([1.0, 0, 0, 0, 0, 0]), teleop, teleop.speed_scales[-1])
    assert linear[0] == pytest.approx(teleop.max_linear_speed * teleop.speed_scales[-1])


def test_raw_terminal_refuses_a_non_terminal_with_one_line():
    from farl_teleop.devices.keyboard import RawTerminal

    read, write = os.pipe()
    try:
        with pytest.raises(OSError, match="needs a terminal"):
            RawTerminal(read).__enter__()
    finally:
        os.close(read)
        os.close(write)

"""Unit tests of the command filter (farl_control.robot.safety): no ROS, no robot."""
from __future__ import annotations

import math

import pytest

from farl_common.task_config import ControlConfig, load_task_config
from farl_control.robot.safety import AUTONOMOUS, TELEOP, Command, CommandFilter, check_command

CENTRE = (0.5, 0.0, 0.3)
PERIOD = 1.0 / load_task_config("fragile_push_wall").control.rate_hz


@pytest.fixture(scope="module")
def limits() -> ControlConfig:
    return load_task_config("fragile_push_wall").control


def cmd(linear=(0.0, 0.0, 0.0), angular=(0.0, 0.0, 0.0), t=0.0, source=AUTONOMOUS, frame="base") -> Command:
    return Command(tuple(linear), tuple(angular), frame, source, t)


def norm(v) -> float:
    return math.sqrt(sum(x * x for x in v))


def test_valid_command_passes_unchanged(limits):
    f = CommandFilter(limits)
    assert f.receive(cmd((0.05, -0.02, 0.01), (0.0, 0.0, 0.1))) is None
    d = f.decide(0.05, CENTRE)
    assert d.linear == (0.05, -0.02, 0.01) and d.angular == (0.0, 0.0, 0.1)
    assert d.source == AUTONOMOUS and not d.clipped and not d.watchdog and d.reasons == ()


@pytest.mark.parametrize("bad", [(math.nan, 0, 0), (0, math.inf, 0), (0, 0, -math.inf)])
def test_non_finite_rejected_and_not_stored(limits, bad):
    f = CommandFilter(limits)
    f.receive(cmd((0.01, 0, 0), t=0.0))
    reason = f.receive(cmd(bad, t=0.05))
    assert reason is not None and "non-finite" in reason
    # The earlier valid command still drives (and still ages toward the watchdog).
    assert f.decide(0.1, CENTRE).linear == (0.01, 0.0, 0.0)
    assert f.decide(0.0 + limits.command_timeout_s + 0.01, CENTRE).is_zero


def test_non_finite_angular_rejected(limits):
    assert "non-finite" in check_command(cmd(angular=(0, math.nan, 0)), limits)


def test_wrong_frame_rejected(limits):
    reason = check_command(cmd((0.01, 0, 0), frame="tool0"), limits)
    assert reason is not None and "tool0" in reason
    for frame in limits.accepted_frames:
        assert check_command(cmd(frame=frame), limits) is None


def test_linear_speed_clipped_direction_kept(limits):
    f = CommandFilter(limits)
    f.receive(cmd((0.3, 0.4, 0.0)))  # 0.5 m/s > 0.2 limit, < absurd
    d = f.decide(0.0, CENTRE)
    assert norm(d.linear) == pytest.approx(limits.max_linear_speed)
    assert d.linear[1] / d.linear[0] == pytest.approx(4 / 3)
    assert d.clipped and any("linear speed" in r and "absurd" not in r for r in d.reasons)


def test_absurd_magnitudes_reported_and_clipped(limits):
    f = CommandFilter(limits)
    f.receive(cmd((100.0, 0, 0), (0, 0, 50.0)))
    d = f.decide(0.0, CENTRE)
    assert norm(d.linear) == pytest.approx(limits.max_linear_speed)
    assert norm(d.angular) == pytest.approx(limits.max_angular_speed)
    assert sum("absurd" in r for r in d.reasons) == 2


def test_watchdog_zeroes_stale_command(limits):
    f = CommandFilter(limits)
    f.receive(cmd((0.05, 0, 0), t=1.0))
    assert not f.decide(1.0 + limits.command_timeout_s - 0.01, CENTRE).is_zero
    d = f.decide(1.0 + limits.command_timeout_s + 0.01, CENTRE)
    assert d.is_zero and d.watchdog and "watchdog" in d.reasons[0]


def test_no_command_is_idle_zero(limits):
    d = CommandFilter(limits).decide(0.0, CENTRE)
    assert d.is_zero and d.source is None and not d.watchdog


def test_teleop_overrides_while_held_then_stale_teleop_stops(limits):
    f = CommandFilter(limits)
    f.receive(cmd((0.05, 0, 0), t=0.0))
    f.receive(cmd((0, 0.05, 0), t=0.0, source=TELEOP))
    d = f.decide(0.1, CENTRE)
    assert d.source == TELEOP and d.linear == (0, 0.05, 0)
    # Autonomous keeps arriving, but a human who just let go still holds the arm
    # (stale teleop within the hold window → stop, not resume the policy).
    f.receive(cmd((0.05, 0, 0), t=limits.command_timeout_s + 0.05))
    d = f.decide(limits.command_timeout_s + 0.1, CENTRE)
    assert d.is_zero and d.watchdog
    # After the hold window the autonomous command drives again.
    t = limits.teleop_hold_s + 0.01
    f.receive(cmd((0.05, 0, 0), t=t))
    d = f.decide(t + 0.01, CENTRE)
    assert d.source == AUTONOMOUS and d.linear == (0.05, 0.0, 0.0)


def test_box_inside_far_from_faces_untouched(limits):
    f = CommandFilter(limits)
    f.receive(cmd((0.1, -0.1, -0.1)))
    d = f.decide(0.0, CENTRE)
    assert d.linear == (0.1, -0.1, -0.1) and d.reasons == ()


def test_box_scales_outward_component_within_margin(limits):
    f = CommandFilter(limits)
    hi = limits.workspace_max
    pos = (hi[0] - limits.boundary_margin / 2, 0.0, 0.3)
    f.receive(cmd((0.1, 0.1, 0.0)))
    d = f.decide(0.0, pos)
    assert 0.0 < d.linear[0] < 0.1 * 0.5 + 1e-9  # outward x reduced at least proportionally
    assert d.linear[0] * limits.lookahead_s <= limits.boundary_margin / 2 + 1e-9  # cannot cross within the look-ahead
    assert d.linear[1] == pytest.approx(0.1)  # tangential motion kept
    assert any("workspace: x" in r for r in d.reasons)


def test_box_inward_motion_near_face_untouched(limits):
    f = CommandFilter(limits)
    lo = limits.workspace_min
    f.receive(cmd((0.0, 0.0, 0.1)))  # up, away from the floor face
    d = f.decide(0.0, (0.5, 0.0, lo[2] + 0.001))
    assert d.linear == (0.0, 0.0, 0.1) and not d.clipped


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_outside_box_only_inward_allowed(limits, axis):
    f = CommandFilter(limits)
    pos = list(CENTRE)
    pos[axis] = limits.workspace_max[axis] + 0.05
    out = [0.0, 0.0, 0.0]
    out[axis] = 0.1
    f.receive(cmd(out))
    d = f.decide(0.0, tuple(pos))
    assert d.linear[axis] == 0.0 and any("outside" in r for r in d.reasons)
    f.receive(cmd([-x for x in out]))
    assert f.decide(0.0, tuple(pos)).linear[axis] == pytest.approx(-0.1)


def test_box_never_lets_a_simulated_tcp_leave(limits):
    """Integrate the filter's output at the control period: the TCP stays inside the box."""
    f = CommandFilter(limits)
    pos = list(CENTRE)
    for k in range(200):
        t = k * PERIOD
        f.receive(cmd((0.2, 0.2, -0.2), t=t))
        d = f.decide(t, tuple(pos))
        pos = [p + v * PERIOD for p, v in zip(pos, d.linear)]
        for i in range(3):
            assert limits.workspace_min[i] - 1e-9 <= pos[i] <= limits.workspace_max[i] + 1e-9


def test_clear_forgets_commands(limits):
    f = CommandFilter(limits)
    f.receive(cmd((0.05, 0, 0)))
    f.clear()
    assert f.decide(0.0, CENTRE).is_zero

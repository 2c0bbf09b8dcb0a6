"""The command filter between everything upstream and the arm (no ROS, pure).

Whatever the shield, a policy or a human sends, the arm only ever receives the
output of `CommandFilter.decide`: a finite velocity in the base frame, at most
the configured speed, that cannot carry the TCP out of the workspace box, and
zero as soon as the command it came from is stale. Every decision comes back as
a value (what was sent and why) so the control node can report it on status
and tests can check it without a robot.

Rules, in order:
1. `check_command` (on receipt): NaN/inf or a frame other than the accepted
   ones → rejected, never stored; the previous valid command keeps ageing, so
   the watchdog still stops the arm if nothing valid follows.
2. Arbitration: a teleop command younger than `teleop_hold_s` overrides the
   autonomous one (an intervention).
3. Watchdog: the chosen command older than `command_timeout_s` → zero velocity.
4. Speed: linear / angular speed scaled down to the limits; a magnitude above
   `absurd_factor` × limit is reported as absurd (still executed at the limit).
5. Workspace box: per axis, the velocity component pointing out of the box is
   scaled linearly to zero over the last `boundary_margin` before a face, and is
   further capped so that motion over the look-ahead (one control period plus
   the arm's response time to a velocity change) cannot cross the face;
   outside the box only motion back inward is kept.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from farl_common.task_config import ControlConfig

Vec3 = tuple[float, float, float]
ZERO3: Vec3 = (0.0, 0.0, 0.0)

AUTONOMOUS = "autonomous"
TELEOP = "teleop"


@dataclass(frozen=True)
class Command:
    """One received velocity command, stamped with the receiver's monotonic clock."""

    linear: Vec3
    angular: Vec3
    frame_id: str
    source: str  # AUTONOMOUS or TELEOP
    received_at: float


@dataclass(frozen=True)
class Decision:
    """What the filter sends to the arm this tick, and why."""

    linear: Vec3
    angular: Vec3
    source: str | None  # which command drove it; None when there is none or it is stale
    reasons: tuple[str, ...] = ()
    watchdog: bool = False  # the chosen command was stale
    clipped: bool = False  # speed or workspace changed the command

    @property
    def is_zero(self) -> bool:
        return not any(self.linear) and not any(self.angular)


def _finite(values: Sequence[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def _norm(v: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def check_command(command: Command, limits: ControlConfig) -> str | None:
    """Why `command` must be rejected on receipt, or None if it may be stored."""
    if not (_finite(command.linear) and _finite(command.angular)):
        return f"rejected {command.source} command: non-finite value (NaN/inf)"
    if command.frame_id not in limits.accepted_frames:
        accepted = ", ".join(repr(f) for f in limits.accepted_frames)
        return f"rejected {command.source} command: frame {command.frame_id!r} is not one of {accepted}"
    return None


def clip_speed(v: Vec3, limit: float, absurd_factor: float, what: str) -> tuple[Vec3, list[str]]:
    """Scale `v` down to norm `limit` (direction kept); report when it was clipped or absurd."""
    n = _norm(v)
    if n <= limit:
        return v, []
    scale = limit / n
    clipped = (v[0] * scale, v[1] * scale, v[2] * scale)
    if n > absurd_factor * limit:
        return clipped, [f"absurd {what} speed {n:.3g} > {absurd_factor:g} x limit {limit:g}; clipped"]
    return clipped, [f"{what} speed {n:.3g} clipped to {limit:g}"]


def clip_to_box(v: Vec3, position: Vec3, limits: ControlConfig) -> tuple[Vec3, list[str]]:
    """Remove the part of `v` that would take the TCP at `position` out of the box."""
    out = list(v)
    reasons: list[str] = []
    margin = limits.boundary_margin
    for i, axis in enumerate("xyz"):
        vi = v[i]
        if vi == 0.0:
            continue
        # Distance to the face the component points at (negative: already beyond it).
        dist = limits.workspace_max[i] - position[i] if vi > 0 else position[i] - limits.workspace_min[i]
        if dist <= 0.0:
            allowed = 0.0
        else:
            allowed = abs(vi)
            if margin > 0.0 and dist < margin:
                allowed *= dist / margin
            allowed = min(allowed, dist / limits.lookahead_s)
        if allowed < abs(vi):
            out[i] = math.copysign(allowed, vi)
            face = "max" if vi > 0 else "min"
            if dist <= 0.0:
                reasons.append(f"workspace: {axis} outside {face} face by {-dist:.3f} m; outward motion removed")
            else:
                reasons.append(f"workspace: {axis} {dist:.3f} m from {face} face; {axis} speed {abs(vi):.3g} -> {allowed:.3g}")
    return (out[0], out[1], out[2]), reasons


@dataclass
class CommandFilter:
    """Holds the latest valid autonomous and teleop commands and decides what to send.

    Not thread-safe by itself: the control node guards it with one lock.
    """

    limits: ControlConfig  # the control section of the task config (rate_hz: the node's actual rate)
    latest: dict[str, Command] = field(default_factory=dict)

    def receive(self, command: Command) -> str | None:
        """Store a command if it is valid; return the rejection reason otherwise."""
        reason = check_command(command, self.limits)
        if reason is None:
            self.latest[command.source] = command
        return reason

    def clear(self) -> None:
        """Forget all commands (after stop/reset: old commands must not resume motion)."""
        self.latest.clear()

    def choose(self, now: float) -> Command | None:
        """Teleop while it is held (younger than teleop_hold_s), else the autonomous command."""
        teleop = self.latest.get(TELEOP)
        if teleop is not None and now - teleop.received_at < self.limits.teleop_hold_s:
            return teleop
        return self.latest.get(AUTONOMOUS)

    def decide(self, now: float, tcp_position: Vec3) -> Decision:
        """The command to send at monotonic time `now` with the TCP at `tcp_position` (base frame)."""
        command = self.choose(now)
        if command is None:
            return Decision(ZERO3, ZERO3, None)
        age = now - command.received_at
        if age > self.limits.command_timeout_s:
            return Decision(
                ZERO3, ZERO3, None,
                reasons=(f"watchdog: {command.source} command is {age:.2f} s old "
                         f"(> {self.limits.command_timeout_s:g} s); stopped",),
                watchdog=True,
            )
        return filter_twist(command, tcp_position, self.limits)


def filter_twist(command: Command, tcp_position: Vec3, limits: ControlConfig) -> Decision:
    """Speed limits, then the workspace box, applied to one fresh, valid command."""
    linear, reasons = clip_speed(command.linear, limits.max_linear_speed, limits.absurd_factor, "linear")
    angular, more = clip_speed(command.angular, limits.max_angular_speed, limits.absurd_factor, "angular")
    reasons += more
    linear, more = clip_to_box(linear, tcp_position, limits)
    reasons += more
    return Decision(linear, angular, command.source, reasons=tuple(reasons), clipped=bool(reasons))

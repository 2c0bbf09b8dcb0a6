"""Whether the arm's connection runs real-time, decided before libfranka is asked.

libfranka's `RealtimeConfig.Enforce` throws from deep inside the Robot
constructor on a kernel without PREEMPT_RT, with a message that names neither
the config key nor the way out. This module makes that decision up front, from
kernel facts passed in (so tests inject them, and `farl doctor` reads the same
ones): the task config's `robot.realtime` gives the mode per robot mode, and
the operator's `allow_non_rt_kernel` is the only way to run the real arm
without real-time when the config enforces it.

No ROS and no franky here: the control node maps the plan onto franky.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from farl_common.errors import FarlInputError
from farl_common.task_config import RealtimeConfig

REALTIME_FLAG = Path("/sys/kernel/realtime")  # "1" on a PREEMPT_RT kernel; what libfranka itself reads
OVERRIDE_PARAMETER = "allow_non_rt_kernel"


@dataclass(frozen=True)
class KernelFacts:
    """What the running kernel says about real-time; read with `read_kernel_facts()`."""

    release: str
    """`uname -r`, for messages."""
    version: str
    """`uname -v`: a PREEMPT_RT build says "PREEMPT_RT" (or "PREEMPT RT") here."""
    realtime_flag: str | None
    """Contents of /sys/kernel/realtime, None when the file does not exist."""

    @property
    def realtime(self) -> bool:
        """libfranka's own test (hasRealtimeKernel): /sys/kernel/realtime reads 1."""
        return (self.realtime_flag or "").strip() == "1"

    @property
    def preempt_rt_build(self) -> bool:
        return "PREEMPT_RT" in self.version or "PREEMPT RT" in self.version

    def describe(self) -> str:
        flag = "absent" if self.realtime_flag is None else repr(self.realtime_flag.strip())
        return f"kernel {self.release}, {REALTIME_FLAG} {flag}"


def read_kernel_facts(flag_path: Path = REALTIME_FLAG) -> KernelFacts:
    uname = os.uname()
    try:
        flag: str | None = flag_path.read_text()
    except OSError:
        flag = None
    return KernelFacts(release=uname.release, version=uname.version, realtime_flag=flag)


@dataclass(frozen=True)
class RealtimePlan:
    """What the control node does: libfranka Enforce (True) or Ignore, and a line to log loudly."""

    enforce: bool
    warning: str | None = None


def plan_realtime(config: RealtimeConfig, simulated: bool, kernel: KernelFacts, allow_non_rt_kernel: bool,
                  source: str | Path | None = None) -> RealtimePlan:
    """The real-time mode for this start, or FarlInputError (one line: key, kernel, the two ways out)."""
    mode_key = "robot.realtime.sim" if simulated else "robot.realtime.real"
    if config.mode(simulated) == "ignore":
        if simulated:
            return RealtimePlan(enforce=False)
        return RealtimePlan(enforce=False, warning=(
            f"the real arm runs WITHOUT real-time ({mode_key}: ignore): libfranka may stop the arm with "
            "communication_constraints_violation reflexes; set it to enforce on a PREEMPT_RT kernel"))
    if kernel.realtime:
        return RealtimePlan(enforce=True)
    if allow_non_rt_kernel:
        return RealtimePlan(enforce=False, warning=(
            f"{OVERRIDE_PARAMETER}:=true OVERRIDES {mode_key}: enforce on a non-real-time kernel "
            f"({kernel.describe()}): the arm runs WITHOUT real-time guarantees; expect "
            "communication_constraints_violation reflexes, never leave this on for learning runs"))
    hint = " (uname says PREEMPT_RT, but libfranka reads the flag file)" if kernel.preempt_rt_build else ""
    raise FarlInputError(source, (
        f"enforce needs a PREEMPT_RT kernel, this is not one ({kernel.describe()}){hint}; boot a real-time "
        f"kernel (docs/BRINGUP.md), or start with {OVERRIDE_PARAMETER}:=true to run without real-time "
        "at your own risk"), key=mode_key)

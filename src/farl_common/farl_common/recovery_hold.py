"""Hysteresis for the shield: pi_rec keeps control for a few ticks after it fires.

The paper's rule is per tick: pi_rec acts exactly when C_H > eps_safe. On a dynamic
task that lets the task policy back in as soon as one backing-off tick has pulled
the risk under eps_safe, and its next push re-creates the danger: the shield
then flickers between the two policies while the ball rolls out. Holding pi_rec
for `ticks` more ticks after each trigger let it finish steering away (Bounded
Soccer twin, 200 episodes: failures -45 % -> -53 %, `benchmarks/twin_shield_diagnosis.py`).
`ticks = 0` is the paper's rule. Every shield (the ONNX runtime on the robot, the
twin's actors) applies it through this one class, so they hold alike.
"""
from __future__ import annotations

import numpy as np


class RecoveryHold:
    """Per environment, how many more ticks pi_rec keeps control after its last trigger."""

    def __init__(self, ticks: int, environments: int = 1):
        if int(ticks) != ticks or ticks < 0:
            raise ValueError(f"recovery hold must be a whole number of ticks >= 0, got {ticks!r}")
        self.ticks = int(ticks)
        self.left = np.zeros(int(environments), dtype=np.int64)

    def apply(self, triggered: np.ndarray | bool) -> np.ndarray:
        """The shield's own triggers in, the ticks where pi_rec acts out (a trigger restarts the hold)."""
        fired = np.atleast_1d(np.asarray(triggered, dtype=bool))
        if fired.shape != self.left.shape:
            raise ValueError(f"{fired.shape[0]} decisions for {self.left.shape[0]} environments")
        holding = ~fired & (self.left > 0)
        self.left = np.where(fired, self.ticks, np.where(holding, self.left - 1, 0))
        return fired | holding

    def holds(self, triggered: bool) -> bool:
        """One environment: whether pi_rec acts this tick."""
        return bool(self.apply(triggered)[0])

    def reset(self, environment: int | None = None) -> None:
        """A new episode (of one environment, or of all): the task policy acts until the shield fires."""
        if environment is None:
            self.left[:] = 0
        else:
            self.left[environment] = 0

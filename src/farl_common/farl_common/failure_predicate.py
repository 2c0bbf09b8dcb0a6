"""The task file's failure predicate C(s, a), evaluated on ground truth.

One implementation for the served simulation (`farl_control.sim.scene`) and
the training twin (`farl_learner.twin.env`), so a task's failure is what its
`failure.predicates` say, not what a per-task class decides. ROS-free and
MuJoCo-free: callers hand in the body pairs in contact and object positions.

- `contact`: any listed pair of bodies touches. `arm` in a pair stands for
  every body of the robot (the paper's Disturbed Push fails when the arm
  touches the obstacle, whichever link it is).
- `outside`: an object's centre (x, y) leaves a rectangle (Bounded Soccer's
  ball leaving the boundary).
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from farl_common.task_config import ARM, FailureConfig


class FailurePredicate:
    """Any of the task's predicates holds. `arm_prefix`: how the simulator names the robot's bodies."""

    def __init__(self, config: FailureConfig, arm_prefix: str):
        self.config = config
        self.arm_prefix = arm_prefix
        self.pairs = tuple(frozenset(pair) for pair in config.contact_pairs)
        self.regions = config.regions

    def group(self, body: str) -> str:
        """The name a body has in the predicates: `arm` for any robot body, else its own."""
        return ARM if body.startswith(self.arm_prefix) else body

    @property
    def groups(self) -> tuple[str, ...]:
        """Every body name a contact pair mentions (`arm` included), in a fixed order."""
        return tuple(dict.fromkeys(b for pair in self.config.contact_pairs for b in pair))

    def contact(self, contacts: Iterable[tuple[str, str]]) -> bool:
        """A listed pair is among these body pairs in contact."""
        for a, b in contacts:
            if frozenset((self.group(a), self.group(b))) in self.pairs:
                return True
        return False

    def outside(self, positions: Mapping[str, np.ndarray]) -> bool:
        """An `outside` predicate's object has left its region."""
        for name, region in self.regions:
            x, y = (float(v) for v in np.asarray(positions[name])[:2])
            if not region.contains(x, y):
                return True
        return False

    def holds(self, contacts: Iterable[tuple[str, str]], positions: Mapping[str, np.ndarray]) -> bool:
        return self.contact(contacts) or self.outside(positions)

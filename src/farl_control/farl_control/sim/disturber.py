"""The obstacle's mover of Disturbed Push in simulation (no MuJoCo, no ROS).

On the real arm a person moves the obstacle into the pushed object's way at
moments of their choosing, holds it there a moment, and takes it back. Here `Disturber` plays that person from a seeded
schedule (`scene.disturber` of the task file): how many moves, when each
starts, how far it goes. Where a move heads is decided when it starts, from
where things are then (toward a point of the object's path to its target, or
a random direction), so the served sim and the twin, stepping the same
physics, move the obstacle the same way for the same seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from farl_common.task_config import DisturberConfig

PositionLookup = Callable[[str], np.ndarray]


@dataclass
class _Move:
    start_s: float
    distance: float
    into_path: bool
    angle: float          # random-direction moves
    fraction: float       # into-path moves: where on the path they aim
    dwell_s: float        # held at the far end this long, then moved back the same way
    origin: np.ndarray | None = None
    direction: np.ndarray | None = None


class Disturber:
    """`reset(seed, start)` per episode, then `position(t, lookup)` at every physics step (t: s since reset)."""

    def __init__(self, config: DisturberConfig):
        self.config = config
        self.moves: list[_Move] = []
        self.xy = np.zeros(2)
        self._active: _Move | None = None

    def reset(self, seed: int | None, start_xy) -> None:
        c = self.config
        rng = np.random.default_rng(None if seed is None else [int(seed), 0xD157])
        n = int(rng.integers(c.moves[0], c.moves[1] + 1))
        starts = np.sort(rng.uniform(c.start_s[0], c.start_s[1], n))
        self.moves = [_Move(float(t), float(rng.uniform(*c.distance)), bool(rng.random() < c.into_path_prob),
                            float(rng.uniform(0.0, 2.0 * np.pi)), float(rng.uniform(*c.path_fraction)),
                            float(rng.uniform(*c.dwell_s)))
                      for t in starts]
        self.xy = np.asarray(start_xy, dtype=np.float64)[:2].copy()
        self._active = None

    def _begin(self, move: _Move, lookup: PositionLookup) -> None:
        c = self.config
        direction = np.array([np.cos(move.angle), np.sin(move.angle)])
        if move.into_path and c.path_from is not None and c.path_to is not None:
            a, b = np.asarray(lookup(c.path_from)[:2], float), np.asarray(lookup(c.path_to)[:2], float)
            length = float(np.linalg.norm(b - a))
            if length < c.min_ahead or length < 1e-6:
                move.distance = 0.0  # the object is nearly there: the person lets it be
            else:
                ahead = max(move.fraction * length, c.min_ahead)
                aim = a + ahead * (b - a) / length - self.xy
                if np.linalg.norm(aim) > 1e-6:
                    direction = aim / np.linalg.norm(aim)
                    move.distance = min(move.distance, float(np.linalg.norm(aim)))
        move.origin, move.direction = self.xy.copy(), direction

    def position(self, t: float, lookup: PositionLookup) -> np.ndarray:
        """The obstacle's centre (x, y) at time t; starts the moves whose time has come."""
        while self._active is None and self.moves and t >= self.moves[0].start_s:
            self._active = self.moves.pop(0)
            self._active.start_s = max(self._active.start_s, t)
            self._begin(self._active, lookup)
        move = self._active
        if move is not None:
            go = move.distance / self.config.speed
            elapsed = t - move.start_s
            if elapsed <= go:
                along = self.config.speed * elapsed
            elif elapsed <= go + move.dwell_s:
                along = move.distance
            else:
                along = max(0.0, move.distance - self.config.speed * (elapsed - go - move.dwell_s))
                if along <= 0.0:
                    self._active = None
            lo, hi = np.asarray(self.config.region.min), np.asarray(self.config.region.max)
            self.xy = np.clip(move.origin + along * move.direction, lo, hi)
        return self.xy.copy()

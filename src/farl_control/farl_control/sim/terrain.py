"""Uneven turf under the ball of Bounded Soccer, one draw per episode (no MuJoCo, no ROS).

A real kick on turf never rolls the same way twice. The task file's
`scene.terrain` gives the ranges; `draw_terrain` turns a reset's seed into one
episode's friction factor and slope force, which `SimScene` applies to the
ball's geom and body. The slope is a constant force on the ball (m g sin θ)
instead of tilted gravity: the arm's controller compensates gravity along -z
with its own model, and must keep doing so.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farl_common.task_config import TerrainConfig

GRAVITY = 9.81


@dataclass(frozen=True)
class TerrainDraw:
    friction_scale: float
    slope_deg: float
    direction: tuple[float, float]

    def force(self, mass: float) -> np.ndarray:
        """The slope's pull on the object (N, x y z), parallel to the table."""
        f = mass * GRAVITY * np.sin(np.radians(self.slope_deg))
        return np.array([f * self.direction[0], f * self.direction[1], 0.0])


def draw_terrain(config: TerrainConfig, seed: int | None) -> TerrainDraw:
    rng = np.random.default_rng(None if seed is None else [int(seed), 0x7E22])
    angle = float(rng.uniform(0.0, 2.0 * np.pi))
    return TerrainDraw(float(rng.uniform(*config.friction_scale)), float(rng.uniform(*config.slope_deg)),
                       (float(np.cos(angle)), float(np.sin(angle))))

"""Scripted experts of the Fragile Push Wall twin (obs → action callables).

All three read only the policy's observation (TCP xyz, block xy, target xy;
positions looked up by name in `TaskSpec.layout()`) plus fixed scene geometry
from the task config, so they are ordinary `PolicyFn`s: they can drive the
twin, be noised, be lured, and be cloned.

- `TaskExpert`: reactive pusher. Stands off behind the block on the line
  block → target, descends to push height, pushes along that line with a
  lateral correction, re-aligns (lifting over the block when it is on the
  wrong side) when the block turns away; pushes are bent away from the wall
  when the block gets within `wall_margin` of it.
- `medium_expert`: `TaskExpert` + Gaussian noise + occasional random actions.
- `RecoveryController`: from a near-failure state (block close to the wall,
  or closing in on it) pulls the TCP off the block, away from the wall and up
  to a safe point; stateful (it compares consecutive observations to see
  whether the block moves toward the wall) — call `reset()` per episode.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from farl_common.task_config import TaskConfig
from farl_common.task_spec import TCP, TaskSpec

import dataclasses

from .config import ExpertConfig, MediumConfig, RecoveryConfig
from .hazards import BoundaryHazard, Hazard, WallGeometry, hazard_for

__all__ = ["WallGeometry", "Hazard", "ObsIndex", "TaskExpert", "RecoveryController", "medium_expert", "noisy_policy",
           "lured", "random_policy"]

PolicyFn = Callable[[np.ndarray], np.ndarray]


class ObsIndex:
    """Where TCP, pushed object and target positions sit in the observation."""

    def __init__(self, spec: TaskSpec):
        layout = spec.layout()
        self.tcp = [layout.index(f"{TCP}.{a}") for a in "xyz"]
        self.obj = [layout.index(f"{spec.pushed_object}.{a}") for a in "xy"]
        self.target = [layout.index(f"{spec.target}.{a}") for a in "xy"]

    def split(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        obs = np.asarray(obs, dtype=np.float64)
        return obs[self.tcp], obs[self.obj], obs[self.target]


def _to_action(velocity: np.ndarray, spec: TaskSpec) -> np.ndarray:
    return spec.velocity_to_action(velocity).astype(np.float32)


def _toward(p: np.ndarray, goal: np.ndarray, gain: float, spec: TaskSpec) -> np.ndarray:
    return _to_action(gain * (goal - p), spec)


class TaskExpert:
    """Reactive scripted pusher (see module doc). Stateless: a function of the observation."""

    def __init__(self, config: TaskConfig, spec: TaskSpec, expert: ExpertConfig):
        self.config, self.spec, self.cfg = config, spec, expert
        self.idx = ObsIndex(spec)
        # The failure the pushes keep away from (Fragile Push Wall's wall, Disturbed Push's obstacle,
        # Bounded Soccer's boundary): see twin.hazards. `wall` for the history of the name.
        self.wall: Hazard = hazard_for(config, spec, expert.wall, expert.hand_half_extent)
        obj = config.scene.object(spec.pushed_object)
        self.half = np.asarray(obj.size[:2] if obj.shape == "box" else (obj.size[0], obj.size[0]), dtype=np.float64)
        self.finger = np.asarray(expert.finger_half_extent, dtype=np.float64)
        self.tolerance = spec.success_tolerance
        self.vmax = float(min(spec.action_scale))

    def aim_point(self, block: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Where the push heads: `lookahead` ahead of the block on the line through the target
        parallel to the wall, or the target itself once closer than that.

        Aiming at the far target alone corrects a sideways drift of the block by a
        degree or two; the pusher keeps chasing the block's centre, and the block
        ends up against the wall (measured: the deterministic expert failed 70 %
        at a 3.5 cm gap). Aiming at a near point on the line turns the push back
        toward the line as soon as the block leaves it (pure pursuit).
        """
        lookahead = self.cfg.lookahead
        # Along the wall; without one, along the main axis of the push.
        along = 1 - self.wall.axis if isinstance(self.wall, WallGeometry) else \
            int(np.argmax(np.abs(np.asarray(target) - np.asarray(block))))
        remaining = target[along] - block[along]
        if lookahead <= 0.0 or abs(remaining) <= lookahead:
            return target
        point = np.array(target, dtype=np.float64)
        point[along] = block[along] + np.sign(remaining) * lookahead
        return point

    def contact_distance(self, u: np.ndarray) -> float:
        """Centre-to-TCP distance along u at which the fingers touch the (unrotated) block."""
        return float(self.half @ np.abs(u) + self.finger @ np.abs(u))

    def push_direction(self, block: np.ndarray, target: np.ndarray, obs: np.ndarray) -> np.ndarray:
        d = self.aim_point(block, target) - block
        n = np.linalg.norm(d)
        u = d / n if n > 1e-6 else np.zeros(2)
        gap = self.wall.clearance(obs)
        away = self.wall.escape(obs)
        toward_wall = -float(u @ away)
        if gap < self.cfg.wall_margin and toward_wall > 0:  # never push it further into the wall zone
            u = u + toward_wall * away
            if gap < 0.5 * self.cfg.wall_margin:
                u = u + 0.5 * away  # and ease it back out
            n = np.linalg.norm(u)
            u = u / n if n > 1e-6 else away
        return u

    def _path_blocked(self, p: np.ndarray, goal: np.ndarray, b: np.ndarray) -> bool:
        """Does the straight xy path p → goal sweep the fingers through the block?"""
        box = self.half + self.finger + 0.005
        lo, hi = b - box, b + box
        d = goal - p
        t0, t1 = 0.0, 1.0
        for i in range(2):
            if abs(d[i]) < 1e-9:
                if p[i] < lo[i] or p[i] > hi[i]:
                    return False
                continue
            a, c = (lo[i] - p[i]) / d[i], (hi[i] - p[i]) / d[i]
            t0, t1 = max(t0, min(a, c)), min(t1, max(a, c))
            if t0 > t1:
                return False
        return True

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """The expert's action, never beyond ±`max_action`: a demonstrator that saturates the
        action box gets its noise clipped on one side only, and the clipped labels teach a
        cloned policy a biased mean (measured: +0.1 on z while descending at -1)."""
        m = self.cfg.max_action
        return np.clip(self._act(obs), -m, m).astype(np.float32)

    def _act(self, obs: np.ndarray) -> np.ndarray:
        c = self.cfg
        p, b, g = self.idx.split(obs)
        dist = float(np.linalg.norm(g - b))
        u = self.push_direction(b, g, obs)
        if c.yield_margin > 0.0 and self.wall.blocks(obs, c.yield_margin):
            # Something stands in the way (a person's obstacle): off the object, back along the push,
            # and wait there at push height until the way is clear.
            d = g - b
            u_path = d / max(float(np.linalg.norm(d)), 1e-6)
            wait = b - (self.contact_distance(u_path) + c.standoff_clearance + c.yield_retreat) * u_path
            # ... the hand's side that faces the obstacle kept out of its way.
            away = self.wall.escape(obs)
            wait = wait + c.yield_retreat * (away - (away @ u_path) * u_path)
            p_now = self.idx.split(obs)[0]
            return _toward(p_now, np.array([wait[0], wait[1], max(p_now[2], c.push_height)]), c.gain, self.spec)
        if dist < 0.5 * self.tolerance or not np.any(u):
            # Done: back off upward (no nudging the block off the target).
            return _toward(p, np.array([p[0], p[1], c.travel_height]), c.gain, self.spec)
        n = np.array([-u[1], u[0]])
        rel = p[:2] - b
        lon, lat = float(rel @ u), float(rel @ n)
        touch = self.contact_distance(u)
        side = self.contact_distance(n)
        standoff = b - (touch + c.standoff_clearance) * u
        low = p[2] < c.push_height + 0.015
        # Pushing: low, behind the block on the push line, at or near contact.
        if low and abs(lat) < c.align_tolerance and -touch - c.standoff_clearance - 0.02 < lon < -touch + 0.02:
            speed = float(np.clip(c.push_gain * dist, c.min_push_action * self.vmax, self.vmax))
            v_xy = speed * u - c.push_lateral_gain * lat * n
            return _to_action(np.array([v_xy[0], v_xy[1], c.gain * (c.push_height - p[2])]), self.spec)
        over_block = p[2] < 0.5 * (c.push_height + c.travel_height) + 0.01 and \
            lon > -touch + 0.005 and abs(lat) < side
        if over_block and low:
            # Fingers on the wrong side of / on the block: straight up, drifting back.
            back = -0.5 * self.vmax * u
            return _to_action(np.array([back[0], back[1], c.gain * (c.travel_height - p[2])]), self.spec)
        horizontal = float(np.linalg.norm(p[:2] - standoff))
        if horizontal < 0.01:
            return _toward(p, np.array([standoff[0], standoff[1], c.push_height]), c.gain, self.spec)
        if p[2] < c.travel_height - 0.01 and self._path_blocked(p[:2], standoff, b):
            # Low with the block in the way: up (and a little back from the block) before travelling.
            away = rel / max(np.linalg.norm(rel), 1e-6) * 0.3 * self.vmax
            return _to_action(np.array([away[0], away[1], c.gain * (c.travel_height + 0.01 - p[2])]), self.spec)
        # Travel: descend toward push height unless the block is still in the way.
        z_goal = c.travel_height if self._path_blocked(p[:2], standoff, b) else c.push_height
        return _toward(p, np.array([standoff[0], standoff[1], max(z_goal, c.push_height)]), c.gain, self.spec)


def noisy_policy(policy: PolicyFn, rng: np.random.Generator, noise_std: float, random_action_prob: float,
                 action_dim: int = 3, correlation: float = 0.0) -> PolicyFn:
    """`policy` + Gaussian action noise (std `noise_std`); a uniform random action with
    probability `random_action_prob`; clipped to [-1, 1].

    Same semantics as `farl_learner.envs.experts.noisy` (which is fixed to
    Meta-World's 4-d actions): `correlation` in [0, 1) makes the noise an AR(1)
    process with that coefficient and stationary std `noise_std` — sustained
    drifts like an imperfect learned policy's, which white noise (cancelled by
    a closed-loop expert) does not produce. One call = one episode's noise state.
    """
    state = np.zeros(action_dim)
    innovation = noise_std * np.sqrt(1.0 - correlation**2)

    def act(obs: np.ndarray) -> np.ndarray:
        nonlocal state
        if noise_std > 0.0:
            state = correlation * state + rng.normal(0.0, innovation, size=action_dim)
        if random_action_prob > 0.0 and rng.random() < random_action_prob:
            return rng.uniform(-1.0, 1.0, size=action_dim).astype(np.float32)
        a = np.asarray(policy(obs), dtype=np.float64) + state
        return np.clip(a, -1.0, 1.0).astype(np.float32)

    return act


def medium_expert(expert: TaskExpert, rng: np.random.Generator, medium: MediumConfig,
                  config: TaskConfig | None = None) -> PolicyFn:
    """The paper's "medium-quality" demonstrator (there: a partly trained agent): the expert's
    push control made cruder (`medium.lookahead`, `medium.push_lateral_gain`) plus action noise.

    Its episodes still succeed almost always (noise averages its drift out), but a policy
    cloned from them inherits the crude pushing: a medium policy, not a copy of the expert.
    `config` is the task config (the expert's own is used when omitted).
    """
    yield_margin = expert.cfg.yield_margin if medium.yield_margin is None else medium.yield_margin
    crude = TaskExpert(config or expert.config, expert.spec, dataclasses.replace(
        expert.cfg, lookahead=medium.lookahead, push_lateral_gain=medium.push_lateral_gain,
        yield_margin=yield_margin))
    return noisy_policy(crude, rng, medium.noise_std, medium.random_action_prob, expert.spec.action_dim)


def lured(policy: PolicyFn, spec: TaskSpec, target_xy: np.ndarray) -> PolicyFn:
    """`policy` told the target is at `target_xy` (used to steer it into a failure)."""
    idx = ObsIndex(spec)
    target_xy = np.asarray(target_xy, dtype=np.float32)

    def act(obs: np.ndarray) -> np.ndarray:
        o = np.array(obs, dtype=np.float32, copy=True)
        o[idx.target] = target_xy
        return policy(o)

    return act


def random_policy(rng: np.random.Generator, action_dim: int = 3) -> PolicyFn:
    def act(obs: np.ndarray) -> np.ndarray:
        return rng.uniform(-1.0, 1.0, size=action_dim).astype(np.float32)

    return act


class _AwayPusher(TaskExpert):
    """The expert's pushing, heading diagonally away from the wall instead of along it."""

    def __init__(self, config: TaskConfig, spec: TaskSpec, expert: ExpertConfig, away_ratio: float):
        super().__init__(config, spec, dataclasses.replace(expert, lookahead=0.0, wall_margin=0.0))
        self.away_ratio = away_ratio

    def push_direction(self, block: np.ndarray, target: np.ndarray, obs: np.ndarray) -> np.ndarray:
        along = np.zeros(2)
        axis = 1 - self.wall.axis
        along[axis] = np.sign(target[axis] - block[axis]) or 1.0
        u = along + self.away_ratio * self.wall.away()
        return u / np.linalg.norm(u)


class RecoveryController:
    """Scripted recovery from a near-failure state, in one of two styles (`recovery.style`).

    "push_away" (default): keep pushing, but diagonally away from the wall
    (`away_ratio` of away per unit along it) with the TCP re-placed behind the
    block for that direction, until the block is `safe_gap` from the wall face.
    The block is steered back toward the middle of the lane and still advances
    toward the target, so the task policy can take over and carry on - a
    recovery that only retreats leaves the block where it was, and the task
    policy, pushing again, is stopped by the shield again and again (measured in
    the twin: the shield-on success rate fell from 63 % to 20-35 %).

    "retreat": get off the block, away from the wall, up to a safe point.

    "save" (a rolling object and a boundary, Bounded Soccer): get the hand between
    the object - where it will be `save_lead_s` from now - and the nearest boundary
    line, going over the object at `safe_height` when the straight way would touch
    it, then push it back inward at `save_push_speed` of the top speed. Backing off
    leaves a ball that still rolls, or creeps down the turf's slope, to roll out;
    the stack showed pi_rec in control for 6-40 ticks before most such failures.

    Near-failure (`near_failure`): the block's gap to the wall face is below
    `near_gap`, or below `near_gap_moving` while it closes in faster than
    `moving_speed`. The controller first lifts/pulls the TCP straight away from
    the wall (so it stops pushing at once), then goes to the safe point
    `retreat_distance` from the block on the side away from the wall at
    `safe_height`. `is_safe` tells when the safe point is reached.
    """

    def __init__(self, config: TaskConfig, spec: TaskSpec, expert: ExpertConfig, recovery: RecoveryConfig):
        self.spec, self.cfg, self.gain = spec, recovery, expert.gain
        self.idx = ObsIndex(spec)
        self.wall: Hazard = hazard_for(config, spec, expert.wall, expert.hand_half_extent)
        self.half = config.scene.object(spec.pushed_object).size[0]
        self.dt = 1.0 / config.control.rate_hz
        self._prev_gap: float | None = None
        self._pusher = _AwayPusher(config, spec, expert, recovery.away_ratio) if recovery.style == "push_away" else None
        self._saver = _BoundarySaver(spec, self.wall, self.half, expert, recovery) if recovery.style == "save" else None

    def reset(self) -> None:
        self._prev_gap = None

    def closing_speed(self, obs: np.ndarray, prev_obs: np.ndarray | None) -> float:
        """How fast (m/s) the block approaches the wall between two observations."""
        if prev_obs is None:
            return 0.0
        g0, g1 = self.wall.clearance(prev_obs), self.wall.clearance(obs)
        if not (np.isfinite(g0) and np.isfinite(g1)):
            return 0.0
        return (g0 - g1) / self.dt

    def near_failure(self, obs: np.ndarray, prev_obs: np.ndarray | None = None) -> bool:
        gap = self.wall.clearance(obs)
        if gap < self.cfg.near_gap:
            return True
        return gap < self.cfg.near_gap_moving and self.closing_speed(obs, prev_obs) > self.cfg.moving_speed

    def safe_point(self, obs: np.ndarray) -> np.ndarray:
        _, b, _ = self.idx.split(obs)
        xy = b + self.cfg.retreat_distance * self.wall.escape(obs)
        return np.array([xy[0], xy[1], self.cfg.safe_height])

    def along(self, obs: np.ndarray) -> np.ndarray:
        """Unit xy vector along the wall, from the block toward the target (the push direction)."""
        _, b, g = self.idx.split(obs)
        u = np.zeros(2)
        axis = 1 - self.wall.axis if isinstance(self.wall, WallGeometry) else int(np.argmax(np.abs(g - b)))
        u[axis] = np.sign(g[axis] - b[axis]) or 1.0
        return u

    def back_off_point(self, obs: np.ndarray) -> np.ndarray:
        """back_off: `retreat_distance` behind the block's rear face (against the push), a little away
        from the wall, at the TCP's height: off the block, still at pushing height."""
        p, b, _ = self.idx.split(obs)
        u = self.along(obs)
        xy = b - (self.half + self.cfg.retreat_distance) * u + 0.5 * self.cfg.retreat_distance * self.wall.escape(obs)
        return np.array([xy[0], xy[1], p[2]])

    def is_safe(self, obs: np.ndarray) -> bool:
        if self._saver is not None:
            return self._saver.is_safe(obs)
        if self._pusher is not None:
            return self.wall.clearance(obs) >= self.cfg.safe_gap
        if self.cfg.style == "back_off":
            p = self.idx.split(obs)[0]
            return bool(np.linalg.norm(p[:2] - self.back_off_point(obs)[:2]) < self.cfg.safe_tolerance)
        p = self.idx.split(obs)[0]
        return bool(np.linalg.norm(p - self.safe_point(obs)) < self.cfg.safe_tolerance)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if self._saver is not None:
            return self._saver(obs)
        if self._pusher is not None:
            return self._pusher(obs)
        if self.cfg.style == "back_off":
            p = self.idx.split(obs)[0]
            return _toward(p, self.back_off_point(obs), self.gain, self.spec)
        p, b, _ = self.idx.split(obs)
        away = self.wall.escape(obs)
        rel = p[:2] - b
        safe = self.safe_point(obs)
        # Low and close to the block: away from the wall and up at once. From the
        # pushing side this stops the push; from the wall side it pushes the block
        # away from the wall; beside it, it clears the block before travelling.
        if np.linalg.norm(rel) < self.half + 0.05 and p[2] < self.cfg.safe_height - 0.02:
            v_xy = away * self.spec.action_scale[0]
            return _to_action(np.array([v_xy[0], v_xy[1], self.gain * (self.cfg.safe_height - p[2])]), self.spec)
        return _toward(p, safe, self.gain, self.spec)


class _BoundarySaver:
    """The "save" recovery style: between the rolling object and its nearest boundary line, then push inward."""

    def __init__(self, spec: TaskSpec, boundary: Hazard, radius: float, expert: ExpertConfig,
                 recovery: RecoveryConfig):
        if not isinstance(boundary, BoundaryHazard):
            raise ValueError(f"recovery.style 'save' is for an object inside a boundary (an 'outside' failure "
                             f"predicate); this task's failure is {type(boundary).__name__}")
        layout = spec.layout()
        try:
            self.velocity = [layout.index(f"{spec.pushed_object}.v{a}") for a in "xy"]
        except ValueError:
            raise ValueError(f"recovery.style 'save' needs {spec.pushed_object}'s velocity in the observation "
                             "(observation.fields with quantity: velocity)") from None
        self.spec, self.boundary, self.radius = spec, boundary, radius
        self.idx = ObsIndex(spec)
        self.gain, self.push_height = expert.gain, expert.push_height
        self.cfg = recovery

    def _parts(self, obs: np.ndarray):
        p, b, _ = self.idx.split(obs)
        v = np.asarray(obs, dtype=np.float64)[self.velocity]
        ahead = b + self.cfg.save_lead_s * v
        inward = self.boundary.escape(self._with_object_at(obs, ahead))
        return p, b, v, ahead, inward

    def _with_object_at(self, obs: np.ndarray, xy: np.ndarray) -> np.ndarray:
        moved = np.array(obs, dtype=np.float64, copy=True)
        moved[self.idx.obj] = xy
        return moved

    def is_safe(self, obs: np.ndarray) -> bool:
        """Far enough inside, and not heading out faster than `moving_speed`."""
        _, _, v, _, inward = self._parts(obs)
        return self.boundary.clearance(obs) >= self.cfg.safe_gap and float(-(v @ inward)) <= self.cfg.moving_speed

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        p, b, _, ahead, inward = self._parts(obs)
        behind = ahead - (self.radius + self.cfg.retreat_distance) * inward  # hand's spot, boundary side
        offset = behind - p[:2]
        if np.linalg.norm(offset) > self.cfg.safe_tolerance:
            # On the way there: over the object if the straight way passes it closer than a hand's width.
            t = np.clip(((b - p[:2]) @ offset) / max(offset @ offset, 1e-9), 0.0, 1.0)
            passes = np.linalg.norm(p[:2] + t * offset - b) < self.radius + self.cfg.retreat_distance
            height = self.cfg.safe_height if passes else self.push_height
            if passes and p[2] < self.cfg.safe_height - 0.02:  # up first, then across
                return _to_action(np.array([0.0, 0.0, self.gain * (height - p[2])]), self.spec)
            return _toward(p, np.array([behind[0], behind[1], height]), self.gain, self.spec)
        push = self.cfg.save_push_speed * np.asarray(self.spec.action_scale[:2]) * inward
        return _to_action(np.array([push[0], push[1], self.gain * (self.push_height - p[2])]), self.spec)


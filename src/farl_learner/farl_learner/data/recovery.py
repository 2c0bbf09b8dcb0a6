"""Recovery demos: scripted recoveries from sampled near-failure states.

The paper's 120 sim recovery demos per task steer near-failure states back to
safety with a scripted controller; it does not say how the near-failure states
are found. Here (see `NearFailureConfig`): a *lured* noisy expert, sent toward
a failure on purpose, runs until the constraint is violated at step t; the env
is rewound to step t - k (k uniform in `rewind_steps`) and the task's recovery
controller takes over for `horizon` steps. A demo is kept only if it never
fails and ends at least `min_final_margin` from the constraint, so every kept
demo shows a real save from a state that was k steps from failing.

With a start policy (the pretrained task policy) and `own_policy_fraction`
> 0, that share of the demos starts where the *explored task policy* fails
instead of the lure: those are the states the shield hands to pi_rec online.
"""
from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np

from ..envs.experts import PolicyFn, expert_policy, noisy, with_goal
from ..envs.failurebench import FailureBenchEnv, make_env
from ..envs.predicates import bodies_xy_box
from ..envs.rollout import Episode, run_episode
from ..envs.spec import Rect, TaskSpec, load_task_spec
from .config import DataGenConfig, NearFailureConfig, RecoveryConfig, load_data_config
from .format import KIND_RECOVERY, Dataset
from .episodes import collect_episodes, episodes_to_dataset

HAND = slice(0, 3)
OBJ = slice(4, 7)
GOAL = slice(36, 39)
#: Fingers closed while recovering: a held object stays held, a free one is
#: pushed by a closed (stiffer, narrower) gripper.
_GRIP_CLOSED = 1.0
#: The hand counts as holding / in contact with the object within this xy
#: distance and this height above it (m) (the experts' own grasp tolerances).
_HOLD_XY = 0.03
_HOLD_Z = 0.06
#: return_inside: the hand travels above the object at this height (m) to get
#: behind it, pushes with its centre this far above the object's centre, and
#: aims this far past the object toward the rectangle's centre.
_TRAVEL_HEIGHT = 0.10
_PUSH_HEIGHT = 0.02
_LOOKAHEAD = 0.10
_ALIGNED_XY = 0.02
#: Closer than this (xy, m) the hand lifts straight up before travelling over the object.
_CLOSE_XY = 0.08


def _unit(v: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else fallback


def _move(hand: np.ndarray, target: np.ndarray, gain: float) -> np.ndarray:
    action = np.zeros(4)
    action[:3] = gain * (target - hand)
    action[3] = _GRIP_CLOSED
    return np.clip(action, -1.0, 1.0).astype(np.float32)


def _push_toward(obs: np.ndarray, target_xy: np.ndarray, clearance: float, gain: float) -> np.ndarray:
    """One step of pushing the object toward `target_xy` from behind, without grasping.

    Travel above the object to the point `clearance` behind it (the side away
    from the target), drop to pushing height, then push through it.
    """
    hand, obj = obs[HAND], obs[OBJ]
    direction = _unit(target_xy - obj[:2], np.array([0.0, 1.0]))
    behind = obj[:2] - clearance * direction
    if np.linalg.norm(hand[:2] - behind) > _ALIGNED_XY:
        travel_z = obj[2] + _TRAVEL_HEIGHT
        if hand[2] < travel_z - _ALIGNED_XY and np.linalg.norm(hand[:2] - obj[:2]) < _CLOSE_XY:
            return _move(hand, np.r_[hand[:2], travel_z], gain)  # lift clear before crossing over it
        return _move(hand, np.r_[behind, travel_z], gain)
    if hand[2] > obj[2] + _PUSH_HEIGHT + _ALIGNED_XY:
        return _move(hand, np.r_[behind, obj[2] + _PUSH_HEIGHT], gain)
    return _move(hand, np.r_[obj[:2] + _LOOKAHEAD * direction, obj[2] + _PUSH_HEIGHT], gain)


def return_inside_controller(rect: Rect, cfg: RecoveryConfig) -> PolicyFn:
    """Bring the object back toward the rectangle's centre.

    Holding it: drag it straight toward the centre. Not holding it: get behind
    it (on the side away from the centre) and push it toward the centre.
    """
    center = np.asarray(rect.center)

    def act(obs: np.ndarray) -> np.ndarray:
        hand, obj = obs[HAND], obs[OBJ]
        held = np.linalg.norm(hand[:2] - obj[:2]) < _HOLD_XY and hand[2] - obj[2] < _HOLD_Z
        if held:
            inward = _unit(center - obj[:2], np.array([0.0, 1.0]))
            return _move(hand, np.r_[obj[:2] + _LOOKAHEAD * inward, hand[2]], cfg.gain)
        return _push_toward(obs, center, cfg.clearance, cfg.gain)

    return act


def shove_policy(cfg: RecoveryConfig) -> PolicyFn:
    """Push the object from behind, without grasping, straight at the goal."""

    def act(obs: np.ndarray) -> np.ndarray:
        return _push_toward(obs, obs[GOAL][:2], cfg.clearance, cfg.gain)

    return act


def retreat_controller(env: FailureBenchEnv, cfg: RecoveryConfig) -> PolicyFn:
    """Move the hand (and whatever it holds) straight away from the obstacle.

    The target is `clearance` from the obstacle's bounding box, along the line
    from its nearest point to the hand, at the hand's current height.
    """
    bodies = env.spec_.failure.obstacle_bodies
    x_min, x_max, y_min, y_max = bodies_xy_box(env.model, env.data, bodies)  # obstacles are static

    def act(obs: np.ndarray) -> np.ndarray:
        hand = obs[HAND]
        nearest = np.array([np.clip(hand[0], x_min, x_max), np.clip(hand[1], y_min, y_max)])
        away = _unit(hand[:2] - nearest, np.array([0.0, -1.0]))
        return _move(hand, np.r_[nearest + cfg.clearance * away, hand[2]], cfg.gain)

    return act


def recovery_controller(env: FailureBenchEnv, cfg: RecoveryConfig) -> PolicyFn:
    """The scripted recovery controller configured for `env`'s task."""
    if cfg.controller == "return_inside":
        boundary = env.spec_.failure.boundary
        if boundary is None:
            raise ValueError(f"{env.task}: recovery controller return_inside needs a boundary task")
        return return_inside_controller(boundary, cfg)
    return retreat_controller(env, cfg)


def _lure_goal_outside(rect: Rect, margin: float, z: float, rng: np.random.Generator) -> np.ndarray:
    """A point `margin` beyond a random edge of `rect` (uniform along that edge)."""
    edge = rng.integers(4)
    t = rng.uniform()
    x = rect.x_min + t * (rect.x_max - rect.x_min)
    y = rect.y_min + t * (rect.y_max - rect.y_min)
    point = {0: (rect.x_min - margin, y), 1: (rect.x_max + margin, y),
             2: (x, rect.y_min - margin), 3: (x, rect.y_max + margin)}[int(edge)]
    return np.array([point[0], point[1], z])


def lure_policy(env: FailureBenchEnv, obs: np.ndarray, cfg: NearFailureConfig, rc: RecoveryConfig,
                rng: np.random.Generator) -> PolicyFn:
    """A noisy expert headed for a failure this episode (see `NearFailureConfig`)."""
    spec = env.spec_
    goal_z = float(obs[GOAL][2])
    if cfg.lure == "outside_boundary":
        assert spec.failure.boundary is not None
        base = with_goal(expert_policy(spec.expert), _lure_goal_outside(spec.failure.boundary, cfg.lure_margin,
                                                                          goal_z, rng))
    elif cfg.lure == "shove":
        # Pushed from behind without grasping, the block runs ahead of the hand
        # into the wall (a grasped block never touches it: the hand's own
        # geoms hit the wall first).
        base = shove_policy(rc)
    else:
        x_min, x_max, y_min, y_max = bodies_xy_box(env.model, env.data, spec.failure.obstacle_bodies)
        base = with_goal(expert_policy(spec.expert), np.array([0.5 * (x_min + x_max), 0.5 * (y_min + y_max), goal_z]))
    return noisy(base, rng, cfg.action_noise_std)


def _rewind_before_failure(env: FailureBenchEnv, obs: np.ndarray, policy: PolicyFn, nf: NearFailureConfig,
                           rng: np.random.Generator) -> np.ndarray | None:
    """Run `policy` from `obs` until a failure, rewind k steps (k uniform in `rewind_steps`): the env is left in
    that near-failure state and its observation returned; None if the episode ended without a failure."""
    snapshots = []
    failed = False
    for _ in range(env.max_episode_steps):
        snapshots.append(env.snapshot())
        obs, _, terminated, truncated, info = env.step(policy(obs))
        if info["failure"]:
            failed = True
            break
        if terminated or truncated:
            break
    k = int(rng.integers(nf.rewind_steps[0], nf.rewind_steps[1] + 1))
    # snapshots[-1] is the state one step before the failure, snapshots[-k] k steps before.
    if not failed or k > len(snapshots):
        return None
    obs = env.restore(snapshots[-k])
    return None if env.is_failure() else obs


def sample_near_failure_state(env: FailureBenchEnv, data_cfg: DataGenConfig,
                              rng: np.random.Generator) -> np.ndarray | None:
    """Reset, lure to a failure, rewind k steps: the env is left in the near-failure
    state and its observation is returned; None if this episode found no failure."""
    nf = data_cfg.near_failure
    obs, _ = env.reset()
    policy = lure_policy(env, obs, nf, data_cfg.recovery, rng)
    return _rewind_before_failure(env, obs, policy, nf, rng)


def sample_own_near_failure_state(env: FailureBenchEnv, data_cfg: DataGenConfig, policy_fn: PolicyFn,
                                  rng: np.random.Generator) -> np.ndarray | None:
    """Like `sample_near_failure_state`, with the explored task policy (failure-data noise) instead of the lure.

    Episodes start as the failure data's do: a share `failure_data.near_failure_start_prob` from a lured
    near-failure state, where the task policy takes over (from the task's start alone the explored policy
    fails in only a few % of episodes, and finding 90 failures took longer than all the rest of pretraining).
    """
    fd, nf = data_cfg.failure_data, data_cfg.near_failure
    obs = sample_near_failure_state(env, data_cfg, rng) if rng.random() < fd.near_failure_start_prob else None
    if obs is None:
        obs, _ = env.reset()
    policy = noisy(policy_fn, rng, fd.noise_scale, fd.random_action_prob, fd.noise_correlation)
    return _rewind_before_failure(env, obs, policy, nf, rng)


def try_recovery(env: FailureBenchEnv, data_cfg: DataGenConfig, rng: np.random.Generator,
                 start_policy: PolicyFn | None = None) -> Episode | None:
    """One attempt: lure (or, given `start_policy`, the explored task policy) to a failure, rewind, recover.
    The recorded demo, or None if rejected."""
    rc = data_cfg.recovery
    if start_policy is not None:
        obs = sample_own_near_failure_state(env, data_cfg, start_policy, rng)
    else:
        obs = sample_near_failure_state(env, data_cfg, rng)
    if obs is None:
        return None
    episode = run_episode(env, recovery_controller(env, rc), obs=obs, record=True, max_steps=rc.horizon)
    if episode.failed or env.constraint_margin() < rc.min_final_margin:
        return None
    return episode


def generate_recovery_demos(task: str, n_demos: int | None = None, seed: int = 0,
                            config: DataGenConfig | None = None, progress: bool = True,
                            start_policy: PolicyFn | None = None) -> Dataset:
    """`n_demos` (default: the task's `recovery_demos`, 120) recovery demos, kind = recovery.

    Each demo is an episode fragment: its last transition has timeout=True
    (cut, not terminal). Raises RuntimeError if `max_attempts` attempts do not
    yield enough demos (the controller or the config is wrong for the task).
    With `start_policy` (obs -> action, the pretrained task policy's mean),
    round(`near_failure.own_policy_fraction` * n) demos start where it fails when explored.
    """
    spec: TaskSpec = load_task_spec(task)
    cfg = config or load_data_config(spec)
    n = cfg.recovery_demos if n_demos is None else n_demos
    rng = np.random.default_rng(seed)
    env = make_env(task, seed=seed, terminate_on_failure=True)
    env.reset(seed=seed)
    started = time.perf_counter()
    n_own = int(round(cfg.near_failure.own_policy_fraction * n)) if start_policy is not None else 0
    kept, attempts = [], 0
    for count, policy, label in ((n_own, start_policy, "from the task policy's failures"), (n - n_own, None, "lured")):
        if count == 0:
            continue
        demos, tries = collect_episodes(
            count, lambda p=policy: try_recovery(env, cfg, rng, p), cfg.near_failure.max_attempts,
            f"{task} recovery demos ({label})", progress=progress,
            give_up=lambda k, a, c=count, lab=label: (
                f"{task}: only {k} of {c} recovery demos ({lab}) after {a} attempts (near_failure.max_attempts); "
                f"check the recovery settings in {spec.config_path}"))
        kept += demos
        attempts += tries
    env.close()
    meta = {
        "generator": "recovery_demos", "seed": seed, "n_demos": n, "attempts": attempts,
        "acceptance_rate": n / attempts, "seconds": round(time.perf_counter() - started, 2),
        "near_failure": asdict(cfg.near_failure), "recovery": asdict(cfg.recovery),
        "from_task_policy_failures": n_own,
    }
    return episodes_to_dataset(task, kept, KIND_RECOVERY, meta)

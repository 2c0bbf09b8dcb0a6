"""FailureBench environments: Meta-World 3.x tasks with a binary failure constraint.

`make_env(task)` returns a Gymnasium env (39-d float64 obs, 4-d float32 action
in [-1, 1]) whose every `step` reports `info["cost"]` in {0.0, 1.0},
`info["failure"]` (bool) and `info["success"]` (bool). With
`terminate_on_failure=True` (the default; the paper's episodes appear to end on
failure) a failure ends the episode with `terminated=True`.

Reset randomness: `reset(seed=s)` reseeds the task sampler (object and goal
positions), `reset()` continues the stream, so `make_env(task, seed=s)` followed
by plain resets gives a reproducible sequence of episodes.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import gymnasium as gym
import metaworld
import mujoco
import numpy as np

from .predicates import FailurePredicate, make_predicate
from .scene import build_model
from .spec import Rect, SceneSpec, TaskSpec, load_task_spec

#: Meta-World refuses to step past `max_path_length`; FailureBench truncates
#: episodes itself, so the base env's limit is lifted out of the way (rewinding
#: a snapshot for recovery demos may replay steps beyond the episode length).
_UNLIMITED_PATH_LENGTH = 10**9


@lru_cache(maxsize=None)
def _env_class(name: str, base_env: str, scene: SceneSpec, boundary: Rect | None) -> type:
    """A Meta-World `base_env` class compiling this task's scene, goal observable.

    Subclasses the raw env class (Meta-World's goal-observable classes cannot be
    subclassed: their generated `__init__` calls `super(type(self), self)`), and
    does what their `__init__` does: goal in the observation, task marked set.
    """
    base = metaworld.ALL_V3_ENVIRONMENTS[base_env]

    def __init__(self, render_mode: str | None = None):
        base.__init__(self, render_mode=render_mode)
        self._partially_observable = False
        self._freeze_rand_vec = False
        self.seeded_rand_vec = True
        self.__dict__.pop("sawyer_observation_space", None)  # cached for the partially observable layout
        self._set_task_called = True

    def _initialize_simulation(self):  # replaces gymnasium MujocoEnv._initialize_simulation
        model = build_model(self.fullpath, scene, boundary)
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    return type(f"FailureBench_{name}", (base,),
                {"__init__": __init__, "_initialize_simulation": _initialize_simulation})


@dataclass
class SimSnapshot:
    """Everything needed to rewind an env to an earlier step (recovery-demo generation)."""

    physics: np.ndarray
    obs: np.ndarray
    prev_frame: np.ndarray
    steps: int


class FailureBenchEnv(gym.Env):
    """One FailureBench task. Build it with `make_env`.

    Attributes: `spec_` the `TaskSpec` (`spec` is Gymnasium's EnvSpec slot),
    `task` its name, `mw` the underlying Meta-World env, `model`/`data` its
    MuJoCo model and data, `predicate` the failure predicate.
    """

    metadata = {"render_modes": []}

    def __init__(self, spec: TaskSpec, seed: int | None = None, terminate_on_failure: bool = True,
                 terminate_on_success: bool = False, max_episode_steps: int | None = None):
        self.spec_ = spec
        self.task = spec.name
        self.terminate_on_failure = terminate_on_failure
        self.terminate_on_success = terminate_on_success
        self.max_episode_steps = int(max_episode_steps or spec.max_episode_steps)
        # FailureBench samples a new object/goal at every reset from the env's
        # own seeded stream (never Meta-World's global np.random).
        self.mw = _env_class(spec.name, spec.base_env, spec.scene, spec.failure.boundary)()
        self.mw.max_path_length = _UNLIMITED_PATH_LENGTH
        self.mw.seed(seed if seed is not None else int(np.random.SeedSequence().entropy % 2**31))
        self.model: mujoco.MjModel = self.mw.model
        self.data: mujoco.MjData = self.mw.data
        self.predicate: FailurePredicate = make_predicate(self.model, spec.failure)
        # Meta-World clips every step's observation to these bounds (hand and
        # object workspace, goal space).
        bounds = self.mw.sawyer_observation_space
        self.observation_space = gym.spaces.Box(bounds.low, bounds.high, dtype=np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        self._state_kind = mujoco.mjtState.mjSTATE_INTEGRATION
        self._steps = 0
        self._obs = np.zeros(39)

    # -- Gymnasium API -----------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.mw.seed(seed)
            self.action_space.seed(seed)
        obs, _ = self.mw.reset()
        self._steps = 0
        self._obs = np.asarray(obs, dtype=np.float64)
        failure = self.predicate.is_failure(self.model, self.data, self._obs)
        return self._obs.copy(), {"failure": failure, "cost": float(failure), "success": False}

    def step(self, action):
        action = np.asarray(action, dtype=np.float32).reshape(4)
        if not np.all(np.isfinite(action)):
            raise ValueError(f"{self.task}: non-finite action {action.tolist()}")
        action = np.clip(action, -1.0, 1.0)
        obs, reward, _, _, mw_info = self.mw.step(action)
        self._steps += 1
        self._obs = np.asarray(obs, dtype=np.float64)
        failure = self.predicate.is_failure(self.model, self.data, self._obs)
        success = bool(mw_info["success"])
        terminated = (failure and self.terminate_on_failure) or (success and self.terminate_on_success)
        truncated = (not terminated) and self._steps >= self.max_episode_steps
        info = dict(mw_info)
        info.update(failure=failure, cost=float(failure), success=success, steps=self._steps)
        return self._obs.copy(), float(reward), bool(terminated), bool(truncated), info

    # -- FailureBench extras -----------------------------------------------
    @property
    def steps(self) -> int:
        """Steps taken in the current episode."""
        return self._steps

    def is_failure(self) -> bool:
        """C(s) for the current state (the same predicate `step` reports)."""
        return self.predicate.is_failure(self.model, self.data, self._obs)

    def constraint_margin(self) -> float:
        """Signed distance (m) to the constraint for the current state: > 0 safe."""
        return self.predicate.margin(self.model, self.data, self._obs)

    def snapshot(self) -> SimSnapshot:
        state = np.empty(mujoco.mj_stateSize(self.model, self._state_kind))
        mujoco.mj_getState(self.model, self.data, state, self._state_kind)
        return SimSnapshot(state, self._obs.copy(), np.array(self.mw._prev_obs, copy=True), self._steps)

    def restore(self, snap: SimSnapshot) -> np.ndarray:
        """Rewind to `snap` (same episode: the goal is not part of the snapshot); returns its obs."""
        mujoco.mj_setState(self.model, self.data, snap.physics, self._state_kind)
        mujoco.mj_forward(self.model, self.data)
        self.mw._prev_obs = snap.prev_frame.copy()
        self.mw.curr_path_length = snap.steps
        self._steps = snap.steps
        self._obs = snap.obs.copy()
        return self._obs.copy()

    def set_object_xyz(self, xyz: np.ndarray) -> np.ndarray:
        """Teleport the task object (at rest) and return the resulting observation."""
        self.mw._set_obj_xyz(np.asarray(xyz, dtype=np.float64))
        mujoco.mj_forward(self.model, self.data)
        self._obs = np.asarray(self.mw._get_obs(), dtype=np.float64)
        return self._obs.copy()

    def render(self):
        return self.mw.render()

    def close(self):
        self.mw.close()


def make_env(task_name: str, seed: int | None = None, terminate_on_failure: bool = True,
             max_episode_steps: int | None = None, terminate_on_success: bool = False) -> FailureBenchEnv:
    """Build a FailureBench env.

    Args:
        task_name: one of `spec.TASK_NAMES` (config/failurebench/<task>.yaml).
        seed: seeds the object/goal sampler (None: Meta-World's global RNG).
        terminate_on_failure: end the episode (terminated=True) on the first failure.
        max_episode_steps: truncation length; default from the task YAML.
        terminate_on_success: end the episode on success (off by default, as in
            Meta-World: its reward keeps paying 10 per step at the goal).
    """
    return FailureBenchEnv(load_task_spec(task_name), seed=seed, terminate_on_failure=terminate_on_failure,
                           terminate_on_success=terminate_on_success, max_episode_steps=max_episode_steps)

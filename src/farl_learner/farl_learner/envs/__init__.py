"""FailureBench: the simulated benchmark of the FARL paper on Meta-World 3.x.

Four tasks (`TASK_NAMES`), each a Meta-World state-based task plus a binary
failure constraint defined in config/failurebench/<task>.yaml:

- bounded_push: push-v3; the puck leaving a rectangle on the table.
- bounded_soccer: soccer-v3; the ball rolling out of a rectangle.
- fragile_push_wall: push-wall-v3; the block touching the wall (MuJoCo contact).
- obstructed_push: push-v3 + a static vase; the arm or the puck touching the vase.

API:
    make_env(task_name, seed=None, terminate_on_failure=True, max_episode_steps=None,
             terminate_on_success=False) -> FailureBenchEnv
        step() info: "cost" (0.0/1.0), "failure" (bool), "success" (bool).
        env.is_failure(), env.constraint_margin(), env.snapshot()/restore().
    load_task_spec(task) -> TaskSpec;  TASK_NAMES
    expert_policy(name) / random_policy(rng) / noisy(...)  (obs -> action callables)
    failure_state(env) / safe_state(env)  constructed states for tests
    normalized_return(task, raw_return), load_normalization(), measure_normalization(...)
"""
from .constructed import failure_state, safe_state
from .experts import PolicyFn, expert_policy, noisy, random_policy, with_goal
from .failurebench import FailureBenchEnv, SimSnapshot, make_env
from .rollout import Episode, run_episode
from .normalization import load_normalization, measure_normalization, normalized_return
from .spec import TASK_NAMES, Rect, TaskSpec, load_task_spec

__all__ = [
    "TASK_NAMES", "Episode", "FailureBenchEnv", "run_episode", "PolicyFn", "Rect", "SimSnapshot", "TaskSpec", "expert_policy",
    "failure_state", "load_normalization", "load_task_spec", "make_env", "measure_normalization",
    "noisy", "normalized_return", "random_policy", "safe_state", "with_goal",
]

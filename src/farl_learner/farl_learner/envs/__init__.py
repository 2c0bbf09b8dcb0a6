"""FailureBench: the simulated benchmark of the FARL paper on Meta-World 3.x.

Four tasks (`TASK_NAMES`), each a Meta-World state-based task plus a binary
failure constraint defined in config/failurebench/<task>.yaml:

- bounded_push: push-v3; the puck leaving a rectangle drawn on the table.
- bounded_soccer: soccer-v3; the ball rolling out of a rectangle.
- fragile_push_wall: push-wall-v3 (wall lengthened); the block touching the wall.
- obstructed_push: push-v3 + a static vase; the arm or the puck touching the vase.

Observation (39 float64): [0:3] hand xyz, [3] gripper opening, [4:7] object
xyz, [7:11] object quaternion, [11:18] zero padding, [18:36] the previous
frame of [0:18], [36:39] goal xyz. Action (4 float32 in [-1, 1]): hand xyz
velocity (1 = 1 cm per step), gripper effort.

API:
    make_env(task_name, seed=None, terminate_on_failure=True, max_episode_steps=None,
             terminate_on_success=False) -> FailureBenchEnv   (a gymnasium.Env)
        step() info: "cost" (0.0/1.0), "failure" (bool), "success" (bool), plus Meta-World's keys.
        env.is_failure(), env.constraint_margin() (m, > 0 safe), env.snapshot()/env.restore(snap),
        env.spec_ (TaskSpec; `spec` is Gymnasium's EnvSpec slot).
    load_task_spec(task) -> TaskSpec;  TASK_NAMES
    expert_policy(name), random_policy(rng), noisy(policy, rng, std, random_action_prob, correlation),
        with_goal(policy, goal): obs -> action callables (PolicyFn)
    run_episode(env, policy, obs=None, record=False, max_steps=None) -> Episode
    failure_state(env) / safe_state(env): constructed states for tests
    normalized_return(task, raw_return) (0 random, 100 scripted expert), load_normalization(),
        measure_normalization(...) (CLI: python -m farl_learner.envs.normalization_cli)
Demos and datasets: `farl_learner.data`.
"""
from .constructed import failure_state, safe_state
from .experts import PolicyFn, expert_policy, noisy, random_policy, with_goal
from .failurebench import FailureBenchEnv, SimSnapshot, make_env
from .normalization import load_normalization, measure_normalization, normalized_return
from .rollout import Episode, run_episode
from .spec import TASK_NAMES, Rect, TaskSpec, load_task_spec

__all__ = [
    "TASK_NAMES", "Episode", "FailureBenchEnv", "PolicyFn", "Rect", "SimSnapshot", "TaskSpec", "expert_policy",
    "failure_state", "load_normalization", "load_task_spec", "make_env", "measure_normalization", "noisy",
    "normalized_return", "random_policy", "run_episode", "safe_state", "with_goal",
]

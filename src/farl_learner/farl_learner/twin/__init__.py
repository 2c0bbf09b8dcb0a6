"""Training twins of the real-robot tasks: the served franky-sim scene, stepped in-process.

API:
    FrankaTwinEnv(task="fragile_push_wall", controller="servo", max_steps=None, physics_dt, jacobian_period_s)
    make_twin_env(task, twin=None, max_steps=None)   the env with its twin config's stepping settings
        reset(seed) -> obs, info;  step(action in [-1,1]^3) -> obs, reward, terminated, truncated, info
        info: cost (0/1), failure, success, tcp, velocity (the filtered twist), clipped
        get_state() / set_state(state)   MuJoCo state save/restore (rewinding)
        set_object_position(name, xy)    staging states for tests / sampling
    load_twin_config(task) -> TwinConfig  config/twin/<task>.yaml
    TaskExpert, medium_expert, RecoveryController, noisy_policy, lured, random_policy   obs -> action
    build_twin_datasets(task, out_dir, seed, task_episodes, recovery_episodes, failure_transitions,
                        failure_policy=None, failure_policy_name=None, ...) -> TwinDatasets
    generate_task_demos / generate_recovery_demos / collect_failure_data(env, policy, transitions, ...)
"""
from .config import TwinConfig, load_twin_config, make_twin_env
from .data import (TwinDatasets, build_twin_datasets, collect_failure_data, generate_recovery_demos,
                   generate_task_demos)
from .env import FrankaTwinEnv, measure_steps_per_second
from .experts import (RecoveryController, TaskExpert, WallGeometry, lured, medium_expert, noisy_policy,
                      random_policy)

__all__ = [
    "FrankaTwinEnv", "RecoveryController", "TaskExpert", "TwinConfig", "TwinDatasets", "WallGeometry",
    "build_twin_datasets", "collect_failure_data", "generate_recovery_demos", "generate_task_demos",
    "load_twin_config", "lured", "make_twin_env", "measure_steps_per_second", "medium_expert", "noisy_policy", "random_policy",
]

"""Task demos: trajectories of the "medium" expert (the paper's 20 sim task demos).

The paper says only "a medium-quality expert". Here: the scripted expert with
Gaussian action noise and occasional uniformly random actions (settings in the
task YAML's `data.medium_expert`), which succeeds on roughly 60-90 % of
episodes instead of 100 %. Episodes that hit a failure are not kept: task demos
show the task done safely, failures are the failure data's job.
"""
from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np

from ..envs.experts import expert_policy, noisy
from ..envs.failurebench import make_env
from ..envs.rollout import Episode, run_episode
from ..envs.spec import load_task_spec
from .config import DataGenConfig, load_data_config
from .episodes import collect_episodes, episodes_to_dataset
from .format import KIND_TASK, Dataset


def generate_task_demos(task: str, n_demos: int | None = None, seed: int = 0,
                        config: DataGenConfig | None = None, progress: bool = True) -> Dataset:
    """`n_demos` (default: the task's `task_demos`, 20) failure-free medium-expert episodes, kind = task."""
    spec = load_task_spec(task)
    cfg = config or load_data_config(spec)
    me = cfg.medium_expert
    n = cfg.task_demos if n_demos is None else n_demos
    rng = np.random.default_rng(seed)
    env = make_env(task, seed=seed, terminate_on_failure=True)
    env.reset(seed=seed)
    started = time.perf_counter()

    def attempt() -> Episode | None:  # episodes that fail are not demos of the task done safely
        policy = noisy(expert_policy(spec.expert), rng, me.action_noise_std, me.random_action_prob)
        episode = run_episode(env, policy, record=True)
        return None if episode.failed else episode

    kept, attempts = collect_episodes(
        n, attempt, me.max_attempts, f"{task} task demos", progress=progress,
        give_up=lambda k, a: (f"{task}: only {k} of {n} failure-free task demos after {a} episodes "
                              f"(medium_expert.max_attempts); lower the noise in {spec.config_path}"))
    env.close()
    meta = {
        "generator": "task_demos", "seed": seed, "n_demos": n, "attempts": attempts,
        "success_rate": float(np.mean([ep.succeeded for ep in kept])),
        "mean_return": float(np.mean([ep.ret for ep in kept])),
        "seconds": round(time.perf_counter() - started, 2), "medium_expert": asdict(me),
    }
    return episodes_to_dataset(task, kept, KIND_TASK, meta)

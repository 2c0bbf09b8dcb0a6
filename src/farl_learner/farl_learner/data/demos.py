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
from tqdm import tqdm

from ..envs.experts import expert_policy, noisy
from ..envs.failurebench import make_env
from ..envs.rollout import Episode, run_episode
from ..envs.spec import load_task_spec
from .config import DataGenConfig, load_data_config
from .episodes import episodes_to_dataset
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
    kept: list[Episode] = []
    attempts = 0
    started = time.perf_counter()
    with tqdm(total=n, desc=f"{task} task demos", disable=not progress or None, leave=False) as bar:
        while len(kept) < n:
            if attempts >= me.max_attempts:
                raise RuntimeError(f"{task}: only {len(kept)} of {n} failure-free task demos after {attempts} "
                                   f"episodes (medium_expert.max_attempts); lower the noise in {spec.config_path}")
            attempts += 1
            policy = noisy(expert_policy(spec.expert), rng, me.action_noise_std, me.random_action_prob)
            episode = run_episode(env, policy, record=True)
            if not episode.failed:
                kept.append(episode)
                bar.update(1)
    env.close()
    meta = {
        "generator": "task_demos", "seed": seed, "n_demos": n, "attempts": attempts,
        "success_rate": float(np.mean([ep.succeeded for ep in kept])),
        "mean_return": float(np.mean([ep.ret for ep in kept])),
        "seconds": round(time.perf_counter() - started, 2), "medium_expert": asdict(me),
    }
    return episodes_to_dataset(task, kept, KIND_TASK, meta)

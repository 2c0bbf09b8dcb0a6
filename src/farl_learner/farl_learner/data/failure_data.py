"""Failure data: noise injected into an (offline-pretrained) policy, as in the paper.

The paper collects 20k-200k state-action samples containing failures "by adding
controlled noise to the offline-pretrained policy". `generate_failure_data`
does exactly that for any policy callable obs -> action: episodes end on
failure (so each failure is recorded once, with cost = 1 and done = True), and
collection stops at `n_transitions`.

Failures of a noisy closed-loop policy from the task's start states are rare
on some tasks (measured with the scripted expert + the default noise: a few
per cent of episodes on bounded push, none on fragile push wall), which would
leave a constraint head with a handful of positives in 20k samples. So a
fraction `near_failure_start_prob` of the episodes starts from a near-failure
state (found as for the recovery demos: a lured expert rewound a few steps
before its failure); from there the same noisy policy acts. Every recorded
action is still the noisy policy's; only the start-state distribution is
shifted toward where failures happen. Set it to 0 for start states only.
"""
from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

from ..envs.experts import PolicyFn, noisy
from ..envs.failurebench import make_env
from ..envs.rollout import Episode, run_episode
from ..envs.spec import load_task_spec
from .config import load_data_config
from .episodes import episodes_to_dataset
from .format import KIND_FAILURE, Dataset
from .recovery import sample_near_failure_state


def generate_failure_data(task: str, policy_fn: PolicyFn, n_transitions: int | None = None,
                          noise_scale: float | None = None, seed: int = 0,
                          random_action_prob: float | None = None, noise_correlation: float | None = None,
                          max_episode_steps: int | None = None, policy_name: str = "policy",
                          near_failure_start_prob: float | None = None, progress: bool = True) -> Dataset:
    """Roll `policy_fn` + noise until `n_transitions` transitions are recorded; kind = failure.

    Args:
        task: FailureBench task name.
        policy_fn: obs (39,) float -> action (4,); e.g. the BC policy's mean action.
        n_transitions: total transitions (default: the task YAML's failure_data, 20000).
        noise_scale: std of the Gaussian action noise (action units, [-1, 1] range).
        random_action_prob: probability of a uniformly random action per step.
        noise_correlation: AR(1) coefficient of the noise (0 = white noise).
        max_episode_steps: episode length (default: the task's).
        policy_name: recorded in the metadata (which policy the noise was added to).
        near_failure_start_prob: fraction of episodes started from a near-failure
            state (see the module docstring); default from the task YAML.

    The last episode is cut at `n_transitions` (its last transition gets
    timeout=True). Metadata records the episode failure rate.
    """
    spec = load_task_spec(task)
    data_cfg = load_data_config(spec)
    fd = data_cfg.failure_data
    n = fd.n_transitions if n_transitions is None else int(n_transitions)
    sigma = fd.noise_scale if noise_scale is None else float(noise_scale)
    eps = fd.random_action_prob if random_action_prob is None else float(random_action_prob)
    rho = fd.noise_correlation if noise_correlation is None else float(noise_correlation)
    p_near = fd.near_failure_start_prob if near_failure_start_prob is None else float(near_failure_start_prob)
    if n < 1:
        raise ValueError(f"n_transitions must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    env = make_env(task, seed=seed, terminate_on_failure=True, max_episode_steps=max_episode_steps)
    env.reset(seed=seed)
    episodes: list[Episode] = []
    near_starts = 0
    total = 0
    started = time.perf_counter()
    with tqdm(total=n, desc=f"{task} failure data", unit="step", disable=not progress or None, leave=False) as bar:
        while total < n:
            obs = None
            if p_near > 0.0 and rng.random() < p_near:
                obs = sample_near_failure_state(env, data_cfg, rng)  # None: fall back to a fresh start
                near_starts += obs is not None
            episode = run_episode(env, noisy(policy_fn, rng, sigma, eps, rho), obs=obs, record=True,
                                  max_steps=n - total)
            episodes.append(episode)
            total += episode.length
            bar.update(episode.length)
    env.close()
    meta = {
        "generator": "failure_data", "seed": seed, "policy": policy_name, "noise_scale": sigma,
        "random_action_prob": eps, "noise_correlation": rho, "near_failure_start_prob": p_near,
        "near_failure_starts": near_starts, "episodes": len(episodes),
        "failure_episodes": int(sum(ep.failed for ep in episodes)),
        "episode_failure_rate": float(np.mean([ep.failed for ep in episodes])),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return episodes_to_dataset(task, episodes, KIND_FAILURE, meta)

"""Offline data of a twin task, in the shared dataset format (`farl_learner.data.format`).

Three kinds, as in the paper:
- task demos (kind 0): `data.task_episodes` episodes of the medium expert
  (expert + noise); episodes that end in a failure are discarded and retried.
- recovery demos (kind 1): `data.recovery_episodes` episodes of the scripted
  recovery controller, each started from a sampled near-failure state: a
  noisy expert without wall avoidance, lured toward a point behind the wall, runs until it fails at tick
  t; the twin is rewound (MuJoCo state restore) to tick t - k, k uniform in
  [rewind_min, rewind_max]; if that state is near-failure (`RecoveryController
  .near_failure`) the controller takes over until it reaches its safe point
  (the demo's last step is marked `timeout`: bootstrap) or `recovery.max_steps`.
  Only recoveries without a failure are kept.
- failure data (kind 2): `collect_failure_data` injects noise into any policy
  callable (the offline-pretrained policy when there is one; the task expert
  without wall avoidance by default): AR(1) action noise, random actions and,
  in `data.failure_lure_prob` of the episodes, a goal moved behind the wall;
  whole episodes (they end at the failure) until `data.failure_transitions`.

`build_twin_datasets(task, out_dir, seed, ...)` makes all three, one .npz per
kind, cached under out_dir by a hash of every parameter that changes them.

Every function takes an env factory (anything returning a `FrankaTwinEnv`-like
env: gymnasium API plus get_state/set_state), so the same code runs on other
twins.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from farl_common.errors import FarlInputError
from farl_learner.data.episodes import episodes_to_dataset
from farl_learner.data.format import (FORMAT_VERSION, KIND_FAILURE, KIND_RECOVERY, KIND_TASK, Dataset,
                                      load_dataset, save_dataset)
from farl_learner.envs.rollout import Episode, run_episode

from .config import TwinConfig, load_twin_config, make_twin_env
from .env import FrankaTwinEnv
from .experts import PolicyFn, RecoveryController, TaskExpert, lured, medium_expert, noisy_policy

#: Bump when generation code changes what it produces (invalidates caches).
GENERATOR_VERSION = 1

EnvFactory = Callable[[], FrankaTwinEnv]


def run_policy_episode(env, policy: PolicyFn, seed: int | None, max_steps: int | None = None) -> Episode:
    """One recorded episode of `policy` from `env.reset(seed=seed)` (FailureBench's `run_episode`)."""
    obs, _ = env.reset(seed=seed)
    return run_episode(env, policy, obs=obs, record=True, max_steps=max_steps)


def _dataset(env, episodes: list[Episode], kind: int, meta: dict[str, Any]) -> Dataset:
    if not episodes:
        raise ValueError("no episodes to store")
    return episodes_to_dataset(env.config.task, episodes, kind, meta)


def _progress(total: int, desc: str, enabled: bool, unit: str = "ep"):
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=False, dynamic_ncols=True)


def generate_task_demos(env, twin: TwinConfig, episodes: int, seed: int, progress: bool = True,
                        max_attempts: int | None = None) -> Dataset:
    """`episodes` medium-expert episodes without failure (kind 0)."""
    rng = np.random.default_rng([seed, KIND_TASK])
    expert = TaskExpert(env.config, env.spec_, twin.expert)
    kept: list[Episode] = []
    attempts = failures = 0
    max_attempts = max_attempts or 5 * episodes + 10
    with _progress(episodes, "twin task demos", progress) as bar:
        while len(kept) < episodes:
            if attempts >= max_attempts:
                raise RuntimeError(f"only {len(kept)}/{episodes} failure-free task demos in {attempts} attempts")
            attempts += 1
            ep = run_policy_episode(env, medium_expert(expert, rng, twin.medium), int(rng.integers(1 << 31)))
            if ep.failed:
                failures += 1
                continue
            kept.append(ep)
            bar.update(1)
    stats = {"episodes": len(kept), "attempts": attempts, "failed_attempts": failures,
             "success_rate": float(np.mean([ep.succeeded for ep in kept])) if kept else 0.0,
             "mean_return": float(np.mean([ep.ret for ep in kept])) if kept else 0.0}
    return _dataset(env, kept, KIND_TASK, {"generator": "twin.task_demos", "stats": stats})


def lure_point(recovery: RecoveryController, env, twin: TwinConfig, rng: np.random.Generator) -> np.ndarray:
    """Where a lured push must aim to end in the task's failure (`Hazard.lure`). For the wall: behind
    it (beyond its face by `lure_beyond_wall`), along it uniformly between the block and the target
    (± `lure_y_jitter`), so lured pushes hit the wall at every angle between head-on and along the
    task's own path; for an obstacle: the obstacle; for a boundary: beyond one of its lines."""
    fs = twin.failure_sources
    target = env.object_position(env.spec_.target)[:2]
    block = env.object_position(env.spec_.pushed_object)[:2]
    return recovery.wall.lure(env.observation(), rng, fs.lure_beyond_wall, fs.lure_y_jitter, target, block)


def sample_near_failure(env, twin: TwinConfig, rng: np.random.Generator, recovery: RecoveryController,
                        expert: PolicyFn) -> np.ndarray | None:
    """Run a lured noisy `expert` (one without wall avoidance) to a failure and rewind before it.

    Leaves the env in the near-failure state and returns its observation, or
    None when the rollout did not fail or the rewound state is not near-failure.
    """
    fs = twin.failure_sources
    obs, _ = env.reset(seed=int(rng.integers(1 << 31)))
    policy = noisy_policy(lured(expert, env.spec_, lure_point(recovery, env, twin, rng)), rng,
                          fs.noise_std, fs.random_action_prob, env.spec_.action_dim)
    history = [(env.get_state(), obs)]  # history[i] = state and obs before step i
    for _ in range(fs.max_steps):  # the task's time limit does not cut these rollouts
        obs, _, terminated, _, info = env.step(policy(obs))
        if info["failure"]:
            break
        if terminated:
            return None
        history.append((env.get_state(), obs))
    else:
        return None
    i = len(history) - int(rng.integers(fs.rewind_min, fs.rewind_max + 1))  # len(history) = failing step
    if i < 1:
        return None
    state, start_obs = history[i]
    if not recovery.near_failure(start_obs, history[i - 1][1]):
        return None
    env.set_state(state)
    return start_obs


def run_recovery(env, recovery: RecoveryController, obs: np.ndarray, max_steps: int) -> tuple[Episode, bool]:
    """The recovery controller from the env's current state until safe, failure or `max_steps`.

    Returns the recorded episode (its last step is `done` on a failure, else a
    `timeout`: reaching the safe point or the step cap cuts the demo) and
    whether the safe point was reached.
    """
    recovery.reset()
    ep = Episode()
    safe = False
    for t in range(max_steps):
        action = np.asarray(recovery(obs), dtype=np.float32)
        next_obs, reward, terminated, _, info = env.step(action)  # the task's time limit does not cut a demo
        ep.ret += reward
        ep.length += 1
        ep.failed |= bool(info["failure"])
        ep.succeeded |= bool(info["success"])
        safe = not ep.failed and recovery.is_safe(next_obs)
        end = bool(terminated or safe or t == max_steps - 1)
        ep.add(obs, action, reward, info["cost"], bool(terminated), end and not terminated, next_obs)
        obs = next_obs
        if end:
            ep.terminated = bool(terminated)
            break
    return ep, safe


def generate_recovery_demos(env, twin: TwinConfig, episodes: int, seed: int, progress: bool = True,
                            max_attempts: int | None = None) -> Dataset:
    """`episodes` failure-free recoveries from sampled near-failure states (kind 1)."""
    rng = np.random.default_rng([seed, KIND_RECOVERY])
    # The lured expert ignores the wall (no wall margin): it pushes the block straight at it.
    expert = TaskExpert(env.config, env.spec_, dataclasses.replace(twin.expert, wall_margin=0.0, yield_margin=0.0))
    recovery = RecoveryController(env.config, env.spec_, twin.expert, twin.recovery)
    kept: list[Episode] = []
    rollouts = unusable = recovery_failed = reached_safe = 0
    max_attempts = max_attempts or 20 * episodes + 20
    with _progress(episodes, "twin recovery demos", progress) as bar:
        while len(kept) < episodes:
            if rollouts >= max_attempts:
                raise RuntimeError(f"only {len(kept)}/{episodes} recovery demos in {rollouts} lured rollouts")
            rollouts += 1
            start = sample_near_failure(env, twin, rng, recovery, expert)
            if start is None:
                unusable += 1
                continue
            ep, safe = run_recovery(env, recovery, start, twin.recovery.max_steps)
            if ep.failed:
                recovery_failed += 1
                continue
            reached_safe += safe
            kept.append(ep)
            bar.update(1)
    n = len(kept)
    stats = {"episodes": n, "lured_rollouts": rollouts, "rollouts_without_usable_near_failure": unusable,
             "recoveries_that_failed": recovery_failed,
             "recovery_success_rate": n / max(n + recovery_failed, 1),
             "reached_safe_point": reached_safe,
             "mean_length": float(np.mean([ep.length for ep in kept])) if kept else 0.0}
    return _dataset(env, kept, KIND_RECOVERY, {"generator": "twin.recovery_demos", "stats": stats})


@contextlib.contextmanager
def _restore(env, max_steps: int):
    try:
        yield
    finally:
        env.max_steps = max_steps


def collect_failure_data(env, policy: PolicyFn, transitions: int, seed: int, noise_std: float,
                         random_action_prob: float, correlation: float = 0.0, progress: bool = True,
                         policy_name: str = "policy", lure_prob: float = 0.0,
                         twin: TwinConfig | None = None, max_episode_steps: int | None = None) -> Dataset:
    """Failure data (kind 2) by noise injection into `policy` (obs → action in [-1, 1]).

    The twin counterpart of `farl_learner.data.generate_failure_data` (which
    builds FailureBench envs by task name): same recipe — AR(1) Gaussian noise
    of stationary std `noise_std` plus random actions, whole episodes (they end
    at a failure when the task terminates on failure), the last one cut at
    `transitions` (timeout), every transition kept.

    `lure_prob` adds goal noise: in that fraction of episodes the policy's
    target input is moved to a lure point behind the wall (as for recovery
    sampling, `failure_sources` of the twin config), so that a policy that
    does its job well still produces failures in useful numbers.

    `max_episode_steps` (default: the task's) may exceed the task's time limit:
    the observation holds no time, so later transitions are as valid for the
    world model, and noisy policies need the time to reach the wall at all.
    """
    if transitions < 1:
        raise ValueError(f"transitions must be >= 1, got {transitions}")
    rng = np.random.default_rng([seed, KIND_FAILURE])
    if lure_prob > 0.0:
        twin = twin or load_twin_config(env.config.task)
        lurer = RecoveryController(env.config, env.spec_, twin.expert, twin.recovery)
    episodes: list[Episode] = []
    total = lured_episodes = 0
    task_limit = env.max_steps
    env.max_steps = int(max_episode_steps or task_limit)
    with _progress(transitions, "twin failure data", progress, unit="step") as bar, _restore(env, task_limit):
        while total < transitions:
            obs, _ = env.reset(seed=int(rng.integers(1 << 31)))
            acting = policy
            if lure_prob > 0.0 and rng.random() < lure_prob:
                acting = lured(policy, env.spec_, lure_point(lurer, env, twin, rng))
                lured_episodes += 1
            noisy = noisy_policy(acting, rng, noise_std, random_action_prob, env.spec_.action_dim, correlation)
            ep = run_episode(env, noisy, obs=obs, record=True, max_steps=transitions - total)
            episodes.append(ep)
            total += ep.length
            bar.update(ep.length)
    stats = {"episodes": len(episodes), "failure_episodes": int(sum(ep.failed for ep in episodes)),
             "episode_failure_rate": float(np.mean([ep.failed for ep in episodes])),
             "success_rate": float(np.mean([ep.succeeded for ep in episodes])),
             "noise_std": noise_std, "random_action_prob": random_action_prob, "correlation": correlation,
             "lure_prob": lure_prob, "lured_episodes": lured_episodes, "policy": policy_name,
             "max_episode_steps": int(max_episode_steps or task_limit)}
    return _dataset(env, episodes, KIND_FAILURE, {"generator": "twin.failure_data", "stats": stats})


def default_failure_policy(env, twin: TwinConfig) -> PolicyFn:
    """Stand-in for the offline-pretrained policy: the task expert without its wall avoidance
    (a cloned policy has no explicit wall rule either)."""
    return TaskExpert(env.config, env.spec_, dataclasses.replace(twin.expert, wall_margin=0.0, yield_margin=0.0))


# ---- building and caching ---------------------------------------------------
@dataclass
class TwinDatasets:
    """The three offline datasets of a twin task and where they are cached."""

    task: Dataset
    recovery: Dataset
    failure: Dataset
    paths: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # generation time per kind; 0 = from cache


def dataset_key(env, twin: TwinConfig, seed: int, sizes: dict[str, int], failure_policy: str) -> str:
    """Hash of everything that changes the generated data."""
    blob = json.dumps({"format": FORMAT_VERSION, "version": GENERATOR_VERSION, "task": env.config.raw,
                       "twin": twin.as_dict(), "seed": seed, "sizes": sizes, "failure_policy": failure_policy,
                       "controller": env.controller}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_twin_datasets(task: str = "fragile_push_wall", out_dir: str | Path = "data/twin", seed: int = 0,
                        task_episodes: int | None = None, recovery_episodes: int | None = None,
                        failure_transitions: int | None = None, failure_policy: PolicyFn | None = None,
                        failure_policy_name: str | None = None, twin_config: str | Path | None = None,
                        env_factory: EnvFactory | None = None, progress: bool = True,
                        force: bool = False) -> TwinDatasets:
    """Task (kind 0), recovery (kind 1) and failure (kind 2) datasets of a twin task, cached.

    Sizes default to the `data:` section of config/twin/<task>.yaml. Failure
    data is noise injected into `failure_policy` (default: `default_failure_policy`,
    standing in for the offline-pretrained policy until one exists); a
    custom policy must come with a `failure_policy_name`, which keys the cache.
    Files: out_dir/<task>-<hash>/{task,recovery,failure}.npz, reused when every
    parameter matches (an unreadable file is regenerated; `force` regenerates all).
    """
    twin = load_twin_config(twin_config or task)
    env = env_factory() if env_factory is not None else make_twin_env(task, twin)
    sizes = {"task_episodes": twin.data.task_episodes if task_episodes is None else task_episodes,
             "recovery_episodes": twin.data.recovery_episodes if recovery_episodes is None else recovery_episodes,
             "failure_transitions": twin.data.failure_transitions if failure_transitions is None
             else failure_transitions}
    if failure_policy is not None and not failure_policy_name:
        raise ValueError("a custom failure_policy needs a failure_policy_name (it keys the cache)")
    policy_name = failure_policy_name or "task_expert_without_wall_avoidance"
    key = dataset_key(env, twin, seed, sizes, policy_name)
    folder = Path(out_dir) / f"{env.config.task}-{key}"
    params = {"seed": seed, "sizes": sizes, "failure_policy": policy_name, "generator_version": GENERATOR_VERSION,
              "cache_key": key, "twin_config": twin.as_dict()}
    d = twin.data
    jobs: dict[str, Callable[[], Dataset]] = {
        "task": lambda: generate_task_demos(env, twin, sizes["task_episodes"], seed, progress),
        "recovery": lambda: generate_recovery_demos(env, twin, sizes["recovery_episodes"], seed, progress),
        "failure": lambda: collect_failure_data(
            env, failure_policy or default_failure_policy(env, twin), sizes["failure_transitions"],
            seed, d.failure_noise_std, d.failure_random_action_prob, d.failure_noise_correlation, progress,
            policy_name, d.failure_lure_prob, twin, d.failure_max_episode_steps),
    }
    out: dict[str, Dataset] = {}
    paths: dict[str, Path] = {}
    seconds: dict[str, float] = {}
    for name, job in jobs.items():
        path = paths[name] = folder / f"{name}.npz"
        if path.is_file() and not force:
            try:
                out[name] = load_dataset(path, expect_task=env.config.task)
                seconds[name] = 0.0
                continue
            except FarlInputError as error:
                print(f"warning: regenerating unusable cache file: {error}", file=sys.stderr)
        t0 = time.perf_counter()
        dataset = job()
        seconds[name] = round(time.perf_counter() - t0, 2)
        dataset.meta.update(params, seconds=seconds[name])
        save_dataset(path, dataset)
        out[name] = dataset
    return TwinDatasets(out["task"], out["recovery"], out["failure"], paths, seconds)


def main(argv: list[str] | None = None) -> None:
    """python -m farl_learner.twin.data --task fragile_push_wall --out data/twin --seed 0 [sizes]"""
    import argparse

    from farl_common.errors import exit_on_input_error

    parser = argparse.ArgumentParser(prog="python -m farl_learner.twin.data",
                                     description="Build (or reuse) a twin task's offline datasets.")
    parser.add_argument("--task", default="fragile_push_wall")
    parser.add_argument("--out", default="data/twin")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--task-episodes", type=int)
    parser.add_argument("--recovery-episodes", type=int)
    parser.add_argument("--failure-transitions", type=int)
    parser.add_argument("--force", action="store_true", help="regenerate even when cached")
    args = parser.parse_args(argv)
    with exit_on_input_error("farl_learner.twin.data"):
        t0 = time.perf_counter()
        built = build_twin_datasets(args.task, args.out, args.seed, args.task_episodes, args.recovery_episodes,
                                    args.failure_transitions, force=args.force)
        for name in ("task", "recovery", "failure"):
            ds = getattr(built, name)
            stats = ds.meta.get("stats", {})
            print(f"{name:9s} {len(ds):6d} transitions {ds.n_episodes:4d} episodes "
                  f"{int((ds.cost > 0).sum()):4d} failures  {built.seconds[name]:7.1f} s  {built.paths[name]}  {stats}")
        print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()


# ---- data from the pretrained policy itself ---------------------------------------
def collect_exploration_data(env, policy, transitions: int, seed: int, correlation: float,
                             rewind: tuple[int, int] = (2, 8), progress: bool = True,
                             policy_name: str = "pretrained task policy") -> tuple[Dataset, list]:
    """Failure data (kind 2): the pretrained policy exploring exactly as the stack's actor will.

    `policy` (a GaussianPolicy) acts by sampling its own Gaussian with AR(1)
    draws of coefficient `correlation` (the task config's exploration), in
    task-length episodes, until `transitions` steps are recorded. Every
    transition is kept, failing or not: the world model learns both what leads
    to a failure and what does not, from the states the policy really visits.
    Also returns (TwinState, obs) pairs a few ticks (`rewind`) before each
    failure, to start recovery demos there.
    """
    from .actors import PolicyActor, rollouts

    actor = PolicyActor(policy, explore=True, correlation=correlation, seed=seed)
    episodes: list[Episode] = []
    near: list = []
    stats_total = None
    with _progress(transitions, "twin failure data (policy exploration)", progress, unit="step") as bar:
        base = 0
        while sum(ep.length for ep in episodes) < transitions:
            left = transitions - sum(ep.length for ep in episodes)
            result = rollouts(env, actor, 50, seed=seed * 100_003 + base, record=True, rewind=rewind,
                              max_transitions=left)
            base += 50
            episodes.extend(result.episodes)
            near.extend(result.near_failure_states)
            bar.update(sum(ep.length for ep in result.episodes))
            s = result.stats
            if stats_total is None:
                stats_total = s
            else:
                for name in ("episodes", "successes", "failure_episodes", "failure_pairs", "steps"):
                    setattr(stats_total, name, getattr(stats_total, name) + getattr(s, name))
                stats_total.returns += s.returns
                stats_total.lengths += s.lengths
    stats = {**stats_total.summary(), "policy": policy_name, "correlation": correlation,
             "near_failure_states": len(near), "source": "pretrained policy exploration"}
    stats["episode_failure_rate"] = stats["failure_rate"]
    return _dataset(env, episodes, KIND_FAILURE, {"generator": "twin.exploration_data", "stats": stats}), near


def recovery_demos_from_states(env, twin: TwinConfig, states: list, episodes: int, seed: int,
                               progress: bool = True) -> tuple[Dataset, dict]:
    """Recovery demos (kind 1) of the scripted controller from given near-failure states.

    The states come from where the pretrained policy itself failed (a few ticks
    before), which are the states the shield will have to hand over in. When
    they are fewer than `episodes`, the rest start from the lured expert's
    near-failures (`sample_near_failure`, as `generate_recovery_demos`); the
    stats say how many came from each. Recoveries that fail are dropped.
    """
    rng = np.random.default_rng([seed, KIND_RECOVERY, 1])
    recovery = RecoveryController(env.config, env.spec_, twin.expert, twin.recovery)
    kept: list[Episode] = []
    from_policy = from_lure = failed = 0
    order = rng.permutation(len(states)) if states else np.zeros(0, dtype=int)
    with _progress(episodes, "twin recovery demos", progress) as bar:
        for i in order:
            if len(kept) >= episodes:
                break
            state, obs = states[int(i)]
            env.set_state(state)
            ep, _ = run_recovery(env, recovery, obs, twin.recovery.max_steps)
            if ep.failed:
                failed += 1
                continue
            kept.append(ep)
            from_policy += 1
            bar.update(1)
        expert = TaskExpert(env.config, env.spec_, dataclasses.replace(twin.expert, wall_margin=0.0, yield_margin=0.0))
        attempts = 0
        while len(kept) < episodes:
            attempts += 1
            if attempts > 20 * episodes + 20:
                raise RuntimeError(f"only {len(kept)}/{episodes} recovery demos")
            start = sample_near_failure(env, twin, rng, recovery, expert)
            if start is None:
                continue
            ep, _ = run_recovery(env, recovery, start, twin.recovery.max_steps)
            if ep.failed:
                failed += 1
                continue
            kept.append(ep)
            from_lure += 1
            bar.update(1)
    stats = {"episodes": len(kept), "from_policy_near_failures": from_policy, "from_lured_expert": from_lure,
             "policy_near_failure_states": len(states), "recoveries_that_failed": failed,
             "mean_length": float(np.mean([ep.length for ep in kept])) if kept else 0.0}
    return _dataset(env, kept, KIND_RECOVERY, {"generator": "twin.recovery_demos_from_states", "stats": stats}), stats

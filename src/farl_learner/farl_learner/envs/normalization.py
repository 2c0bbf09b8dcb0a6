"""Normalized return: 0 = the uniform random policy, 100 = the scripted expert.

The paper reports FailureBench returns on this scale without giving the raw
reference returns, so they are measured here (`measure_normalization`) with
the same env settings as training (terminate on failure, the task's episode
length) and committed to config/failurebench/normalization.json together with
the command that produced them. `normalized_return` reads that file.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm import tqdm

from farl_common.errors import FarlInputError

from .experts import expert_policy, noisy, random_policy
from .failurebench import make_env
from .rollout import run_episode
from .spec import TASK_NAMES, failurebench_dir, load_task_spec

NORMALIZATION_FILE = "normalization.json"


@dataclass(frozen=True)
class PolicyStats:
    """Raw-return statistics of one reference policy on one task."""

    mean_return: float
    std_return: float
    failure_rate: float
    success_rate: float
    mean_length: float


@dataclass(frozen=True)
class TaskNormalization:
    """Reference returns of one task. `noisy_expert` (the expert with the task's
    failure-data noise) is informational: it shows how often an imperfect
    policy violates the constraint, and is not part of the normalization."""

    random: PolicyStats
    expert: PolicyStats
    noisy_expert: PolicyStats
    episodes: int
    seed: int


def _stats(task: str, make_policy, episodes: int, seed: int, desc: str) -> PolicyStats:
    env = make_env(task, seed=seed)
    env.reset(seed=seed)
    rets, fails, succ, lens = [], [], [], []
    for _ in tqdm(range(episodes), desc=desc, leave=False, disable=None):
        ep = run_episode(env, make_policy())
        rets.append(ep.ret); fails.append(ep.failed); succ.append(ep.succeeded); lens.append(ep.length)
    env.close()
    return PolicyStats(float(np.mean(rets)), float(np.std(rets)), float(np.mean(fails)),
                       float(np.mean(succ)), float(np.mean(lens)))


def measure_task(task: str, episodes: int, seed: int) -> TaskNormalization:
    """Random and expert raw returns on `episodes` episodes (same seeds for both)."""
    spec = load_task_spec(task)
    rng = np.random.default_rng(seed)
    rand = _stats(task, lambda: random_policy(rng), episodes, seed, f"{task} random")
    expert = _stats(task, lambda: expert_policy(spec.expert), episodes, seed, f"{task} expert")
    from ..data.config import parse_data_config  # the data package builds on envs: import late

    fd = parse_data_config(spec.data_section).failure_data
    noisy_expert = _stats(task, lambda: noisy(expert_policy(spec.expert), rng, fd.noise_scale, fd.random_action_prob,
                                              fd.noise_correlation), episodes, seed, f"{task} noisy expert")
    return TaskNormalization(rand, expert, noisy_expert, episodes, seed)


def measure_normalization(tasks: tuple[str, ...] = TASK_NAMES, episodes: int = 10, seed: int = 0,
                          out: Path | None = None) -> dict[str, TaskNormalization]:
    """Measure `tasks` and write the JSON file atomically (tmp + rename); entries
    of other tasks already in the file are kept."""
    result = {task: measure_task(task, episodes, seed) for task in tasks}
    out = out or failurebench_dir() / NORMALIZATION_FILE
    try:
        entries = json.loads(out.read_text()).get("tasks", {})
    except (OSError, ValueError, AttributeError):
        entries = {}
    entries.update({task: asdict(n) for task, n in result.items()})
    doc = {
        "command": f"python -m farl_learner.envs.normalization_cli --episodes {episodes} --seed {seed}",
        "note": "0 = uniform random policy, 100 = scripted expert; raw returns of episodes that "
                "terminate on failure, task episode length from config/failurebench/<task>.yaml",
        "tasks": entries,
    }
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, out)
    load_normalization.cache_clear()
    return result


@lru_cache(maxsize=None)
def load_normalization(path: str | None = None) -> dict[str, tuple[float, float]]:
    """task -> (random raw return, expert raw return) from the committed JSON."""
    file = Path(path) if path else failurebench_dir() / NORMALIZATION_FILE
    try:
        doc = json.loads(file.read_text())
        return {t: (float(v["random"]["mean_return"]), float(v["expert"]["mean_return"]))
                for t, v in doc["tasks"].items()}
    except FileNotFoundError:
        raise FarlInputError(file, "file not found; run python -m farl_learner.envs.normalization_cli") from None
    except (ValueError, KeyError, TypeError) as error:
        raise FarlInputError(file, f"malformed normalization file ({type(error).__name__}: {error})") from None


def normalized_return(task: str, raw_return: float) -> float:
    """100 * (raw - random) / (expert - random) with the committed reference returns."""
    table = load_normalization()
    if task not in table:
        raise FarlInputError(failurebench_dir() / NORMALIZATION_FILE, f"no reference returns for task {task!r}")
    low, high = table[task]
    return 100.0 * (float(raw_return) - low) / (high - low)

"""Recorded episodes -> a `Dataset`."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from tqdm import tqdm

from ..envs.rollout import Episode
from .format import Dataset

OBS_DIM = 39
ACTION_DIM = 4


def episodes_to_dataset(task: str, episodes: Sequence[Episode], kind: int, meta: dict[str, Any]) -> Dataset:
    """Concatenate recorded episodes (episode ids 0..n-1 in order), all of one `kind`."""
    if not episodes or not any(ep.obs for ep in episodes):
        empty = np.zeros((0, OBS_DIM), np.float32)
        return Dataset(task, empty, np.zeros((0, ACTION_DIM), np.float32), np.zeros(0), np.zeros(0),
                       np.zeros(0, bool), np.zeros(0, bool), np.zeros(0, np.int8), np.zeros(0, np.int32),
                       empty.copy(), meta=meta)
    lengths = [len(ep.obs) for ep in episodes]
    return Dataset(
        task=task,
        obs=np.concatenate([np.stack(ep.obs) for ep in episodes]),
        action=np.concatenate([np.stack(ep.action) for ep in episodes]),
        reward=np.concatenate([ep.reward for ep in episodes]),
        cost=np.concatenate([ep.cost for ep in episodes]),
        done=np.concatenate([ep.done for ep in episodes]),
        timeout=np.concatenate([ep.timeout for ep in episodes]),
        kind=np.full(sum(lengths), kind, dtype=np.int8),
        episode_id=np.repeat(np.arange(len(episodes), dtype=np.int32), lengths),
        next_obs=np.concatenate([np.stack(ep.next_obs) for ep in episodes]),
        meta=meta,
    )


def collect_episodes(n: int, attempt: Callable[[], Episode | None], max_attempts: int, desc: str,
                     give_up: Callable[[int, int], str], progress: bool = True) -> tuple[list[Episode], int]:
    """Run `attempt` until `n` episodes are kept (an attempt returns None to reject its episode).

    The one retry loop of demo generation: after `max_attempts` attempts it raises
    RuntimeError(give_up(kept, attempts)), which should say which setting to change.
    Returns the kept episodes and the number of attempts.
    """
    kept: list[Episode] = []
    attempts = 0
    with tqdm(total=n, desc=desc, disable=not progress or None, leave=False) as bar:
        while len(kept) < n:
            if attempts >= max_attempts:
                raise RuntimeError(give_up(len(kept), attempts))
            attempts += 1
            episode = attempt()
            if episode is not None:
                kept.append(episode)
                bar.update(1)
    return kept, attempts

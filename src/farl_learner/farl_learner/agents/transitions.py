"""The transition arrays every learner reads, and how it samples them.

The dataset layout is FailureBench's (farl_learner.data): parallel arrays
`obs, action, reward, cost, done, timeout, kind, episode_id, next_obs`, with
each episode's steps stored contiguously and in time order. `done` marks a true
termination (failure or success, no bootstrap), `timeout` a time-limit cut
(bootstrap), `cost` the binary constraint C(s_t, a_t), `kind` 0 task /
1 recovery / 2 failure data. Learners take a `Transitions` so they can be
tested on toy arrays and fed from any source (npz cache, MCAP episodes, the
online buffer).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np
import torch

KIND_TASK, KIND_RECOVERY, KIND_FAILURE = 0, 1, 2
FIELDS = ("obs", "action", "reward", "cost", "done", "timeout", "kind", "episode_id", "next_obs")


@dataclass
class Transitions:
    obs: np.ndarray  # [N, obs_dim] float32
    action: np.ndarray  # [N, action_dim] float32
    reward: np.ndarray  # [N] float32
    cost: np.ndarray  # [N] float32 in {0, 1}
    done: np.ndarray  # [N] bool: terminated (no bootstrap)
    timeout: np.ndarray  # [N] bool: truncated by a time limit
    kind: np.ndarray  # [N] int8
    episode_id: np.ndarray  # [N] int64, contiguous per episode
    next_obs: np.ndarray  # [N, obs_dim] float32

    @staticmethod
    def from_arrays(source: Mapping[str, Any] | Any) -> "Transitions":
        """From a mapping (dict, np.load result) or any object with those attributes.

        Missing optional fields get neutral defaults (no cost, no timeout, task
        kind); raises KeyError naming a missing required field.
        """
        def get(name: str) -> Any:
            if isinstance(source, Mapping) or hasattr(source, "files"):
                return source[name] if name in source else None
            return getattr(source, name, None)

        obs = get("obs")
        if obs is None or get("action") is None:
            raise KeyError("obs" if obs is None else "action")
        n = len(obs)
        defaults = {"reward": np.zeros(n), "cost": np.zeros(n), "done": np.zeros(n, bool),
                    "timeout": np.zeros(n, bool), "kind": np.zeros(n), "episode_id": np.zeros(n)}
        values = {name: get(name) for name in FIELDS}
        for name, default in defaults.items():
            if values[name] is None:
                values[name] = default
        if values["next_obs"] is None:
            raise KeyError("next_obs")
        return Transitions(
            obs=np.asarray(values["obs"], np.float32), action=np.asarray(values["action"], np.float32),
            reward=np.asarray(values["reward"], np.float32), cost=np.asarray(values["cost"], np.float32),
            done=np.asarray(values["done"], bool), timeout=np.asarray(values["timeout"], bool),
            kind=np.asarray(values["kind"], np.int8), episode_id=np.asarray(values["episode_id"], np.int64),
            next_obs=np.asarray(values["next_obs"], np.float32),
        )

    def __len__(self) -> int:
        return len(self.obs)

    @property
    def obs_dim(self) -> int:
        return self.obs.shape[1]

    @property
    def action_dim(self) -> int:
        return self.action.shape[1]

    def select(self, mask: np.ndarray) -> "Transitions":
        return Transitions(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})

    @staticmethod
    def concat(parts: list["Transitions"]) -> "Transitions":
        """Concatenate, renumbering episode ids so episodes of different parts never merge."""
        out, offset = [], 0
        for part in parts:
            ids = part.episode_id - (part.episode_id.min() if len(part) else 0) + offset
            out.append((part, ids))
            offset = int(ids.max()) + 1 if len(part) else offset
        merged = {f.name: np.concatenate([getattr(p, f.name) for p, _ in out]) for f in fields(Transitions)}
        merged["episode_id"] = np.concatenate([ids for _, ids in out])
        return Transitions(**merged)

    def split_episodes(self, holdout_fraction: float, seed: int) -> tuple["Transitions", "Transitions"]:
        """(train, held-out) split by whole episodes, so held-out failures are unseen."""
        episodes = np.unique(self.episode_id)
        rng = np.random.default_rng(seed)
        n_hold = max(1, int(round(holdout_fraction * len(episodes)))) if len(episodes) > 1 else 0
        held = rng.choice(episodes, size=n_hold, replace=False)
        mask = np.isin(self.episode_id, held)
        return self.select(~mask), self.select(mask)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """A uniform random minibatch as float tensors."""
        idx = rng.integers(0, len(self), batch_size)
        return {f.name: torch.as_tensor(getattr(self, f.name)[idx]).float() for f in fields(self)}

    def sequences(self, idx: np.ndarray, horizon: int) -> dict[str, torch.Tensor]:
        """Sub-trajectories of `horizon` steps starting at `idx`, as [horizon, B, ...] tensors.

        A step is valid while it stays in the start's episode and no earlier step
        of the sequence terminated; `mask` marks the valid steps. Sequences that
        run into an episode's end are kept (masked) rather than dropped: the last
        steps before a failure are exactly what the constraint head must learn.
        """
        n = len(self)
        steps = np.minimum(idx[None, :] + np.arange(horizon)[:, None], n - 1)  # [H, B]
        same_episode = self.episode_id[steps] == self.episode_id[idx][None, :]
        ended_before = np.zeros_like(same_episode)
        ended = self.done[steps] | self.timeout[steps]
        ended_before[1:] = np.cumsum(ended[:-1], axis=0) > 0
        in_range = (idx[None, :] + np.arange(horizon)[:, None]) < n
        mask = same_episode & ~ended_before & in_range
        out = {name: torch.as_tensor(getattr(self, name)[steps]).float()
               for name in ("obs", "action", "reward", "cost", "done", "next_obs")}
        out["mask"] = torch.as_tensor(mask).float()
        return out


def steps_to_failure(data: Transitions) -> np.ndarray:
    """For each step, how many steps until the episode's failure (cost = 1); inf if none follows.

    0 means this very step's (s, a) is a failure. Used to label failure-
    preceding states for eps_safe calibration and to count shield misses.
    """
    out = np.full(len(data), np.inf)
    next_fail = np.inf
    for i in range(len(data) - 1, -1, -1):
        if i == len(data) - 1 or data.episode_id[i] != data.episode_id[i + 1]:
            next_fail = np.inf
        next_fail = 0.0 if data.cost[i] > 0 else next_fail + 1
        out[i] = next_fail
    return out

"""Behaviour cloning of Gaussian policies (Uni-O4 stage 1, and the recovery policy's start).

Maximum likelihood of the demonstrated actions under pi(a|s): this fits the
mean and the state-independent std together, so the cloned policy starts
online PPO with an exploration noise matched to the demonstrator's spread.
An ensemble member k sees its own bootstrap resample of the demos (Uni-O4
trains K BC policies to cover the behaviour's modes and to pick from later).
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm import trange

from ..config import BCConfig, NetworkConfig
from ..models import GaussianPolicy
from .transitions import Transitions


def make_policy(obs_dim: int, action_dim: int, net: NetworkConfig, data: Transitions | None = None) -> GaussianPolicy:
    """A fresh policy; its observation normaliser is fitted on `data` if given."""
    policy = GaussianPolicy(obs_dim, action_dim, net.policy_hidden, net.init_log_std, net.min_log_std, net.max_log_std)
    if data is not None:
        policy.normalizer.fit(data.obs)
    return policy


def train_bc(policy: GaussianPolicy, data: Transitions, cfg: BCConfig, rng: np.random.Generator,
             desc: str = "bc", progress: bool = True) -> list[float]:
    """Negative log-likelihood descent; returns the loss every 100 steps."""
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate)
    losses = []
    for step in trange(cfg.steps, desc=desc, disable=not progress, leave=False):
        batch = data.sample(cfg.batch_size, rng)
        loss = -policy.log_prob(batch["obs"], batch["action"]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == cfg.steps - 1:
            losses.append(loss.item())
    return losses


def bc_ensemble(data: Transitions, cfg: BCConfig, net: NetworkConfig, seed: int,
                desc: str = "bc", progress: bool = True) -> tuple[list[GaussianPolicy], list[list[float]]]:
    """K policies, each cloned on a bootstrap resample of `data` (the full set when K = 1)."""
    policies, curves = [], []
    for k in range(cfg.ensemble_size):
        rng = np.random.default_rng(seed + 1000 * k)
        torch.manual_seed(seed + 1000 * k)
        part = data if cfg.ensemble_size == 1 else data.select(rng.integers(0, len(data), len(data)))
        policy = make_policy(data.obs_dim, data.action_dim, net, data)
        curves.append(train_bc(policy, part, cfg, rng, desc=f"{desc}[{k}]", progress=progress))
        policies.append(policy)
    return policies, curves

"""Gaussian policy, state-value and Q networks (the task and recovery policies' parts).

Actions live in [-1, 1]^A. The policy's mean is tanh-bounded; its standard
deviation is state-independent and learned (as in CleanRL's continuous PPO),
so PPO's log-probabilities are those of a plain diagonal Gaussian and the robot
side can add exploration noise from one exported log-std vector. Samples may
leave [-1, 1]; the environment (or the robot's clipping) clips what it
executes, and PPO keeps the unclipped sample for its ratio.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.distributions import Normal

from .layers import Normalizer, mlp


class GaussianPolicy(nn.Module):
    """pi(a|s) = N(tanh(mu(s)), diag(exp(log_std))^2)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: Sequence[int] = (256, 256),
                 init_log_std: float = -1.0, min_log_std: float = -5.0, max_log_std: float = 0.5):
        super().__init__()
        self.init_kwargs = dict(obs_dim=obs_dim, action_dim=action_dim, hidden=tuple(hidden), init_log_std=init_log_std,
                                min_log_std=min_log_std, max_log_std=max_log_std)  # saved in checkpoints
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.min_log_std, self.max_log_std = min_log_std, max_log_std
        self.normalizer = Normalizer(obs_dim)
        self.net = mlp(obs_dim, hidden, action_dim, layer_norm=False)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(init_log_std)))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """The mean action (what the shield executes deterministically and rolls out in C_H)."""
        return torch.tanh(self.net(self.normalizer(obs)))

    def std(self) -> torch.Tensor:
        return self.log_std.clamp(self.min_log_std, self.max_log_std).exp()

    def distribution(self, obs: torch.Tensor) -> Normal:
        mean = self(obs)
        return Normal(mean, self.std().expand_as(mean))

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Sum of per-dimension log-densities, shape [B]."""
        return self.distribution(obs).log_prob(action).sum(-1)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        return self(obs) if deterministic else self.distribution(obs).sample()


class ValueNetwork(nn.Module):
    """V(s): the offline expectile value, then the online PPO critic."""

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.init_kwargs = dict(obs_dim=obs_dim, hidden=tuple(hidden))
        self.normalizer = Normalizer(obs_dim)
        self.net = mlp(obs_dim, hidden, 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalizer(obs)).squeeze(-1)


class QNetwork(nn.Module):
    """Twin Q(s, a); `forward` returns the minimum of the two (clipped double-Q)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.init_kwargs = dict(obs_dim=obs_dim, action_dim=action_dim, hidden=tuple(hidden))
        self.normalizer = Normalizer(obs_dim)
        self.q1 = mlp(obs_dim + action_dim, hidden, 1)
        self.q2 = mlp(obs_dim + action_dim, hidden, 1)

    def both(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([self.normalizer(obs), action], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.min(*self.both(obs, action))

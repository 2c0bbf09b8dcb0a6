"""The latent world model with a constraint head, read like TD-MPC2's.

One module, one line per head in the constructor, one short method per
prediction. Losses live in `agents/world_model_agent.py`; the H-step risk C_H
that rolls the task policy out in this model lives in `risk.py`.

Unlike TD-MPC2 the policy being rolled out is the *task policy on
observations* (it is also what the robot executes), so the model decodes each
predicted latent back to an observation for the policy to act on. The decoded
observations also give the shield its predicted end-effector path (obs[0:3]).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .layers import Normalizer, mlp


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


class WorldModel(nn.Module):
    """encode(s) -> z; next(z, a) -> z'; reward, constraint (failure logit), value, decode."""

    def __init__(self, obs_dim: int, action_dim: int, latent_dim: int = 64, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.init_kwargs = dict(obs_dim=obs_dim, action_dim=action_dim, latent_dim=latent_dim, hidden=tuple(hidden))
        self.obs_dim, self.action_dim, self.latent_dim = obs_dim, action_dim, latent_dim
        self.normalizer = Normalizer(obs_dim)  # raw obs in, raw obs out
        self._encoder = mlp(obs_dim, hidden, latent_dim)  # s -> z
        self._dynamics = mlp(latent_dim + action_dim, hidden, latent_dim)  # (z, a) -> z'
        self._reward = mlp(latent_dim + action_dim, hidden, 1)  # (z, a) -> r
        self._constraint = mlp(latent_dim + action_dim, hidden, 1)  # (z, a) -> logit P(C(s, a) = 1)
        self._value = mlp(latent_dim, hidden, 1)  # z -> symlog V(s)
        self._decoder = mlp(latent_dim, hidden, obs_dim)  # z -> s (normalised)
        # Every latent (encoded or predicted) is layer-normalised without affine
        # parameters, so a rollout cannot drift to a different scale than the
        # encoder's and the consistency loss cannot be won by shrinking z.
        self._latent_norm = nn.LayerNorm(latent_dim, elementwise_affine=False)

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        return self._latent_norm(self._encoder(self.normalizer(obs)))

    def next(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self._latent_norm(self._dynamics(torch.cat([z, a], -1)))

    def reward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self._reward(torch.cat([z, a], -1)).squeeze(-1)

    def constraint(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Logit of the per-step failure probability P(C(s, a) = 1)."""
        return self._constraint(torch.cat([z, a], -1)).squeeze(-1)

    def failure_prob(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.constraint(z, a))

    def V(self, z: torch.Tensor) -> torch.Tensor:
        """The state value in reward units."""
        return symexp(self.V_symlog(z))

    def V_symlog(self, z: torch.Tensor) -> torch.Tensor:
        """symlog(V): returns reach the hundreds in Meta-World; regressing them in symlog
        space (as TD-MPC2/DreamerV3 do) keeps the value loss from drowning the other heads."""
        return self._value(z).squeeze(-1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The raw observation a latent stands for."""
        return self.normalizer.inverse(self._decoder(z))

    def decode_normalized(self, z: torch.Tensor) -> torch.Tensor:
        return self._decoder(z)

    def __repr__(self) -> str:
        heads = ["_encoder", "_dynamics", "_reward", "_constraint", "_value", "_decoder"]
        lines = [f"{name[1:]}: {sum(p.numel() for p in getattr(self, name).parameters()):,} parameters"
                 for name in heads]
        total = sum(p.numel() for p in self.parameters())
        return (f"WorldModel(obs={self.obs_dim}, action={self.action_dim}, latent={self.latent_dim})\n  "
                + "\n  ".join(lines) + f"\n  total: {total:,} parameters")

"""Building blocks shared by every network: an MLP and a frozen observation normaliser."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, layer_norm: bool = True) -> nn.Sequential:
    """Linear → (LayerNorm) → Mish per hidden layer, then a plain linear output.

    LayerNorm keeps the world model's latent rollouts and the critics well
    conditioned (as in TD-MPC2); it exports to ONNX opset 17 as one node.
    """
    layers: list[nn.Module] = []
    dim = in_dim
    for width in hidden:
        layers += [nn.Linear(dim, width)]
        if layer_norm:
            layers += [nn.LayerNorm(width)]
        layers += [nn.Mish()]
        dim = width
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


class Normalizer(nn.Module):
    """(x - mean) / std with statistics fixed from the offline data.

    Kept inside each network (as buffers) so checkpoints and ONNX graphs take
    raw observations: the robot side never needs to know the statistics.
    `min_std` stops constant observation dimensions (Meta-World pads unused
    object slots with zeros) from blowing up.
    """

    def __init__(self, dim: int, min_std: float = 1e-2):
        super().__init__()
        self.min_std = min_std
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: np.ndarray | torch.Tensor) -> "Normalizer":
        x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp_min(self.min_std))
        return self

    def copy_from(self, other: "Normalizer") -> "Normalizer":
        self.load_state_dict(other.state_dict())
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging of a target network: target <- (1 - tau) target + tau source."""
    for p, p_target in zip(source.parameters(), target.parameters()):
        p_target.lerp_(p, tau)

"""PPO-Lagrangian (Ray, Achiam & Amodei 2019, "Benchmarking Safe Exploration in Deep RL").

The constrained problem max_pi J_r(pi) s.t. J_c(pi) <= d becomes the saddle
point of the Lagrangian L(pi, lambda) = J_r - lambda (J_c - d), lambda >= 0:

    lambda <- max(0, lambda + lr_lambda (J_c - d))             once per update, J_c measured
    A      =  (A_r - lambda A_c) / (1 + lambda)                 per sample
    loss   = -E[ min(r A, clip(r, 1 - eps, 1 + eps) A) ]         PPO's clipped surrogate on A

Dividing by (1 + lambda) keeps the advantage's scale (and so the step size)
from growing with lambda. lambda rises while the policy fails more often than
d allows and falls (to 0) once it fails less, so the cost term acts only when
needed: the baseline's known weakness is the lag, the failures it pays for
while lambda catches up - exactly what FARL's shield avoids.
"""
from __future__ import annotations

import torch

from ..config import PPOConfig, SafeRLConfig
from ..models import GaussianPolicy, ValueNetwork
from .constrained import ClippedConstrainedLearner, ConstrainedBatch, clipped_surrogate


def lagrange_step(multiplier: float, episode_cost: float, cost_limit: float, learning_rate: float) -> float:
    """Projected gradient ascent on lambda: max(0, lambda + lr (J_c - d))."""
    return max(0.0, multiplier + learning_rate * (episode_cost - cost_limit))


def lagrangian_advantage(adv_r: torch.Tensor, adv_c: torch.Tensor, multiplier: float) -> torch.Tensor:
    """(A_r - lambda A_c) / (1 + lambda)."""
    return (adv_r - multiplier * adv_c) / (1.0 + multiplier)


class PPOLagrangianLearner(ClippedConstrainedLearner):
    name = "ppo-lag"

    def __init__(self, policy: GaussianPolicy, value: ValueNetwork, ppo: PPOConfig, safe: SafeRLConfig):
        super().__init__(policy, value, ppo, safe)
        self.multiplier = safe.lagrangian_init

    def before_policy_step(self, episode_cost: float) -> dict[str, float]:
        self.multiplier = lagrange_step(self.multiplier, episode_cost, self.safe.cost_limit,
                                        self.safe.lagrangian_learning_rate)
        return {"lagrange_multiplier": self.multiplier}

    def policy_loss(self, ratio: torch.Tensor, mb: torch.Tensor, batch: ConstrainedBatch,
                    episode_cost: float) -> torch.Tensor:
        advantage = lagrangian_advantage(batch.adv_r[mb], batch.adv_c[mb], self.multiplier)
        return -clipped_surrogate(ratio, advantage, self.ppo.clip_coef).mean()

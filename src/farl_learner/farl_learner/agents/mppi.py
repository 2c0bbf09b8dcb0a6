"""The "MPPI" ablation: where FARL's shield triggers, plan the action in the world model.

FARL executes the learned recovery policy's action when C_H > eps_safe. This
ablation keeps the trigger and replaces pi_rec by model-predictive path
integral control (Williams et al. 2017) in the same world model, scoring each
sampled action sequence by its predicted reward less its predicted failures:

    score(a_0..a_{T-1}) = sum_k gamma^k (r(z_k, a_k) - w P_fail(z_k, a_k)) + gamma^T V(z_T)
    weights             = softmax(score / (temperature * std(score)))
    mean                <- sum_i weights_i a^(i)               (mppi_iterations times)

and executes the first action of the final mean. Sampling starts around the
task policy's own plan (its mean actions through the model), so the planner
searches for the nearest safe change to what the task policy wanted, and the
unperturbed mean is always one of the samples. Dividing the temperature by the
scores' spread makes it scale-free across tasks whose rewards differ by 10x.
All triggered states are planned in one batch ([M states x K samples]).
"""
from __future__ import annotations

import torch

from ..config import AblationConfig
from ..models import GaussianPolicy, WorldModel
from ..shield import Shield


@torch.no_grad()
def policy_plan(world_model: WorldModel, policy: GaussianPolicy, obs: torch.Tensor, horizon: int) -> torch.Tensor:
    """[M, T, A] the policy's mean actions along its own world-model rollout (the sampling's centre)."""
    z, s, plan = world_model.encode(obs), obs, []
    for _ in range(horizon):
        a = policy(s)
        plan.append(a)
        z = world_model.next(z, a)
        s = world_model.decode(z)
    return torch.stack(plan, 1)


@torch.no_grad()
def sequence_scores(world_model: WorldModel, z0: torch.Tensor, actions: torch.Tensor, gamma: float,
                    risk_weight: float) -> torch.Tensor:
    """[M, K] predicted discounted reward minus weighted failure probability of [M, K, T, A] sequences."""
    m, k, t, a = actions.shape
    z = z0[:, None].expand(m, k, z0.shape[-1]).reshape(m * k, -1)
    flat = actions.reshape(m * k, t, a)
    score = torch.zeros(m * k)
    for step in range(t):
        act = flat[:, step]
        score += gamma**step * (world_model.reward(z, act) - risk_weight * world_model.failure_prob(z, act))
        z = world_model.next(z, act)
    score += gamma**t * world_model.V(z)
    return score.view(m, k)


@torch.no_grad()
def mppi_first_actions(world_model: WorldModel, policy: GaussianPolicy, obs: torch.Tensor, cfg: AblationConfig,
                       gamma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """[M, A] the first action of the MPPI plan from each of M observations."""
    mean = policy_plan(world_model, policy, obs, cfg.mppi_horizon)
    z0 = world_model.encode(obs)
    for _ in range(cfg.mppi_iterations):
        noise = torch.randn((*mean.shape[:1], cfg.mppi_samples, *mean.shape[1:]), generator=generator)
        noise[:, 0] = 0.0  # the current mean is always a candidate
        samples = (mean[:, None] + cfg.mppi_noise_std * noise).clamp(-1.0, 1.0)
        scores = sequence_scores(world_model, z0, samples, gamma, cfg.mppi_risk_weight)
        spread = scores.std(dim=1, keepdim=True).clamp_min(1e-6)
        weights = torch.softmax((scores - scores.max(dim=1, keepdim=True).values) / (cfg.mppi_temperature * spread),
                                dim=1)
        mean = (weights[:, :, None, None] * samples).sum(1)
    return mean[:, 0]


class MPPIShield(Shield):
    """FARL's trigger (C_H > eps_safe); the action executed then is planned by MPPI, not pi_rec's."""

    def __init__(self, task_policy: GaussianPolicy, recovery_policy: GaussianPolicy, world_model: WorldModel,
                 horizon: int, gamma_risk: float, epsilon_safe: float, cfg: AblationConfig, gamma: float,
                 seed: int = 0):
        super().__init__(task_policy, recovery_policy, world_model, horizon, gamma_risk, epsilon_safe)
        self.cfg, self.gamma = cfg, gamma
        self.generator = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def recovery_batch(self, obs: torch.Tensor) -> torch.Tensor:
        return mppi_first_actions(self.world_model, self.task_policy, obs, self.cfg, self.gamma, self.generator)

"""P3O, Penalized Proximal Policy Optimization (Zhang et al. 2022, IJCAI).

The constraint J_c(pi) <= d enters as an exact (ReLU) penalty on PPO's
clipped surrogates of both advantages:

    L_r = E[ min(r A_r, clip(r) A_r) ]            reward surrogate, maximised
    L_c = E[ max(r A_c, clip(r) A_c) ]            cost surrogate, pessimistic (the larger cost)
    loss = -L_r + kappa * max(0, L_c + (J_c - d))

With kappa large enough the penalty is exact: the minimiser satisfies the
constraint whenever a feasible policy exists. While J_c is well under d the
ReLU is flat and the update is plain PPO; once the estimated cost of the new
policy, J_c + L_c, crosses d, every step also pushes the cost surrogate down.
The paper writes (1 - gamma)(J_c - d) for discounted cost returns; with J_c
measured per episode (undiscounted, as d is) the factor is 1, as in OmniSafe.
"""
from __future__ import annotations

import torch

from .constrained import ClippedConstrainedLearner, ConstrainedBatch, clipped_surrogate


def p3o_loss(ratio: torch.Tensor, adv_r: torch.Tensor, adv_c: torch.Tensor, episode_cost: float, cost_limit: float,
             kappa: float, clip: float) -> torch.Tensor:
    """-L_r + kappa * relu(L_c + J_c - d)."""
    reward_surrogate = clipped_surrogate(ratio, adv_r, clip).mean()
    cost_surrogate = torch.max(ratio * adv_c, ratio.clamp(1 - clip, 1 + clip) * adv_c).mean()
    return -reward_surrogate + kappa * torch.relu(cost_surrogate + (episode_cost - cost_limit))


class P3OLearner(ClippedConstrainedLearner):
    name = "p3o"

    def policy_loss(self, ratio: torch.Tensor, mb: torch.Tensor, batch: ConstrainedBatch,
                    episode_cost: float) -> torch.Tensor:
        return p3o_loss(ratio, batch.adv_r[mb], batch.adv_c[mb], episode_cost, self.safe.cost_limit,
                        self.safe.p3o_kappa, self.ppo.clip_coef)

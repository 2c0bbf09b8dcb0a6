"""What the safe-RL baselines (PPO-Lagrangian, P3O, CPO) share: a cost critic, cost advantages, J_c.

They fine-tune the same pretrained task policy as Uni-O4 and FARL, in the same
online loop, without a shield. Each sees the binary failure cost c_t (1 at a
failure step) and keeps the expected episode cost J_c = E[sum_t c_t] under the
limit d (`safe_rl.cost_limit`). The three differ only in how the policy step
trades the reward advantage A_r against the cost advantage A_c; this module
holds everything else, so each method's module is its update rule alone:

    batch: GAE of the reward (V, pretrained) and of the cost (V_c, new) over the rollout
    J_c:   the mean cost of the episodes that ended since the last update
    step:  the method's policy update (subclass)
    fit:   V and V_c regress on their returns (minibatches, `ppo.update_epochs` passes)

As in OmniSafe, reward advantages are standardised over the batch, cost
advantages only centred: their scale carries how much cost an action adds,
which the constraint terms compare with d.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..config import PPOConfig, SafeRLConfig
from ..models import GaussianPolicy, ValueNetwork
from .ppo import Rollout, compute_gae


@dataclass
class ConstrainedBatch:
    """One rollout's tensors with both advantages and both returns."""

    obs: torch.Tensor
    action: torch.Tensor
    logprob: torch.Tensor  # log pi_old(a|s) at collection
    adv_r: torch.Tensor  # standardised
    ret_r: torch.Tensor
    adv_c: torch.Tensor  # centred
    ret_c: torch.Tensor

    def __len__(self) -> int:
        return len(self.obs)


def clipped_surrogate(ratio: torch.Tensor, advantage: torch.Tensor, clip: float) -> torch.Tensor:
    """PPO's pessimistic objective per sample, min(r A, clip(r) A): to be maximised for a reward."""
    return torch.min(ratio * advantage, ratio.clamp(1 - clip, 1 + clip) * advantage)


def make_cost_critic(value: ValueNetwork) -> ValueNetwork:
    """V_c with the reward critic's shape and observation statistics, predicting 0 until it learns.

    Copying V keeps its normaliser (fixed from the offline data); the output layer starts at zero
    because the pretrained policy's cost returns are unknown, and zero is the right guess for most states.
    """
    critic = copy.deepcopy(value).requires_grad_(True)
    last = [m for m in critic.modules() if isinstance(m, nn.Linear)][-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return critic


class ConstrainedLearner:
    """Base of the safe-RL baselines; a subclass implements `policy_step(batch, episode_cost)`."""

    name = "constrained"

    def __init__(self, policy: GaussianPolicy, value: ValueNetwork, ppo: PPOConfig, safe: SafeRLConfig):
        self.policy, self.value, self.ppo, self.safe = policy, value, ppo, safe
        self.cost_value = make_cost_critic(value)
        self.critic_optimizer = torch.optim.Adam(
            [{"params": value.parameters(), "lr": ppo.learning_rate},
             {"params": self.cost_value.parameters(), "lr": safe.cost_value_learning_rate}], eps=1e-5)
        self.episode_cost = 0.0  # J_c estimate: mean cost of the episodes that ended since the last update

    def update(self, rollout: Rollout, episode_costs: Sequence[float]) -> dict[str, float]:
        """One update on a finished rollout; `episode_costs`: costs of the episodes that ended in it."""
        if len(episode_costs):
            self.episode_cost = float(np.mean(episode_costs))
        batch = self.prepare(rollout)
        stats = self.policy_step(batch, self.episode_cost)
        stats.update(self.fit_critics(batch))
        stats.update(episode_cost=self.episode_cost, cost_limit=self.safe.cost_limit)
        return stats

    def policy_step(self, batch: ConstrainedBatch, episode_cost: float) -> dict[str, float]:
        raise NotImplementedError

    @torch.no_grad()
    def prepare(self, rollout: Rollout) -> ConstrainedBatch:
        b = rollout.tensors(next(self.policy.parameters()).device)
        alive = 1 - b["terminated"]
        adv_r, ret_r = compute_gae(b["reward"], self.value(b["obs"]), self.value(b["next_obs"]) * alive,
                                   b["episode_end"], self.ppo.gamma, self.ppo.gae_lambda)
        adv_c, ret_c = compute_gae(b["cost"], self.cost_value(b["obs"]), self.cost_value(b["next_obs"]) * alive,
                                   b["episode_end"], self.safe.cost_gamma, self.safe.cost_gae_lambda)
        adv_r = (adv_r - adv_r.mean()) / (adv_r.std() + 1e-8) if len(adv_r) > 1 else adv_r
        adv_c = adv_c - adv_c.mean()
        return ConstrainedBatch(b["obs"], b["action"], b["logprob"], adv_r, ret_r, adv_c, ret_c)

    def minibatches(self, n: int):
        """`ppo.update_epochs` passes of `ppo.num_minibatches` shuffled index sets; yields (epoch, indices)."""
        size = max(1, n // self.ppo.num_minibatches)
        for epoch in range(self.ppo.update_epochs):
            order = torch.randperm(n)
            for start in range(0, n, size):
                yield epoch, order[start:start + size]

    def fit_critics(self, batch: ConstrainedBatch) -> dict[str, float]:
        params = list(self.value.parameters()) + list(self.cost_value.parameters())
        for _, mb in self.minibatches(len(batch)):
            v_loss = 0.5 * ((self.value(batch.obs[mb]) - batch.ret_r[mb]) ** 2).mean()
            c_loss = 0.5 * ((self.cost_value(batch.obs[mb]) - batch.ret_c[mb]) ** 2).mean()
            self.critic_optimizer.zero_grad()
            (v_loss + c_loss).backward()
            nn.utils.clip_grad_norm_(params, self.ppo.max_grad_norm)
            self.critic_optimizer.step()
        return {"value_loss": float(v_loss.detach()), "cost_value_loss": float(c_loss.detach())}


class ClippedConstrainedLearner(ConstrainedLearner):
    """PPO-Lagrangian and P3O: minibatch descent on a clipped-surrogate loss with a cost term.

    A subclass gives `policy_loss(ratio, batch_indices, batch, episode_cost)`; the loop, the policy's own
    Adam and the KL early stop are PPO's (`ppo.*`).
    """

    def __init__(self, policy: GaussianPolicy, value: ValueNetwork, ppo: PPOConfig, safe: SafeRLConfig):
        super().__init__(policy, value, ppo, safe)
        self.policy_optimizer = torch.optim.Adam(policy.parameters(), lr=ppo.learning_rate, eps=1e-5)

    def before_policy_step(self, episode_cost: float) -> dict[str, float]:
        return {}

    def policy_loss(self, ratio: torch.Tensor, mb: torch.Tensor, batch: ConstrainedBatch,
                    episode_cost: float) -> torch.Tensor:
        raise NotImplementedError

    def policy_step(self, batch: ConstrainedBatch, episode_cost: float) -> dict[str, float]:
        stats = self.before_policy_step(episode_cost)
        approx_kl = torch.zeros(())
        stopped_epoch = self.ppo.update_epochs
        for epoch, mb in self.minibatches(len(batch)):
            if epoch >= stopped_epoch:
                break
            logratio = self.policy.log_prob(batch.obs[mb], batch.action[mb]) - batch.logprob[mb]
            ratio = logratio.exp()
            loss = self.policy_loss(ratio, mb, batch, episode_cost)
            self.policy_optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.policy.parameters(), self.ppo.max_grad_norm)
            self.policy_optimizer.step()
            with torch.no_grad():
                approx_kl = ((ratio - 1) - logratio).mean()
            if self.ppo.target_kl > 0 and approx_kl > self.ppo.target_kl:
                stopped_epoch = epoch + 1  # finish nothing more after this epoch's KL blew up
        stats.update(policy_loss=float(loss.detach()), approx_kl=float(approx_kl.detach()))
        return stats

"""PPO for the task policy (Uni-O4's online stage; FARL runs it on shielded transitions).

CleanRL's `ppo_continuous_action.py` update, for one environment: GAE over the
collected rollout, then `update_epochs` passes of minibatch clipped-surrogate
+ value + entropy descent, stopping early on a KL limit.

Bootstrapping is explicit per step: `next_value = V(s') * (1 - terminated)`.
A time-limit cut still bootstraps from V(s'), a failure or success does not,
and `episode_end` stops the GAE recursion at either.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..config import PPOConfig
from ..models import GaussianPolicy, ValueNetwork


@dataclass
class Rollout:
    """Transitions collected since the last update (as executed, shield included)."""

    obs: list = field(default_factory=list)
    action: list = field(default_factory=list)
    logprob: list = field(default_factory=list)  # log pi_task(action | obs) when collected
    reward: list = field(default_factory=list)
    next_obs: list = field(default_factory=list)
    terminated: list = field(default_factory=list)
    episode_end: list = field(default_factory=list)
    pg_weight: list = field(default_factory=list)
    """Weight of the step in the policy-gradient term: 1 for pi_task's own actions, 0 where an operator drove
    the step, `PPOConfig.recovery_pg_weight` where the shield executed pi_rec's action."""
    cost: list = field(default_factory=list)
    """The step's failure cost (1 at a failure): only the safe-RL baselines learn from it."""

    FIELDS = ("obs", "action", "logprob", "reward", "next_obs", "terminated", "episode_end", "pg_weight", "cost")

    def add(self, obs, action, logprob, reward, next_obs, terminated, episode_end, pg_weight: float = 1.0,
            cost: float = 0.0) -> None:
        for name, value in zip(self.FIELDS, (obs, action, logprob, reward, next_obs, terminated, episode_end,
                                             float(pg_weight), float(cost))):
            getattr(self, name).append(value)

    def __len__(self) -> int:
        return len(self.obs)

    def tensors(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        return {name: torch.as_tensor(np.asarray(getattr(self, name), dtype=np.float32), device=device)
                for name in self.FIELDS}


def compute_gae(reward: torch.Tensor, value: torch.Tensor, next_value: torch.Tensor, episode_end: torch.Tensor,
                gamma: float, gae_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns) by generalised advantage estimation over one ordered rollout.

    next_value must already be zero where the episode terminated.
    """
    advantages = torch.zeros_like(reward)
    last = reward.new_zeros(())
    for t in reversed(range(len(reward))):
        delta = reward[t] + gamma * next_value[t] - value[t]
        last = delta + gamma * gae_lambda * (1 - episode_end[t]) * last
        advantages[t] = last
    return advantages, advantages + value


def make_optimizer(policy: GaussianPolicy, value: ValueNetwork, cfg: PPOConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(list(policy.parameters()) + list(value.parameters()), lr=cfg.learning_rate, eps=1e-5)


def ppo_update(policy: GaussianPolicy, value: ValueNetwork, optimizer: torch.optim.Optimizer,
               rollout: Rollout, cfg: PPOConfig) -> dict[str, float]:
    """One PPO update on a finished rollout, on the networks' device; returns the last minibatch's statistics."""
    device = next(policy.parameters()).device
    b = rollout.tensors(device)
    with torch.no_grad():
        values = value(b["obs"])
        next_values = value(b["next_obs"]) * (1 - b["terminated"])
        advantages, returns = compute_gae(b["reward"], values, next_values, b["episode_end"], cfg.gamma, cfg.gae_lambda)

    n = len(rollout)
    minibatch_size = max(1, n // cfg.num_minibatches)
    params = list(policy.parameters()) + list(value.parameters())
    stats: dict[str, float] = {}
    clipfracs = []
    for _epoch in range(cfg.update_epochs):
        order = torch.randperm(n, device=device)
        for start in range(0, n, minibatch_size):
            mb = order[start:start + minibatch_size]
            dist = policy.distribution(b["obs"][mb])
            newlogprob = dist.log_prob(b["action"][mb]).sum(-1)
            entropy = dist.entropy().sum(-1)
            logratio = newlogprob - b["logprob"][mb]
            ratio = logratio.exp()
            with torch.no_grad():
                approx_kl = ((ratio - 1) - logratio).mean()  # http://joschu.net/blog/kl-approx.html
                clipfracs.append(float(((ratio - 1.0).abs() > cfg.clip_coef).float().mean()))

            mb_adv = advantages[mb]
            if cfg.norm_adv and len(mb) > 1:
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)

            # Policy loss: clipped surrogate, weighted per step. An operator's action during an
            # intervention is not a sample of pi (weight 0); a recovery action the shield executed is
            # weighted by `recovery_pg_weight`. Every step still gives the value function its real
            # return and its advantage to the steps around it.
            surrogate = torch.max(-mb_adv * ratio, -mb_adv * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef))
            weight = b["pg_weight"][mb]
            pg_loss = (surrogate * weight).sum() / weight.sum().clamp(min=1.0)
            # Value loss.
            v_loss = 0.5 * ((value(b["obs"][mb]) - returns[mb]) ** 2).mean()
            entropy_loss = entropy.mean()
            loss = pg_loss - cfg.ent_coef * entropy_loss + cfg.vf_coef * v_loss

            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
        if cfg.target_kl > 0 and approx_kl > cfg.target_kl:
            break

    explained = 1 - float(torch.var(returns - values) / (torch.var(returns) + 1e-8))
    stats.update(policy_loss=pg_loss.item(), value_loss=v_loss.item(), entropy=entropy_loss.item(),
                 approx_kl=approx_kl.item(), clipfrac=float(np.mean(clipfracs)), explained_variance=explained,
                 off_policy_steps=int((b["pg_weight"] < 1.0).sum().item()))
    return stats


class PPOLearner:
    """Uni-O4 and FARL: the plain PPO update behind the learner interface the online loop calls
    (`update(rollout, episode_costs)`, shared with the safe-RL baselines); the costs are not used."""

    name = "ppo"

    def __init__(self, policy: GaussianPolicy, value: ValueNetwork, ppo: PPOConfig):
        self.policy, self.value, self.ppo = policy, value, ppo
        self.optimizer = make_optimizer(policy, value, ppo)

    def update(self, rollout: Rollout, episode_costs: Sequence[float]) -> dict[str, float]:
        return ppo_update(self.policy, self.value, self.optimizer, rollout, self.ppo)

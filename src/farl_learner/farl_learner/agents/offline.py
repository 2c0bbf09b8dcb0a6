"""Offline critic and clipped offline policy improvement (Uni-O4 stage 2).

Critic (choice; Uni-O4 fits its Q by SARSA-style evaluation of the behaviour):
IQL-style in-sample learning on the dataset only, never querying actions the
data lacks -

    V(s)    <- expectile_tau of Q_target(s, a) over dataset actions a
    Q(s, a) <- r - cost_penalty * c + gamma * (1 - done) * V(s')

tau = 0.5 is exactly the behaviour's value (Uni-O4's SARSA); tau > 0.5 leans
toward the best in-support actions. Done marks failure and success alike, so
a failure that ends an episode already costs the reward it forgoes.

Improvement: PPO's clipped surrogate with the current "old" policy as the
behaviour - actions a ~ pi_old(s) for dataset states s, advantage
A = Q(s, a) - mean_j Q(s, a_j) with a_j ~ pi_old(s) - and pi_old replaced by
the improved policy every `old_policy_interval` steps (Uni-O4 gates that
replacement with off-policy evaluation; we replace on a fixed schedule and
select the ensemble member afterwards by its critic value, see uni_o4.py).
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from tqdm import trange

from ..config import NetworkConfig, OfflineConfig
from ..models import GaussianPolicy, QNetwork, ValueNetwork
from ..models.layers import soft_update
from .transitions import Transitions


def expectile_loss(diff: torch.Tensor, tau: float) -> torch.Tensor:
    """E[|tau - 1(diff < 0)| * diff^2]: the asymmetric L2 whose minimiser is the tau-expectile."""
    weight = torch.where(diff > 0, tau, 1 - tau)
    return (weight * diff**2).mean()


def fit_critics(data: Transitions, cfg: OfflineConfig, net: NetworkConfig, seed: int,
                desc: str = "critic", progress: bool = True) -> tuple[QNetwork, ValueNetwork, list[dict]]:
    """Expectile V and twin Q on the dataset; returns (Q, V, loss curve)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    q, v = QNetwork(data.obs_dim, data.action_dim, net.value_hidden), ValueNetwork(data.obs_dim, net.value_hidden)
    q.normalizer.fit(data.obs)
    v.normalizer.fit(data.obs)
    q_target = copy.deepcopy(q).requires_grad_(False)
    q_opt = torch.optim.Adam(q.parameters(), lr=cfg.critic_lr)
    v_opt = torch.optim.Adam(v.parameters(), lr=cfg.critic_lr)
    curve = []
    for step in trange(cfg.critic_steps, desc=desc, disable=not progress, leave=False):
        b = data.sample(cfg.batch_size, rng)
        # V: expectile of the target Q over dataset actions.
        with torch.no_grad():
            q_data = q_target(b["obs"], b["action"])
        v_loss = expectile_loss(q_data - v(b["obs"]), cfg.expectile)
        v_opt.zero_grad()
        v_loss.backward()
        v_opt.step()
        # Q: one-step TD toward r + gamma V(s'), no bootstrap through terminations.
        with torch.no_grad():
            reward = b["reward"] - cfg.cost_penalty * b["cost"]
            target = reward + cfg.discount * (1 - b["done"]) * v(b["next_obs"])
        q1, q2 = q.both(b["obs"], b["action"])
        q_loss = ((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean()
        q_opt.zero_grad()
        q_loss.backward()
        q_opt.step()
        soft_update(q_target, q, cfg.target_tau)
        if step % 100 == 0 or step == cfg.critic_steps - 1:
            curve.append({"step": step, "q_loss": q_loss.item(), "v_loss": v_loss.item()})
    return q.requires_grad_(False), v, curve


def improve_policy(policy: GaussianPolicy, q: QNetwork, data: Transitions, cfg: OfflineConfig, seed: int,
                   desc: str = "improve", progress: bool = True) -> list[dict]:
    """Clipped-surrogate ascent on Q-advantages of actions drawn from pi_old (in place)."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    old = copy.deepcopy(policy).requires_grad_(False)
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.policy_lr)
    curve = []
    for step in trange(cfg.policy_steps, desc=desc, disable=not progress, leave=False):
        obs = data.sample(cfg.batch_size, rng)["obs"]
        with torch.no_grad():
            dist_old = old.distribution(obs)
            actions = dist_old.sample((cfg.action_samples,))  # [N, B, A]
            q_values = q(obs.expand(cfg.action_samples, -1, -1), actions.clamp(-1, 1))  # [N, B]
            advantage = q_values[0] - q_values.mean(0)
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
            logp_old = dist_old.log_prob(actions[0]).sum(-1)
        ratio = (policy.log_prob(obs, actions[0]) - logp_old).exp()
        surrogate = torch.min(ratio * advantage, ratio.clamp(1 - cfg.clip_ratio, 1 + cfg.clip_ratio) * advantage)
        loss = -surrogate.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (step + 1) % cfg.old_policy_interval == 0:
            old.load_state_dict(policy.state_dict())
        if step % 100 == 0 or step == cfg.policy_steps - 1:
            curve.append({"step": step, "loss": loss.item(), "ratio_dev": (ratio - 1).abs().mean().item()})
    return curve


@torch.no_grad()
def policy_value(policy: GaussianPolicy, q: QNetwork, obs: np.ndarray) -> float:
    """Mean Q(s, mu(s)) over states: the critic's (cheap, biased) estimate of a policy's worth."""
    obs_t = torch.as_tensor(obs, dtype=torch.float32)
    return float(q(obs_t, policy(obs_t)).mean())

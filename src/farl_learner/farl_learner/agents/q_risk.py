"""The "simple critic" ablation: a Recovery-RL Q_risk in place of the world model's H-step rollout.

Recovery RL (Thananjeyan et al. 2021) learns, offline, the discounted
probability that acting a now and following the task policy afterwards leads
to a failure:

    Q_risk(s, a) = c(s, a) + (1 - c(s, a)) gamma_safe (1 - done) Q_risk(s', pi(s'))

by bootstrapped regression (binary cross-entropy on a sigmoid output, target
network with Polyak averaging). The ablation shield triggers where
Q_risk(s, a_task) > eps_risk. It sees the same failure data as FARL's world
model (the pretrained folder's failure_data.npz, same held-out split), and its
threshold comes from the same calibration rule (risk.calibrate_epsilon: miss
at most target_miss_rate of the held-out failure-preceding states, within the
needless-trigger cap). What differs is only how risk is predicted: one
critic's number instead of a rollout of the task policy through a model.

Failures are rare, so, as in the world model's training, a quarter of every
batch is drawn from the steps at most H before a failure; the Bellman target
is unchanged by the sampling, only how often those states are revisited.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from ..config import AblationConfig, RiskConfig
from ..models import GaussianPolicy
from ..models.layers import Normalizer, mlp, soft_update
from ..risk import calibrate_epsilon, tradeoff_curve
from ..shield import Shield
from .transitions import Transitions, steps_to_failure

FAILURE_BATCH_FRACTION = 0.25


class QRisk(torch.nn.Module):
    """Q_risk(s, a) in [0, 1]: `logit` for training, `forward` for the shield."""

    def __init__(self, obs_dim: int, action_dim: int, hidden=(256, 256)):
        super().__init__()
        self.normalizer = Normalizer(obs_dim)
        self.net = mlp(obs_dim + action_dim, hidden, 1)

    def logit(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([self.normalizer(obs), action], -1)).squeeze(-1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logit(obs, action))


def train_q_risk(data: Transitions, policy: GaussianPolicy, cfg: AblationConfig, horizon: int, seed: int,
                 hidden=(256, 256)) -> tuple[QRisk, list[float]]:
    """Q_risk from offline transitions, bootstrapping through the (frozen) task policy's mean at s'."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    q = QRisk(data.obs_dim, data.action_dim, hidden)
    q.normalizer.fit(data.obs)
    target = copy.deepcopy(q).requires_grad_(False)
    optimizer = torch.optim.Adam(q.parameters(), lr=cfg.q_risk_learning_rate)
    obs, action = torch.as_tensor(data.obs), torch.as_tensor(np.clip(data.action, -1, 1))
    next_obs = torch.as_tensor(data.next_obs)
    cost = torch.as_tensor(data.cost, dtype=torch.float32)
    terminal = torch.as_tensor(data.done, dtype=torch.float32)
    near = np.flatnonzero(steps_to_failure(data) <= horizon)
    n_near = int(round(cfg.q_risk_batch_size * FAILURE_BATCH_FRACTION)) if len(near) else 0
    with torch.no_grad():
        next_action = policy(next_obs)  # the frozen task policy's mean: what it would do next
    losses = []
    for step in range(cfg.q_risk_steps):
        idx = np.concatenate([rng.integers(0, len(data), cfg.q_risk_batch_size - n_near),
                              rng.choice(near, n_near) if n_near else np.zeros(0, dtype=np.int64)])
        idx_t = torch.as_tensor(idx)
        with torch.no_grad():
            bootstrap = target(next_obs[idx_t], next_action[idx_t])
            label = cost[idx_t] + (1 - cost[idx_t]) * cfg.q_risk_gamma * (1 - terminal[idx_t]) * bootstrap
        loss = F.binary_cross_entropy_with_logits(q.logit(obs[idx_t], action[idx_t]), label)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        soft_update(target, q, cfg.q_risk_tau)
        if step % 500 == 0 or step == cfg.q_risk_steps - 1:
            losses.append(loss.item())
    return q.eval().requires_grad_(False), losses


@torch.no_grad()
def calibrate_q_risk(q: QRisk, holdout: Transitions, risk_cfg: RiskConfig) -> dict:
    """eps_risk by the rule that sets FARL's eps_safe, on the same held-out failure episodes."""
    risk = q(torch.as_tensor(holdout.obs), torch.as_tensor(np.clip(holdout.action, -1, 1))).numpy().astype(np.float64)
    to_failure = steps_to_failure(holdout)
    result = calibrate_epsilon(risk, to_failure, risk_cfg.horizon, risk_cfg.target_miss_rate,
                               risk_cfg.max_needless_trigger_rate)
    return {**result.to_dict(), "recall": 1.0 - result.miss_rate,
            "tradeoff": tradeoff_curve(risk, to_failure, risk_cfg.horizon)}


class QRiskShield(Shield):
    """FARL's shield with Q_risk(s, a_task) > eps_risk as the trigger; pi_rec still acts.

    Only `decide_batch` (the online loop's) applies: there is no predicted hand path to show.
    """

    def __init__(self, task_policy: GaussianPolicy, recovery_policy: GaussianPolicy, q_risk: QRisk,
                 epsilon_risk: float, horizon: int):
        super().__init__(task_policy, recovery_policy, world_model=None, horizon=horizon, gamma_risk=1.0,
                         epsilon_safe=epsilon_risk)
        self.q_risk = q_risk

    @torch.no_grad()
    def risk_batch(self, obs: torch.Tensor, proposed: torch.Tensor) -> torch.Tensor:
        return self.q_risk(obs, proposed)

    def decide(self, obs, task_action):
        raise NotImplementedError("the Q_risk ablation shield decides in batches (decide_batch) only")

"""Training the world model on task + failure data (the losses; the model is models/world_model.py).

Multi-objective loss over short latent rollouts, as in TD-MPC2: encode s_t,
roll the dynamics forward through the *dataset's* actions for `horizon` steps,
and at every step k (weighted rho^k, masked past the episode's end) ask

    consistency  ||next(z_k, a_k) - sg(encode(s_{k+1}))||^2
    next obs     ||decode(next(z_k, a_k)) - s_{k+1}||^2      (normalised units)
    reward       (reward(z_k, a_k) - r_k)^2
    constraint   BCE(constraint(z_k, a_k), c_k), failure steps weighted by pos_weight
    value        (V(z_k) - sg(r_k + gamma (1 - done_k) V(encode(s_{k+1}))))^2

Training through the same multi-step rollouts C_H later runs keeps the
constraint head accurate on *predicted* latents, not only encoded ones.
Failures are rare (a few per episode of failure data, none in task demos), so
the BCE weights them by #safe / #failure unless configured.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import trange

from ..config import WorldModelConfig
from ..models import WorldModel
from .transitions import Transitions


def make_world_model(data: Transitions, cfg: WorldModelConfig) -> WorldModel:
    wm = WorldModel(data.obs_dim, data.action_dim, cfg.latent_dim, cfg.hidden)
    wm.normalizer.fit(np.concatenate([data.obs, data.next_obs]))
    return wm


def constraint_pos_weight(data: Transitions, cfg: WorldModelConfig) -> float:
    if cfg.constraint_pos_weight > 0:
        return cfg.constraint_pos_weight
    n_fail = float(data.cost.sum())
    return float(min(100.0, (len(data) - n_fail) / max(n_fail, 1.0)))


def world_model_loss(wm: WorldModel, seq: dict[str, torch.Tensor], cfg: WorldModelConfig,
                     pos_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted multi-step loss of one batch of sequences ([T, B, ...] tensors)."""
    horizon = seq["obs"].shape[0]
    with torch.no_grad():
        next_z_target = wm.encode(seq["next_obs"])  # [T, B, L]
        next_obs_target = wm.normalizer(seq["next_obs"])
        value_target = seq["reward"] + cfg.discount * (1 - seq["done"]) * wm.V(next_z_target)
    pos_weight_t = torch.tensor(pos_weight)
    terms = {name: torch.zeros(()) for name in ("consistency", "next_obs", "reward", "constraint", "value")}
    z = wm.encode(seq["obs"][0])
    total_weight = torch.zeros(())
    for k in range(horizon):
        a, w = seq["action"][k], cfg.rho**k * seq["mask"][k]  # [B]
        terms["reward"] += (w * (wm.reward(z, a) - seq["reward"][k]) ** 2).sum()
        bce = F.binary_cross_entropy_with_logits(wm.constraint(z, a), seq["cost"][k],
                                                 pos_weight=pos_weight_t, reduction="none")
        terms["constraint"] += (w * bce).sum()
        terms["value"] += (w * (wm.V(z) - value_target[k]) ** 2).sum()
        z = wm.next(z, a)
        terms["consistency"] += (w * ((z - next_z_target[k]) ** 2).mean(-1)).sum()
        terms["next_obs"] += (w * ((wm.decode_normalized(z) - next_obs_target[k]) ** 2).mean(-1)).sum()
        total_weight = total_weight + w.sum()
    terms = {name: value / total_weight.clamp_min(1.0) for name, value in terms.items()}
    loss = (cfg.consistency_coef * terms["consistency"] + cfg.decoder_coef * terms["next_obs"]
            + cfg.reward_coef * terms["reward"] + cfg.constraint_coef * terms["constraint"]
            + cfg.value_coef * terms["value"])
    return loss, {name: value.item() for name, value in terms.items()}


def train_world_model(data: Transitions, cfg: WorldModelConfig, seed: int,
                      progress: bool = True) -> tuple[WorldModel, list[dict]]:
    """Fit a fresh world model to `data` (task + failure transitions); returns it and a loss curve."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    wm = make_world_model(data, cfg)
    optimizer = torch.optim.Adam(wm.parameters(), lr=cfg.learning_rate)
    pos_weight = constraint_pos_weight(data, cfg)
    curve = []
    for step in trange(cfg.steps, desc="world model", disable=not progress, leave=False):
        seq = data.sequences(rng.integers(0, len(data), cfg.batch_size), cfg.horizon)
        loss, terms = world_model_loss(wm, seq, cfg, pos_weight)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(wm.parameters(), cfg.grad_clip)
        optimizer.step()
        if step % 100 == 0 or step == cfg.steps - 1:
            curve.append({"step": step, "loss": loss.item(), **terms})
    return wm.requires_grad_(False).eval(), curve


@torch.no_grad()
def constraint_recall(wm: WorldModel, data: Transitions) -> dict[str, float]:
    """One-step constraint head quality on encoded states: recall on failures, false-alarm rate on safe steps."""
    obs, act = torch.as_tensor(data.obs), torch.as_tensor(data.action)
    p = wm.failure_prob(wm.encode(obs), act).numpy()
    fail = data.cost > 0
    return {"recall@0.5": float((p[fail] > 0.5).mean()) if fail.any() else float("nan"),
            "false_alarm@0.5": float((p[~fail] > 0.5).mean()) if (~fail).any() else float("nan")}

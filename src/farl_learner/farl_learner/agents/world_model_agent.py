"""Training the world model on task + failure data (the losses; the model is models/world_model.py).

Multi-objective loss over short latent rollouts, as in TD-MPC2: encode s_t,
roll the dynamics forward through the *dataset's* actions for `horizon` steps,
and at every step k (weighted rho^k, masked past the episode's end) ask

    consistency  ||next(z_k, a_k) - sg(encode(s_{k+1}))||^2
    next obs     ||decode(next(z_k, a_k)) - s_{k+1}||^2      (normalised units)
    reward       (reward(z_k, a_k) - r_k)^2
    constraint   BCE(constraint(z_k, a_k), c_k), failure steps weighted by pos_weight
    value        (symlog V(z_k) - symlog sg(r_k + gamma (1 - done_k) V(encode(s_{k+1}))))^2

Training through the same multi-step rollouts C_H later runs keeps the
constraint head accurate on *predicted* latents, not only encoded ones.

Failures are rare (one step per failed episode: 66 in 20k FailureBench
transitions on a measured run), so twice over: a `failure_fraction` of every
batch's sequences start at most `horizon` steps before a failure (so each
batch sees failures and the steps leading to them), and the BCE weights
failure steps by #safe / #failure as they occur in such batches. The head's
sigmoid is then a class-weighted score rather than a calibrated probability;
C_H sums these scores, and eps_safe is calibrated on that same scale.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import trange

from ..config import WorldModelConfig
from ..models import WorldModel
from ..models.world_model import symlog
from .transitions import Transitions


def make_world_model(data: Transitions, cfg: WorldModelConfig) -> WorldModel:
    wm = WorldModel(data.obs_dim, data.action_dim, cfg.latent_dim, cfg.hidden)
    wm.normalizer.fit(np.concatenate([data.obs, data.next_obs]))
    return wm


def sample_starts(data: Transitions, cfg: WorldModelConfig, rng: np.random.Generator,
                  failure_steps: np.ndarray) -> np.ndarray:
    """Sequence start indices: uniform, except a failure_fraction that ends in a failure within the window."""
    n_fail = int(round(cfg.failure_fraction * cfg.batch_size)) if len(failure_steps) else 0
    uniform = rng.integers(0, len(data), cfg.batch_size - n_fail)
    ends = rng.choice(failure_steps, n_fail)
    starts = np.maximum(ends - rng.integers(0, cfg.horizon, n_fail), 0)
    starts = np.where(data.episode_id[starts] == data.episode_id[ends], starts, ends)  # stay in the episode
    return np.concatenate([uniform, starts])


def constraint_pos_weight(data: Transitions, cfg: WorldModelConfig, rng: np.random.Generator,
                          failure_steps: np.ndarray) -> float:
    """#safe / #failure steps among the valid steps of sampled batches (capped at 100), unless configured."""
    if cfg.constraint_pos_weight > 0:
        return cfg.constraint_pos_weight
    fail = safe = 0.0
    for _ in range(20):
        seq = data.sequences(sample_starts(data, cfg, rng, failure_steps), cfg.horizon)
        fail += float((seq["cost"] * seq["mask"]).sum())
        safe += float(((1 - seq["cost"]) * seq["mask"]).sum())
    return float(min(100.0, safe / max(fail, 1.0)))


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
        terms["value"] += (w * (wm.V_symlog(z) - symlog(value_target[k])) ** 2).sum()
        z = wm.next(z, a)
        terms["consistency"] += (w * ((z - next_z_target[k]) ** 2).mean(-1)).sum()
        terms["next_obs"] += (w * ((wm.decode_normalized(z) - next_obs_target[k]) ** 2).mean(-1)).sum()
        total_weight = total_weight + w.sum()
    terms = {name: value / total_weight.clamp_min(1.0) for name, value in terms.items()}
    loss = (cfg.consistency_coef * terms["consistency"] + cfg.decoder_coef * terms["next_obs"]
            + cfg.reward_coef * terms["reward"] + cfg.constraint_coef * terms["constraint"]
            + cfg.value_coef * terms["value"])
    return loss, {name: value.item() for name, value in terms.items()}


def train_world_model(data: Transitions, cfg: WorldModelConfig, seed: int, progress: bool = True,
                      init: WorldModel | None = None, steps: int | None = None) -> tuple[WorldModel, list[dict]]:
    """Fit a world model to `data` (task + failure transitions); returns it and a loss curve.

    A fresh model for `cfg.steps` steps, or `init` trained on (a copy, its
    observation normaliser kept) for `steps` more: the refinement round that
    adds the states the shielded system itself visits (commands/pretrain_twin.py).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if init is None:
        wm = make_world_model(data, cfg)
    else:
        import copy

        wm = copy.deepcopy(init).requires_grad_(True).train()
    optimizer = torch.optim.Adam(wm.parameters(), lr=cfg.learning_rate)
    failure_steps = np.flatnonzero(data.cost > 0)
    pos_weight = constraint_pos_weight(data, cfg, rng, failure_steps)
    curve = []
    total = cfg.steps if steps is None else steps
    for step in trange(total, desc="world model", disable=not progress, leave=False):
        seq = data.sequences(sample_starts(data, cfg, rng, failure_steps), cfg.horizon)
        loss, terms = world_model_loss(wm, seq, cfg, pos_weight)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(wm.parameters(), cfg.grad_clip)
        optimizer.step()
        if step % 100 == 0 or step == total - 1:
            curve.append({"step": step, "loss": loss.item(), "pos_weight": pos_weight, **terms})
    return wm.requires_grad_(False).eval(), curve


@torch.no_grad()
def constraint_recall(wm: WorldModel, data: Transitions) -> dict[str, float]:
    """One-step constraint head quality on encoded states: recall on failures, false-alarm rate on safe steps."""
    obs, act = torch.as_tensor(data.obs), torch.as_tensor(data.action)
    p = wm.failure_prob(wm.encode(obs), act).numpy()
    fail = data.cost > 0
    return {"recall@0.5": float((p[fail] > 0.5).mean()) if fail.any() else float("nan"),
            "false_alarm@0.5": float((p[~fail] > 0.5).mean()) if (~fail).any() else float("nan")}

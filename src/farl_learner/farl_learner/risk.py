"""The H-step risk C_H of the task policy, and how eps_safe is chosen.

`h_step_risk` is the paper's equation, line for line:

    C_H^pi(s_t) = sum_{k=0..H} gamma_risk^k * P(C(s_{t+k}, a_{t+k}) = 1),   a_{t+k} ~ pi

rolled out in the learned world model. Choice (the paper is open here): the
rollout uses the policy's *mean* action, not samples. One deterministic
rollout is cheap, has no sampling variance for the threshold to fight, and is
what the exported ONNX graph (one unrolled loop, no random ops) can compute on
the robot. The first action may be given: the shield passes the sampled
a_task it is about to execute, so C_H judges the action actually proposed.

The sum is the paper's plain discounted sum of per-step probabilities (no
survival weighting), so C_H lies in [0, sum_k gamma_risk^k] and is not itself
a probability; eps_safe lives on that scale and is calibrated on held-out data.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np
import torch


class RiskModel(Protocol):
    def encode(self, obs: torch.Tensor) -> torch.Tensor: ...
    def next(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor: ...
    def failure_prob(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor: ...
    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


def h_step_risk(world_model: RiskModel, policy: torch.nn.Module, obs: torch.Tensor, horizon: int,
                gamma_risk: float, first_action: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """C_H for a batch of observations [B, obs_dim].

    Returns (risk [B], per-step failure probabilities [B, H+1], predicted
    observations s_t..s_{t+H} [B, H+1, obs_dim]; s_t is the given obs and
    [..., 0:3] is the predicted end-effector path).
    """
    z, s = world_model.encode(obs), obs
    risk = torch.zeros(obs.shape[0], dtype=obs.dtype)
    probs, states = [], [s]
    for k in range(horizon + 1):
        a = first_action if (k == 0 and first_action is not None) else policy(s)  # a_{t+k} = mean of pi
        p = world_model.failure_prob(z, a)  # P(C(s_{t+k}, a_{t+k}) = 1)
        risk = risk + gamma_risk**k * p
        probs.append(p)
        if k < horizon:
            z = world_model.next(z, a)
            s = world_model.decode(z)
            states.append(s)
    return risk, torch.stack(probs, 1), torch.stack(states, 1)


@torch.no_grad()
def risk_of_states(world_model: RiskModel, policy: torch.nn.Module, obs: np.ndarray, horizon: int,
                   gamma_risk: float, first_actions: np.ndarray | None = None, batch_size: int = 4096) -> np.ndarray:
    """C_H for many observations (numpy in, numpy out), in batches.

    Calibration passes the dataset's own actions as `first_actions`, as the
    shield passes the action it is about to execute: the held-out labels
    (failure within H steps) follow from the action that was actually taken.
    """
    out = []
    for i in range(0, len(obs), batch_size):
        batch = torch.as_tensor(obs[i:i + batch_size], dtype=torch.float32)
        first = None if first_actions is None else torch.as_tensor(first_actions[i:i + batch_size], dtype=torch.float32)
        out.append(h_step_risk(world_model, policy, batch, horizon, gamma_risk, first_action=first)[0].numpy())
    return np.concatenate(out) if out else np.zeros(0)


@dataclass
class Calibration:
    """eps_safe and how it does on held-out states."""

    epsilon_safe: float
    target_miss_rate: float
    miss_rate: float
    """Fraction of failure-preceding states (failure within H steps) with C_H <= eps: the shield would not act."""
    needless_trigger_rate: float
    """Fraction of states with no failure within H steps whose C_H > eps: the shield would act needlessly."""
    n_failure_preceding: int
    n_safe: int
    limited_by: str = "given"
    """Which target set eps: "miss_rate", "needless_trigger_rate", or "given" (a fixed eps)."""

    def to_dict(self) -> dict:
        return asdict(self)


def calibrate_epsilon(risk: np.ndarray, steps_to_failure: np.ndarray, horizon: int, target_miss_rate: float,
                      max_needless_trigger_rate: float = 1.0) -> Calibration:
    """The largest eps_safe whose held-out miss rate is at most the target, unless it triggers too often.

    A state is failure-preceding when its episode fails within H steps (the
    window C_H looks at). With the failure-preceding risks sorted ascending and
    m = floor(target * n) misses allowed, any eps below the (m+1)-th smallest
    risk misses at most m of them; eps is put half-way between the m-th and
    (m+1)-th so it is not fitted to the edge of one sample.

    A world model that cannot tell some failure-preceding states from safe ones
    drives that eps toward 0, and a shield that swaps in pi_rec almost always
    leaves the task policy nothing to learn from. So eps is raised, if needed,
    until at most `max_needless_trigger_rate` of the safe held-out states
    trigger; `limited_by` says which of the two targets set eps.
    """
    positive = steps_to_failure <= horizon
    pos = np.sort(risk[positive])
    if len(pos) == 0:
        raise ValueError("no failure-preceding states in the calibration data")
    m = int(np.floor(target_miss_rate * len(pos)))
    upper = pos[m]
    lower = pos[m - 1] if m > 0 else 0.0
    epsilon = float((lower + upper) / 2) if lower < upper else float(np.nextafter(upper, -np.inf))
    epsilon, limited_by = max(epsilon, 0.0), "miss_rate"
    neg = np.sort(risk[~positive])
    if len(neg) and np.mean(neg > epsilon) > max_needless_trigger_rate:
        allowed = int(np.floor(max_needless_trigger_rate * len(neg)))  # safe states that may still trigger
        epsilon, limited_by = float(neg[len(neg) - allowed - 1]), "needless_trigger_rate"
    result = evaluate_epsilon(risk, steps_to_failure, horizon, epsilon, target_miss_rate)
    result.limited_by = limited_by
    return result


def evaluate_epsilon(risk: np.ndarray, steps_to_failure: np.ndarray, horizon: int, epsilon: float,
                     target_miss_rate: float = float("nan")) -> Calibration:
    """Misses and needless triggers of a given eps_safe on labelled states."""
    positive = steps_to_failure <= horizon
    pos, neg = risk[positive], risk[~positive]
    return Calibration(
        epsilon_safe=float(epsilon),
        target_miss_rate=float(target_miss_rate),
        miss_rate=float(np.mean(pos <= epsilon)) if len(pos) else float("nan"),
        needless_trigger_rate=float(np.mean(neg > epsilon)) if len(neg) else float("nan"),
        n_failure_preceding=int(len(pos)),
        n_safe=int(len(neg)),
    )


def tradeoff_curve(risk: np.ndarray, steps_to_failure: np.ndarray, horizon: int,
                   points: int = 200) -> dict[str, list[float]]:
    """Recall of failure-preceding states against needless triggers on safe states, over eps_safe.

    One point per candidate eps (observed risks at evenly spaced quantiles, so
    the curve is dense where the risks are): the whole trade-off the
    calibration picks one point of.
    """
    positive = steps_to_failure <= horizon
    pos, neg = risk[positive], risk[~positive]
    eps = np.unique(np.quantile(risk, np.linspace(0.0, 1.0, points), method="lower")) if len(risk) else np.zeros(0)
    eps = np.concatenate([[-np.inf], eps])
    recall = [float(np.mean(pos > e)) if len(pos) else float("nan") for e in eps]
    needless = [float(np.mean(neg > e)) if len(neg) else float("nan") for e in eps]
    return {"epsilon": [float(e) for e in eps[1:]], "recall": recall[1:], "needless_trigger_rate": needless[1:]}


def warning_lead_times(risk: np.ndarray, steps_to_failure: np.ndarray, episode_id: np.ndarray,
                       epsilon: float) -> np.ndarray:
    """Per failure episode: ticks between the first warning (C_H > eps) and the failure.

    Only warnings in the stretch leading to the failure count (from the last
    step C_H was at or below eps before the run of warnings that reaches the
    failure, or the first warning when several runs precede it): this is how
    long before the failure a shield at this eps would have started acting and
    kept acting. 0 = warned at the failing step only; -1 = never warned.
    """
    leads = []
    for e in np.unique(episode_id):
        idx = np.flatnonzero(episode_id == e)
        fail = idx[steps_to_failure[idx] == 0]
        if len(fail) == 0:
            continue
        f = fail[0]
        before = idx[idx <= f]
        warned = risk[before] > epsilon
        if not warned.any():
            leads.append(-1)
            continue
        # The run of consecutive warnings that ends closest to the failure.
        last = np.flatnonzero(warned)[-1]
        start = last
        while start > 0 and warned[start - 1]:
            start -= 1
        leads.append(int(len(before) - 1 - start))
    return np.asarray(leads, dtype=int)

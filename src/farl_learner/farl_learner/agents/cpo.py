"""CPO, Constrained Policy Optimization (Achiam, Held, Tamar & Abbeel 2017).

A trust-region step, like TRPO's, that also keeps the linearised cost under
the limit. With x = theta' - theta, the reward gradient g = grad E[r A_r], the
cost gradient b = grad E[r A_c], c = J_c - d and H the Fisher matrix (the
Hessian of the mean KL between the old and the new policy):

    max_x  g.x    s.t.   1/2 x' H x <= delta,    b.x + c <= 0

Its dual (derived in `cpo_direction`, with q = g'H^-1 g, r = g'H^-1 b,
s = b'H^-1 b) is one-dimensional in lambda, so it is solved in closed form:

    x* = H^-1 (g - nu* b) / lambda*,    nu* = max(0, (lambda* c + r) / s)

Two cases skip the dual:
  - the constraint plane lies outside the trust region and c < 0: the plain
    TRPO step sqrt(2 delta / q) H^-1 g;
  - no x in the trust region satisfies the linearised constraint (c > 0 and
    c^2 / s > 2 delta): the recovery step -sqrt(2 delta / s) H^-1 b, the
    steepest cost descent the trust region allows.
H^-1 v comes from conjugate gradient on Fisher-vector products, never from H.
A backtracking line search then checks the true KL, the reward surrogate and
the cost surrogate, and keeps the old policy if no fraction of the step passes.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch.distributions import kl_divergence

from ..config import PPOConfig, SafeRLConfig
from ..models import GaussianPolicy, ValueNetwork
from .constrained import ConstrainedBatch, ConstrainedLearner

TRPO, CONSTRAINED, RECOVERY = "trpo", "constrained", "recovery"
_TINY = 1e-10


def conjugate_gradient(matrix_vector: Callable[[torch.Tensor], torch.Tensor], rhs: torch.Tensor, iters: int,
                       tolerance: float = 1e-10) -> torch.Tensor:
    """x with A x = rhs for a symmetric positive definite A given only as x -> A x."""
    x = torch.zeros_like(rhs)
    residual = rhs.clone()
    direction = rhs.clone()
    rr = residual @ residual
    for _ in range(iters):
        if rr < tolerance:
            break
        a_dir = matrix_vector(direction)
        alpha = rr / (direction @ a_dir + _TINY)
        x += alpha * direction
        residual -= alpha * a_dir
        rr_new = residual @ residual
        direction = residual + (rr_new / rr) * direction
        rr = rr_new
    return x


def cpo_direction(g: torch.Tensor, b: torch.Tensor, c: float, max_kl: float,
                  solve: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, str]:
    """The step x of max g.x s.t. 1/2 x'Hx <= delta, b.x + c <= 0, and which case gave it.

    `solve(v)` returns H^-1 v. Derivation (the dual of the problem above):
    L = g.x - lambda (1/2 x'Hx - delta) - nu (b.x + c) gives x = H^-1 (g - nu b) / lambda and the dual
    D(lambda, nu) = (q - 2 nu r + nu^2 s) / (2 lambda) + lambda delta - nu c, minimised over lambda, nu >= 0.
    For fixed lambda, nu*(lambda) = max(0, (lambda c + r) / s). Where nu* > 0, D reduces to
    D_a(lambda) = A / (2 lambda) + lambda B / 2 - r c / s with A = q - r^2/s, B = 2 delta - c^2/s
    (minimiser sqrt(A / B)); where nu* = 0 it is D_b(lambda) = q / (2 lambda) + lambda delta (minimiser
    sqrt(q / (2 delta))). The regions meet at lambda = -r/c; each minimiser is projected onto its region
    and the one with the lower dual value wins.
    """
    h_inv_g = solve(g)
    q = float(g @ h_inv_g)
    trpo_step = math.sqrt(2 * max_kl / max(q, _TINY)) * h_inv_g
    h_inv_b = solve(b)
    s = float(b @ h_inv_b)
    if s < _TINY:  # no cost gradient in this batch: nothing to trade against
        return trpo_step, TRPO
    r = float(g @ h_inv_b)
    a_coef = max(q - r * r / s, _TINY)
    b_coef = 2 * max_kl - c * c / s
    if b_coef <= 0:
        if c <= 0:  # the constraint plane does not cut the trust region: unconstrained step
            return trpo_step, TRPO
        return -math.sqrt(2 * max_kl / s) * h_inv_b, RECOVERY  # infeasible: reduce the cost only

    c = c if abs(c) > _TINY else -_TINY  # exactly on the limit counts as (just) feasible
    boundary = -r / c
    if c > 0:  # nu* > 0 above the boundary
        region_a, region_b = (max(boundary, 0.0), math.inf), (0.0, max(boundary, 0.0))
    else:  # c < 0: nu* > 0 below the boundary
        region_a, region_b = (0.0, max(boundary, 0.0)), (max(boundary, 0.0), math.inf)

    def dual_a(lam: float) -> float:
        return a_coef / (2 * lam) + lam * b_coef / 2 - r * c / s

    def dual_b(lam: float) -> float:
        return q / (2 * lam) + lam * max_kl

    candidates = []
    for minimiser, (low, high), dual in ((math.sqrt(a_coef / b_coef), region_a, dual_a),
                                         (math.sqrt(q / (2 * max_kl)), region_b, dual_b)):
        if high > low:
            lam = min(max(minimiser, low), high)
            lam = max(lam, _TINY)
            if math.isfinite(lam):
                candidates.append((dual(lam), lam))
    _, lam = min(candidates)
    nu = max(0.0, (lam * c + r) / s)
    return (h_inv_g - nu * h_inv_b) / lam, (CONSTRAINED if nu > 0 else TRPO)


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


class CPOLearner(ConstrainedLearner):
    name = "cpo"

    def __init__(self, policy: GaussianPolicy, value: ValueNetwork, ppo: PPOConfig, safe: SafeRLConfig):
        super().__init__(policy, value, ppo, safe)
        self.params = [p for p in policy.parameters() if p.requires_grad]

    def _set_flat(self, flat: torch.Tensor) -> None:
        offset = 0
        with torch.no_grad():
            for p in self.params:
                p.copy_(flat[offset:offset + p.numel()].view_as(p))
                offset += p.numel()

    def policy_step(self, batch: ConstrainedBatch, episode_cost: float) -> dict[str, float]:
        safe = self.safe
        with torch.no_grad():
            old = self.policy.distribution(batch.obs)
            old = type(old)(old.loc.clone(), old.scale.clone())

        def surrogates() -> tuple[torch.Tensor, torch.Tensor]:
            ratio = (self.policy.log_prob(batch.obs, batch.action) - batch.logprob).exp()
            return (ratio * batch.adv_r).mean(), (ratio * batch.adv_c).mean()

        def mean_kl() -> torch.Tensor:
            return kl_divergence(old, self.policy.distribution(batch.obs)).sum(-1).mean()

        def fisher_vector(v: torch.Tensor) -> torch.Tensor:
            grad_kl = _flat(torch.autograd.grad(mean_kl(), self.params, create_graph=True))
            return _flat(torch.autograd.grad(grad_kl @ v, self.params)) + safe.cpo_cg_damping * v

        reward_surrogate, cost_surrogate = surrogates()
        g = _flat(torch.autograd.grad(reward_surrogate, self.params, retain_graph=True))
        b = _flat(torch.autograd.grad(cost_surrogate, self.params))
        c = episode_cost - safe.cost_limit
        step, case = cpo_direction(g, b, c, safe.cpo_max_kl,
                                   lambda v: conjugate_gradient(fisher_vector, v, safe.cpo_cg_iters))

        start = _flat(self.params).detach().clone()
        reward_before, cost_before = float(reward_surrogate.detach()), float(cost_surrogate.detach())
        accepted, fraction = False, 1.0
        for _ in range(safe.cpo_backtrack_steps):
            self._set_flat(start + fraction * step)
            with torch.no_grad():
                reward_after, cost_after = (float(v) for v in surrogates())
                kl = float(mean_kl())
            if case == RECOVERY:
                improved = cost_after < cost_before
            else:
                improved = reward_after >= reward_before and cost_after - cost_before <= max(-c, 0.0)
            if math.isfinite(kl) and kl <= safe.cpo_max_kl and improved:
                accepted = True
                break
            fraction *= safe.cpo_backtrack_coef
        if not accepted:
            self._set_flat(start)
            fraction, kl = 0.0, 0.0
        return {"cpo_case": {TRPO: 0.0, CONSTRAINED: 1.0, RECOVERY: 2.0}[case], "step_fraction": fraction,
                "approx_kl": kl, "reward_surrogate_gain": (reward_after - reward_before) if accepted else 0.0}

"""The Uni-O4 task policy: BC ensemble -> offline clipped improvement -> online PPO.

Stages 1 and 2 run here, offline, on the task demos; stage 3 (online PPO) is
the loop in `training/online.py` with the shield off, using the PPO update in
`agents/ppo.py` - the very same loop FARL runs with the shield on.

Ensemble choice (Uni-O4 keeps K policies through offline improvement and goes
online with one): every member is improved against the same offline critic
and the member with the highest critic value mean_s Q(s, mu_k(s)) on the demo
states goes online. The expectile V(s) of that critic initialises PPO's value
network, so online fine-tuning starts with a critic instead of from zero.

With an `evaluate` callable (a simulator is at hand: the training twins),
rollouts decide instead of the critic, as Uni-O4's off-policy evaluation gate
is meant to: each member is scored after BC and after improvement, a member
keeps its improvement only if the score did not drop (measured on the FR3
twin: the clipped improvement against a critic fitted on 20 demos turned
members that succeeded into ones that did not), and the best-scoring version
of the best member goes online. The critic values are still recorded.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

from ..config import FarlConfig
from ..models import GaussianPolicy, ValueNetwork
from .bc import bc_ensemble
from .offline import fit_critics, improve_policy, policy_value
from .transitions import Transitions


@dataclass
class PretrainedPolicy:
    policy: GaussianPolicy
    value: ValueNetwork
    metrics: dict = field(default_factory=dict)


Evaluate = Callable[[GaussianPolicy], dict]
"""policy -> {"score": float (higher is better), ...anything worth recording}."""


def pretrain_task_policy(demos: Transitions, cfg: FarlConfig, progress: bool = True,
                         evaluate: Evaluate | None = None) -> PretrainedPolicy:
    """Uni-O4 stages 1-2 on the task demos; returns the chosen member and its value net.

    Without `evaluate` the member with the highest critic value goes online;
    with it, the best-scoring member, each with or without its offline
    improvement, whichever scored higher (see the module doc).
    """
    members, bc_curves = bc_ensemble(demos, cfg.bc, cfg.networks, cfg.seed, desc="task bc", progress=progress)
    q, v, critic_curve = fit_critics(demos, cfg.offline, cfg.networks, cfg.seed, desc="task critic", progress=progress)
    bc_values = [policy_value(p, q, demos.obs) for p in members]
    bc_scores = [evaluate(p) for p in members] if evaluate is not None else None
    cloned = [copy.deepcopy(p) for p in members]
    improve_curves = [improve_policy(p, q, demos, cfg.offline, cfg.seed + k, desc=f"task improve[{k}]", progress=progress)
                      for k, p in enumerate(members)]
    values = [policy_value(p, q, demos.obs) for p in members]
    metrics = {
        "bc_final_nll": [c[-1] for c in bc_curves],
        "critic_final": critic_curve[-1],
        "member_value_after_bc": bc_values,
        "member_value_after_improvement": values,
        "improvement_final": [c[-1] for c in improve_curves],
    }
    if evaluate is None:
        best = max(range(len(members)), key=values.__getitem__)
        metrics.update(chosen_member=best, selected_by="critic value")
        return PretrainedPolicy(members[best], v, metrics)
    improved_scores = [evaluate(p) for p in members]
    kept = [improved_scores[k]["score"] >= bc_scores[k]["score"] for k in range(len(members))]
    final = [members[k] if kept[k] else cloned[k] for k in range(len(members))]
    final_scores = [improved_scores[k] if kept[k] else bc_scores[k] for k in range(len(members))]
    best = max(range(len(members)), key=lambda k: final_scores[k]["score"])
    metrics.update(chosen_member=best, selected_by="evaluation rollouts", member_eval_after_bc=bc_scores,
                   member_eval_after_improvement=improved_scores, improvement_kept=kept,
                   chosen_eval=final_scores[best])
    return PretrainedPolicy(final[best], v, metrics)

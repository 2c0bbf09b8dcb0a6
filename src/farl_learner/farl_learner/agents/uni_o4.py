"""The Uni-O4 task policy: BC ensemble -> offline clipped improvement -> online PPO.

Stages 1 and 2 run here, offline, on the task demos; stage 3 (online PPO) is
the loop in `training/online.py` with the shield off, using the PPO update in
`agents/ppo.py` - the very same loop FARL runs with the shield on.

Ensemble choice (Uni-O4 keeps K policies through offline improvement and goes
online with one): every member is improved against the same offline critic
and the member with the highest critic value mean_s Q(s, mu_k(s)) on the demo
states goes online. The expectile V(s) of that critic initialises PPO's value
network, so online fine-tuning starts with a critic instead of from zero.
"""
from __future__ import annotations

from dataclasses import dataclass, field

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


def pretrain_task_policy(demos: Transitions, cfg: FarlConfig, progress: bool = True) -> PretrainedPolicy:
    """Uni-O4 stages 1-2 on the task demos; returns the chosen member and its value net."""
    members, bc_curves = bc_ensemble(demos, cfg.bc, cfg.networks, cfg.seed, desc="task bc", progress=progress)
    q, v, critic_curve = fit_critics(demos, cfg.offline, cfg.networks, cfg.seed, desc="task critic", progress=progress)
    bc_values = [policy_value(p, q, demos.obs) for p in members]
    improve_curves = [improve_policy(p, q, demos, cfg.offline, cfg.seed + k, desc=f"task improve[{k}]", progress=progress)
                      for k, p in enumerate(members)]
    values = [policy_value(p, q, demos.obs) for p in members]
    best = max(range(len(members)), key=values.__getitem__)
    metrics = {
        "bc_final_nll": [c[-1] for c in bc_curves],
        "critic_final": critic_curve[-1],
        "member_value_after_bc": bc_values,
        "member_value_after_improvement": values,
        "chosen_member": best,
        "improvement_final": [c[-1] for c in improve_curves],
    }
    return PretrainedPolicy(members[best], v, metrics)

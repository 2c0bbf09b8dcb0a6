"""The recovery policy pi_rec: BC on recovery demos + the same offline improvement; frozen online.

Its critic sees the recovery demos *and* the failure data, with a reward
penalty per failure step (`recovery_offline.cost_penalty`): the recovery demos
only show the way back, the failure data shows what happens otherwise, and
the penalty makes avoiding failure outrank task progress. Improvement samples
states from the recovery demos only - the states the shield hands it are the
near-failure states those demos start from.
"""
from __future__ import annotations

from ..config import FarlConfig
from .bc import bc_ensemble
from .offline import fit_critics, improve_policy, policy_value
from .transitions import Transitions
from .uni_o4 import PretrainedPolicy


def pretrain_recovery_policy(recovery: Transitions, failures: Transitions | None, cfg: FarlConfig,
                             progress: bool = True) -> PretrainedPolicy:
    """BC (cfg.recovery_bc) then clipped improvement (cfg.recovery_offline) of the best member."""
    members, bc_curves = bc_ensemble(recovery, cfg.recovery_bc, cfg.networks, cfg.seed + 7,
                                     desc="recovery bc", progress=progress)
    critic_data = recovery if failures is None or len(failures) == 0 else Transitions.concat([recovery, failures])
    q, v, critic_curve = fit_critics(critic_data, cfg.recovery_offline, cfg.networks, cfg.seed + 7,
                                     desc="recovery critic", progress=progress)
    for k, member in enumerate(members):
        improve_policy(member, q, recovery, cfg.recovery_offline, cfg.seed + 7 + k,
                       desc=f"recovery improve[{k}]", progress=progress)
    values = [policy_value(p, q, recovery.obs) for p in members]
    best = max(range(len(members)), key=values.__getitem__)
    policy = members[best].requires_grad_(False)
    return PretrainedPolicy(policy, v, {"bc_final_nll": [c[-1] for c in bc_curves],
                                        "critic_final": critic_curve[-1], "member_value": values,
                                        "chosen_member": best})

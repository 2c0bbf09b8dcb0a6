"""The fine-tuning methods `farl finetune --method` runs, and what each one changes.

All of them fine-tune the same pretrained task policy in the same online loop
(training/online.py); they differ in the learner that updates it and in the
shield between it and the environment:

    method       learner (agents/)          shield
    uni-o4       PPO                        none
    farl         PPO                        C_H > eps_safe -> pi_rec             (shield.py)
    ppo-lag      PPO-Lagrangian             none                                 (ppo_lagrangian.py)
    p3o          P3O                        none                                 (p3o.py)
    cpo          CPO                        none                                 (cpo.py)
    farl-qrisk   PPO                        Q_risk > eps_risk -> pi_rec          (q_risk.py)
    farl-mppi    PPO                        C_H > eps_safe -> MPPI in the model  (mppi.py)
"""
from __future__ import annotations

import time
from pathlib import Path

from ..config import FarlConfig

# Importing this module stays light (no torch): the CLI reads METHODS for its --method choices.

METHODS = ("farl", "uni-o4", "ppo-lag", "p3o", "cpo", "farl-qrisk", "farl-mppi")
SAFE_RL = ("ppo-lag", "p3o", "cpo")
SHIELDED = ("farl", "farl-qrisk", "farl-mppi")


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    return method


def make_learner(method: str, policy, value, cfg: FarlConfig):
    """The object whose `update(rollout, episode_costs)` the online loop calls every ppo.num_steps steps."""
    check_method(method)
    if method == "ppo-lag":
        from ..agents.ppo_lagrangian import PPOLagrangianLearner as Learner
    elif method == "p3o":
        from ..agents.p3o import P3OLearner as Learner
    elif method == "cpo":
        from ..agents.cpo import CPOLearner as Learner
    else:
        from ..agents.ppo import PPOLearner

        return PPOLearner(policy, value, cfg.ppo)
    return Learner(policy, value, cfg.ppo, cfg.safe_rl)


def make_shield(method: str, models: dict, epsilon: float, cfg: FarlConfig, model_dir: str | Path,
                out_dir: str | Path, seed: int, progress: bool = True):
    """(shield or None, facts about it for finetune.json). farl-qrisk trains and calibrates its critic here."""
    check_method(method)
    if method not in SHIELDED:
        return None, {}
    if method == "farl":
        from ..shield import Shield

        return Shield(models["policy"], models["recovery"], models["world_model"], cfg.risk.horizon,
                      cfg.risk.gamma_risk, epsilon), {}
    if method == "farl-mppi":
        from ..agents.mppi import MPPIShield

        return MPPIShield(models["policy"], models["recovery"], models["world_model"], cfg.risk.horizon,
                          cfg.risk.gamma_risk, epsilon, cfg.ablation, cfg.ppo.gamma, seed=seed), {}
    return q_risk_shield(models, cfg, model_dir, out_dir, progress)


def q_risk_shield(models: dict, cfg: FarlConfig, model_dir: str | Path, out_dir: str | Path, progress: bool):
    """Train Q_risk on the model folder's failure data (the world model's training split), calibrate it on
    the held-out split, save both to out_dir (q_risk.pt, q_risk.json) and build the shield."""
    import torch
    from farl_common.errors import FarlInputError

    from ..agents.q_risk import QRiskShield, calibrate_q_risk, train_q_risk
    from ..agents.transitions import Transitions
    from ..data import load_dataset
    from .io import FAILURE_DATA, write_json

    path = Path(model_dir) / FAILURE_DATA
    if not path.is_file():
        raise FarlInputError(path, "not found: the Q_risk ablation learns from the pretrained folder's failure "
                                   "data (run `farl pretrain` for this folder again to make it)")
    data = Transitions.from_arrays(load_dataset(path))
    train, holdout = data.split_episodes(cfg.risk.holdout_fraction, cfg.seed)  # the world model's split
    start = time.perf_counter()
    if progress:
        print(f"farl-qrisk: training Q_risk on {len(train)} failure-data transitions "
              f"({cfg.ablation.q_risk_steps} steps)", flush=True)
    q_risk, losses = train_q_risk(train, models["policy"], cfg.ablation, cfg.risk.horizon, cfg.seed,
                                  hidden=cfg.networks.value_hidden)
    calibration = calibrate_q_risk(q_risk, holdout, cfg.risk)
    facts = {"q_risk": {"epsilon_risk": calibration["epsilon_safe"], "recall": calibration["recall"],
                        "needless_trigger_rate": calibration.get("needless_trigger_rate"),
                        "loss_curve": losses, "train_seconds": time.perf_counter() - start,
                        "train_transitions": len(train), "holdout_transitions": len(holdout)}}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(q_risk.state_dict(), out_dir / "q_risk.pt")
    write_json(out_dir / "q_risk.json", {**facts["q_risk"], "tradeoff": calibration["tradeoff"]})
    shield = QRiskShield(models["policy"], models["recovery"], q_risk, calibration["epsilon_safe"], cfg.risk.horizon)
    return shield, facts

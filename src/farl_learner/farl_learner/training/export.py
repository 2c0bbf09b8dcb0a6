"""export(): a pretrained (or fine-tuned) model folder -> the ONNX folder the shield loads."""
from __future__ import annotations

import time
from pathlib import Path

from ..config import FarlConfig, load_farl_config
from ..export.folder import export_model_folder
from .finetune import load_pretrained
from .checkpoint import load_checkpoint
from .io import CHECKPOINTS, write_json


def export(task: str, model_dir: str | Path, onnx_dir: str | Path, cfg: FarlConfig | None = None,
           policy_dir: str | Path | None = None, versions: dict[str, int] | None = None) -> dict:
    """Export policy.onnx, recovery.onnx, risk.onnx and manifest.json; parity-checked against torch.

    `policy_dir` takes the task policy from a fine-tuned folder instead of
    `model_dir` (recovery policy and world model always come from `model_dir`,
    they are frozen online). Returns (and writes to onnx_dir/export.json) the
    parity diffs and the manifest's eps_safe.
    """
    cfg = cfg or load_farl_config(task)
    models = load_pretrained(model_dir, task)
    policy = models["policy"]
    if policy_dir is not None:
        policy, _ = load_checkpoint(Path(policy_dir) / CHECKPOINTS["task_policy"], "policy",
                                    expect={"obs_dim": policy.obs_dim, "action_dim": policy.action_dim})
    epsilon = cfg.risk.epsilon_safe if cfg.risk.epsilon_safe > 0 else float(models["calibration"]["epsilon_safe"])
    start = time.perf_counter()
    manifest, diffs = export_model_folder(onnx_dir, task, policy, models["recovery"], models["world_model"],
                                         cfg.risk.horizon, cfg.risk.gamma_risk, epsilon, versions=versions,
                                         extra={"calibration": models["calibration"]},
                                         recovery_hold_ticks=cfg.risk.recovery_hold_ticks)
    report = {"task": task, "onnx_dir": str(onnx_dir), "epsilon_safe": epsilon, "horizon": cfg.risk.horizon,
              "gamma_risk": cfg.risk.gamma_risk, "parity_max_abs_diff": diffs,
              "export_seconds": time.perf_counter() - start, "config": cfg.to_dict()}
    write_json(Path(onnx_dir) / "export.json", report)
    return report

"""One call that writes a complete, verified model folder (what the learner does on every update)."""
from __future__ import annotations

from pathlib import Path

from ..models import GaussianPolicy, WorldModel
from .manifest import Manifest, load_manifest, write_manifest
from .onnx_export import export_policy, export_recovery, export_risk
from .parity import check_parity


def export_model_folder(folder: str | Path, task: str, policy: GaussianPolicy, recovery: GaussianPolicy,
                        world_model: WorldModel, horizon: int, gamma_risk: float, epsilon_safe: float,
                        versions: dict[str, int] | None = None, obs_layout: dict[str, list[int]] | None = None,
                        extra: dict | None = None, recovery_hold_ticks: int = 0) -> tuple[Manifest, dict[str, float]]:
    """Export policy/recovery/risk ONNX graphs + manifest.json, re-read and parity-check them.

    Returns the verified manifest and the max abs torch-vs-ONNX difference per graph.
    """
    folder = Path(folder)
    export_policy(policy, folder / "policy.onnx")
    export_recovery(recovery, folder / "recovery.onnx")
    export_risk(world_model, policy, horizon, gamma_risk, folder / "risk.onnx")
    write_manifest(folder, task, policy.obs_dim, policy.action_dim, horizon, gamma_risk, epsilon_safe,
                   versions or {}, obs_layout=obs_layout, extra=extra, recovery_hold_ticks=recovery_hold_ticks)
    manifest = load_manifest(folder, expect_task=task, expect_obs_dim=policy.obs_dim,
                             expect_action_dim=policy.action_dim)
    return manifest, check_parity(manifest, policy, recovery, world_model)

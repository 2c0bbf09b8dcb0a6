"""Torch vs ONNX Runtime: the exported graphs must compute what the torch modules compute.

Run by the tests and after every export, on random observations drawn around
the normaliser's statistics (so they exercise the same range as real data).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from farl_common.errors import FarlInputError

from ..models import GaussianPolicy, WorldModel
from .onnx_export import PolicyGraph, RecoveryGraph, RiskGraph
from .manifest import Manifest

TOLERANCE = 1e-4


def max_abs_diff(module: torch.nn.Module, onnx_path: str | Path, inputs: dict[str, np.ndarray]) -> float:
    """Largest |torch - onnxruntime| over all outputs of one graph."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, inputs)
    with torch.no_grad():
        torch_out = module(*(torch.as_tensor(v) for v in inputs.values()))
    torch_out = torch_out if isinstance(torch_out, tuple) else (torch_out,)
    return max(float(np.max(np.abs(t.numpy() - o))) for t, o in zip(torch_out, onnx_out))


def sample_obs(normalizer: torch.nn.Module, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mean, std = normalizer.mean.numpy(), normalizer.std.numpy()
    return (mean + std * rng.standard_normal((n, len(mean)))).astype(np.float32)


def check_parity(manifest: Manifest, policy: GaussianPolicy, recovery: GaussianPolicy | None,
                 world_model: WorldModel | None, n: int = 64, tolerance: float = TOLERANCE) -> dict[str, float]:
    """Max abs diff per graph of a model folder; FarlInputError naming the file above `tolerance`."""
    obs = sample_obs(policy.normalizer, n)
    actions = np.clip(np.random.default_rng(1).standard_normal((n, policy.action_dim)), -1, 1).astype(np.float32)
    checks = {"policy": (PolicyGraph(policy), {"obs": obs})}
    if recovery is not None:
        checks["recovery"] = (RecoveryGraph(recovery), {"obs": obs})
    if world_model is not None:
        risk = RiskGraph(world_model, policy, manifest.horizon, manifest.gamma_risk)
        checks["risk"] = (risk, {"obs": obs, "task_action": actions})
    diffs = {}
    for name, (module, inputs) in checks.items():
        diffs[name] = max_abs_diff(module.eval(), manifest.path(name), inputs)
        if not diffs[name] <= tolerance:
            raise FarlInputError(manifest.path(name), f"ONNX Runtime differs from torch by {diffs[name]:.2e} "
                                                      f"(tolerance {tolerance:.0e})")
    return diffs

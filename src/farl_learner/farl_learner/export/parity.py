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
"""Per output and per network evaluation: |torch - onnxruntime| <= TOLERANCE x max(1, the output's largest
magnitude) x the evaluations chained in the graph (1 for the policies, H + 1 for the risk graph, which rolls
the world model and pi_task out H steps). float32 rounding grows with the value and with the depth: at H = 12
correct risk graphs differed by 1.0e-4 and the learner's re-export of that version failed. 13 x 1e-4 is far below
the shipped folders' eps_safe (0.12-0.67); a folder calibrated to an eps_safe near 1e-3 would need a tighter
check than this."""


def output_diffs(module: torch.nn.Module, onnx_path: str | Path,
                 inputs: dict[str, np.ndarray]) -> list[tuple[float, float]]:
    """(largest |torch - onnxruntime|, max(1, largest |torch|)) per output of one graph."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, inputs)
    with torch.no_grad():
        torch_out = module(*(torch.as_tensor(v) for v in inputs.values()))
    torch_out = torch_out if isinstance(torch_out, tuple) else (torch_out,)
    return [(float(np.max(np.abs(t.numpy() - o))), max(1.0, float(np.max(np.abs(t.numpy())))))
            for t, o in zip(torch_out, onnx_out)]


def max_abs_diff(module: torch.nn.Module, onnx_path: str | Path, inputs: dict[str, np.ndarray]) -> float:
    """Largest |torch - onnxruntime| over all outputs of one graph."""
    return max(diff for diff, _ in output_diffs(module, onnx_path, inputs))


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
        outputs = output_diffs(module.eval(), manifest.path(name), inputs)
        diffs[name] = max(diff for diff, _ in outputs)
        depth = manifest.horizon + 1 if name == "risk" else 1
        for diff, scale in outputs:
            allowed = tolerance * scale * depth
            if not diff <= allowed:
                raise FarlInputError(manifest.path(name), f"ONNX Runtime differs from torch by {diff:.2e} (allowed "
                                                          f"{allowed:.1e}: {tolerance:.0e} x output scale {scale:.3g}"
                                                          f" x {depth} chained evaluations); re-export the folder, "
                                                          "and if it persists the graph does not compute what the "
                                                          "torch module does")
    return diffs

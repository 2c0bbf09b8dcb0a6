"""Torch -> ONNX for the three graphs the shield runs (names and shapes: manifest.GRAPHS).

The risk graph is the whole C_H computation - encode, H+1 policy-mean steps,
failure probabilities, dynamics, decoder - unrolled for the fixed H into ONE
ONNX graph, so a shield tick costs at most three ONNX Runtime calls: policy
(mean + log-std, the robot samples a_task), risk(obs, a_task) and, only when
triggered, recovery. Because the task policy's weights are inside the risk
graph, the learner re-exports policy.onnx *and* risk.onnx on every update.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from ..models import GaussianPolicy, WorldModel
from ..risk import h_step_risk
from .manifest import hand_dim

OPSET = 17


class PolicyGraph(nn.Module):
    def __init__(self, policy: GaussianPolicy):
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_std = self.policy.log_std.clamp(self.policy.min_log_std, self.policy.max_log_std)
        return self.policy(obs), log_std


class RecoveryGraph(nn.Module):
    def __init__(self, policy: GaussianPolicy):
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy(obs)


class RiskGraph(nn.Module):
    """(obs, task_action) -> (C_H, per-step failure probabilities, predicted hand path)."""

    def __init__(self, world_model: WorldModel, policy: GaussianPolicy, horizon: int, gamma_risk: float):
        super().__init__()
        self.world_model, self.policy = world_model, policy
        self.horizon, self.gamma_risk = horizon, gamma_risk
        self.hand_slice = slice(0, hand_dim(world_model.obs_dim))

    def forward(self, obs: torch.Tensor, task_action: torch.Tensor):
        risk, step_prob, states = h_step_risk(self.world_model, self.policy, obs, self.horizon, self.gamma_risk,
                                              first_action=task_action)
        return risk, step_prob, states[..., self.hand_slice]


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            batch_outputs: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    axes = {name: {0: "batch"} for name in inputs + batch_outputs}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # dynamo=False: the exporter that needs no onnxscript
        torch.onnx.export(module.eval(), args, str(tmp), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    tmp.replace(path)  # atomic: the shield never sees half a file
    return path


def export_policy(policy: GaussianPolicy, path: str | Path) -> Path:
    obs = torch.zeros(1, policy.obs_dim)
    return _export(PolicyGraph(policy), (obs,), Path(path), ["obs"], ["action_mean", "log_std"], ["action_mean"])


def export_recovery(policy: GaussianPolicy, path: str | Path) -> Path:
    obs = torch.zeros(1, policy.obs_dim)
    return _export(RecoveryGraph(policy), (obs,), Path(path), ["obs"], ["action_mean"], ["action_mean"])


def export_risk(world_model: WorldModel, policy: GaussianPolicy, horizon: int, gamma_risk: float,
                path: str | Path) -> Path:
    args = (torch.zeros(1, world_model.obs_dim), torch.zeros(1, world_model.action_dim))
    return _export(RiskGraph(world_model, policy, horizon, gamma_risk), args, Path(path), ["obs", "task_action"],
                   ["risk", "step_prob", "hand_path"], ["risk", "step_prob", "hand_path"])

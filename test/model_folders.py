"""Small model folders for tests and benchmarks, made in seconds without training.

- `known_risk_folder`: the three ONNX graphs of a model folder written directly
  with `onnx.helper` (no torch): pi_task outputs a constant mean action and a
  constant log-std, pi_rec another constant action, and the "world model"
  risk graph returns C_H = w . obs + b — a known function of the observation
  (e.g. C_H = tcp.x), so a test knows exactly when the shield must fire.
  step_prob and hand_path have the manifest's shapes (the path is the current
  TCP repeated H+1 times).
- `untrained_folder`: fresh farl_learner networks (small), saved as the torch
  checkpoints the learner node starts from (training/io.py CHECKPOINTS) plus
  calibration.json, and exported to ONNX with export_model_folder, so the
  same folder serves the shield (ONNX) and the learner (torch).

Shapes and names follow farl_control.shield.manifest.GRAPHS.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from farl_control.shield.manifest import GRAPHS, hand_dim, write_manifest

TASK = "fragile_push_wall"
OBS_DIM = 7       # tcp xyz, fragile_block xy, target xy (config/tasks/fragile_push_wall.yaml observation)
ACTION_DIM = 3


def _learner_risk_settings() -> tuple[int, float]:
    """The learner exports policies with its own risk.horizon/gamma_risk and the shield refuses a
    swap that changes H, so test folders must be made with the values the learner will use."""
    from farl_common.paths import config_dir
    from farl_learner.config import load_farl_config

    risk = load_farl_config(str(config_dir() / "farl" / "franka" / f"{TASK}.yaml")).risk  # config/stacks: farl_config
    return int(risk.horizon), float(risk.gamma_risk)


HORIZON, GAMMA_RISK = _learner_risk_settings()
OPSET = 17


def _save(graph, path: Path) -> None:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="farl-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    tmp = path.with_name(path.name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)


def _tensor(name: str, values, dtype=np.float32):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name=name)


def _io(name: str, shape: Sequence):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def _constant_action_graph(name: str, obs_dim: int, action: Sequence[float], log_std: Sequence[float] | None):
    """obs [B, obs_dim] -> action_mean [B, A] = obs @ 0 + action (and log_std [A] if given)."""
    from onnx import helper

    a = len(action)
    nodes = [helper.make_node("MatMul", ["obs", "zeros"], ["zero_action"]),
             helper.make_node("Add", ["zero_action", "action_const"], ["action_mean"])]
    init = [_tensor("zeros", np.zeros((obs_dim, a))), _tensor("action_const", action)]
    outputs = [_io("action_mean", ["B", a])]
    if log_std is not None:
        nodes.append(helper.make_node("Identity", ["log_std_const"], ["log_std"]))
        init.append(_tensor("log_std_const", log_std))
        outputs.append(_io("log_std", [a]))
    return helper.make_graph(nodes, name, [_io("obs", ["B", obs_dim])], outputs, init)


def _linear_risk_graph(obs_dim: int, action_dim: int, horizon: int, weights: Sequence[float], bias: float):
    """(obs, task_action) -> risk [B] = obs @ w + b; step_prob [B, H+1] = risk / (H+1) each;
    hand_path [B, H+1, hand_dim] = the current TCP (obs[0:hand_dim]) repeated."""
    from onnx import helper

    steps, hand = horizon + 1, hand_dim(obs_dim)
    select = np.zeros((obs_dim, steps * hand))
    for k in range(steps):
        for d in range(hand):
            select[d, k * hand + d] = 1.0
    nodes = [
        helper.make_node("MatMul", ["obs", "w"], ["obs_term"]),              # [B, 1]
        helper.make_node("MatMul", ["task_action", "w_action"], ["act_term"]),  # [B, 1] (zero weight)
        helper.make_node("Add", ["obs_term", "act_term"], ["sum_term"]),
        helper.make_node("Add", ["sum_term", "b"], ["risk_col"]),
        helper.make_node("Squeeze", ["risk_col", "axis1"], ["risk"]),
        helper.make_node("MatMul", ["risk_col", "spread"], ["step_prob"]),   # [B, H+1]
        helper.make_node("MatMul", ["obs", "select"], ["hand_flat"]),        # [B, (H+1)*hand]
        helper.make_node("Reshape", ["hand_flat", "path_shape"], ["hand_path"]),
    ]
    init = [
        _tensor("w", np.asarray(weights, dtype=np.float64).reshape(obs_dim, 1)),
        _tensor("w_action", np.zeros((action_dim, 1))),
        _tensor("b", [bias]),
        _tensor("axis1", [1], dtype=np.int64),
        _tensor("spread", np.full((1, steps), 1.0 / steps)),
        _tensor("select", select),
        _tensor("path_shape", [-1, steps, hand], dtype=np.int64),
    ]
    return helper.make_graph(
        nodes, "risk", [_io("obs", ["B", obs_dim]), _io("task_action", ["B", action_dim])],
        [_io("risk", ["B"]), _io("step_prob", ["B", steps]), _io("hand_path", ["B", steps, hand])], init)


def known_risk_folder(folder: str | Path, *, action: Sequence[float] = (0.5, 0.0, 0.0),
                      recovery_action: Sequence[float] = (-0.5, 0.0, 0.0), log_std: float = -20.0,
                      risk_weights: Sequence[float] | None = None, risk_bias: float = 0.0,
                      epsilon_safe: float = 0.58, policy_version: int = 1, task: str = TASK,
                      obs_dim: int = OBS_DIM, horizon: int = HORIZON, recovery_hold_ticks: int = 0) -> Path:
    """A complete model folder with constant policies and C_H = risk_weights . obs + risk_bias.

    Default: C_H = tcp.x; pi_task pushes +x at half scale, pi_rec pulls back -x;
    log_std -20 makes the "sampled" task action equal to its mean to ~1e-9.
    """
    assert set(GRAPHS) == {"policy", "recovery", "risk"}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    a = len(action)
    weights = np.zeros(obs_dim) if risk_weights is None else np.asarray(risk_weights, dtype=np.float64)
    if risk_weights is None:
        weights[0] = 1.0  # C_H = tcp.x
    _save(_constant_action_graph("policy", obs_dim, action, [log_std] * a), folder / "policy.onnx")
    _save(_constant_action_graph("recovery", obs_dim, recovery_action, None), folder / "recovery.onnx")
    _save(_linear_risk_graph(obs_dim, a, horizon, weights, risk_bias), folder / "risk.onnx")
    write_manifest(folder, task, obs_dim, a, horizon, GAMMA_RISK, epsilon_safe,
                   {"policy": policy_version, "recovery": 1, "risk": 1}, recovery_hold_ticks=recovery_hold_ticks)
    return folder


def untrained_folder(folder: str | Path, *, hidden: Sequence[int] = (32, 32), latent_dim: int = 16,
                     world_model_hidden: Sequence[int] | None = None, epsilon_safe: float = 1000.0, seed: int = 0,
                     horizon: int = HORIZON) -> Path:
    """Fresh small networks: torch checkpoints (the learner's start) + the exported ONNX folder (the shield's).

    The default eps_safe is far above any C_H (<= sum_k 0.9^k ~ 6.9), so the
    untrained task policy acts on every tick; pass a small one to see triggers.
    """
    import torch

    from farl_learner.export.folder import export_model_folder
    from farl_learner.models import GaussianPolicy, ValueNetwork, WorldModel
    from farl_learner.training.checkpoint import save_checkpoint
    from farl_learner.training.io import CALIBRATION, CHECKPOINTS, write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    # Observations live around the home pose (m): give the normalisers plausible statistics.
    rng = np.random.default_rng(seed)
    center = np.array([0.55, 0.0, 0.3, 0.45, -0.15, 0.56, 0.12])
    data = center + 0.1 * rng.standard_normal((256, OBS_DIM))
    policy = GaussianPolicy(OBS_DIM, ACTION_DIM, hidden)
    recovery = GaussianPolicy(OBS_DIM, ACTION_DIM, hidden)
    value = ValueNetwork(OBS_DIM, hidden)
    world_model = WorldModel(OBS_DIM, ACTION_DIM, latent_dim=latent_dim, hidden=world_model_hidden or hidden)
    for module in (policy, recovery, value, world_model):
        module.normalizer.fit(data)
    save_checkpoint(folder / CHECKPOINTS["task_policy"], "policy", policy)
    save_checkpoint(folder / CHECKPOINTS["task_value"], "value", value)
    save_checkpoint(folder / CHECKPOINTS["recovery_policy"], "policy", recovery)
    save_checkpoint(folder / CHECKPOINTS["world_model"], "world_model", world_model)
    write_json(folder / CALIBRATION, {"epsilon_safe": float(epsilon_safe)})
    export_model_folder(folder, TASK, policy, recovery, world_model, horizon, GAMMA_RISK, epsilon_safe,
                        versions={"policy": 0})
    return folder

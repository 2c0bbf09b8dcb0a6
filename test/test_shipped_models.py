"""The pretrained model folder shipped in the repo (config/models/fragile_push_wall, made by
`farl pretrain-twin`): the shield loads it, the learner starts from it, and the stack's
learner config re-exports policies with the manifest's horizon and gamma_risk."""
from __future__ import annotations

import json

import numpy as np
import pytest

from farl_common.paths import resolve_config_path
from farl_control.shield.runtime import ShieldRuntime
from farl_control.launching.stack import load_stack
from farl_common.task_config import load_task_config
from farl_common.task_spec import TaskSpec

TASK = "fragile_push_wall"


@pytest.fixture(scope="module")
def stack_params():
    nodes = {n.name: n for n in load_stack(TASK).resolve({})}
    return nodes["shield"].parameters, nodes["learner"].parameters


def test_shield_loads_the_shipped_folder(stack_params):
    shield_params, _ = stack_params
    spec = TaskSpec.from_config(load_task_config(TASK))
    folder = resolve_config_path(shield_params["models_dir"])
    runtime = ShieldRuntime(folder, TASK, spec.obs_dim, spec.action_dim)
    assert runtime.manifest.obs_layout == {name: [i, i + 1] for i, name in enumerate(spec.layout())}
    config = load_task_config(TASK)
    block, target = config.scene.object("fragile_block").pos, config.scene.object("target").pos
    tcp = (0.57, -0.22, 0.15)  # home: low, behind the block
    obs = np.array([*tcp, block[0], block[1], target[0], target[1]], dtype=np.float32)
    for _ in range(20):  # whatever the exploration draws, the start pose is far from any failure
        decision = runtime.decide(obs)
        assert np.all(np.abs(decision.action) <= 1.0) and np.isfinite(decision.risk)
        assert decision.source == "task", f"C_H {decision.risk:.3g} > eps {decision.epsilon:.3g} at the start"
    calibration = json.loads((folder / "calibration.json").read_text())
    assert runtime.epsilon == pytest.approx(calibration["epsilon_safe"])
    total = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert total < 5_000_000, f"shipped folder is {total / 1e6:.1f} MB"
    assert not list(folder.glob("*.npz")), "datasets must not be shipped"


def test_learner_starts_from_it_with_the_manifest_horizon(stack_params, tmp_path):
    pytest.importorskip("torch")
    from farl_learner.config import load_farl_config
    from farl_learner.learner_core import LearnerCore

    _, learner_params = stack_params
    cfg = load_farl_config(resolve_config_path(learner_params["farl_config"]))
    folder = resolve_config_path(learner_params["models_dir"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert cfg.task == TASK
    assert cfg.risk.horizon == manifest["horizon"] and cfg.risk.gamma_risk == pytest.approx(manifest["gamma_risk"])
    core = LearnerCore(TASK, folder, tmp_path / "run", cfg)
    assert core.policy.obs_dim == manifest["obs_dim"] and core.epsilon_safe == pytest.approx(manifest["epsilon_safe"])


@pytest.mark.sim
def test_shield_fires_before_the_failures_of_the_policys_own_exploration(stack_params):
    """In the training twin, run the shipped policy (ONNX, exploring as the stack's actor does) with the
    shield off until it has failed several times; the shipped risk graph must fire in the ticks just
    before (nearly) every one of those failures (held-out: seeds the pretraining never used)."""
    pytest.importorskip("torch")
    from farl_learner.twin.config import make_twin_env

    shield_params, _ = stack_params
    spec = TaskSpec.from_config(load_task_config(TASK))
    folder = resolve_config_path(shield_params["models_dir"])
    runtime = ShieldRuntime(folder, TASK, spec.obs_dim, spec.action_dim, shield_enabled=False, seed=7,
                            noise_correlation=spec.exploration_correlation)
    env = make_twin_env(TASK)
    warned = failures = 0
    for seed in range(900_000, 900_150):
        obs, _ = env.reset(seed=seed)
        runtime.new_episode()
        risks = []
        while True:
            d = runtime.decide(obs)
            risks.append(d.risk > d.epsilon)
            obs, _, terminated, truncated, info = env.step(d.action)
            if terminated or truncated:
                break
        if info["failure"]:
            failures += 1
            warned += any(risks[-4:-1])  # the shield would have fired 1 to 3 ticks before the failing tick
        if failures >= 8:
            break
    assert failures >= 5, f"only {failures} failures in the twin: the shipped policy no longer explores into the wall"
    assert warned / failures >= 0.8, f"the shield would have fired before only {warned} of {failures} failures"


@pytest.mark.parametrize("task", ["fragile_push_wall", "disturbed_push", "bounded_soccer"])
def test_every_task_ships_a_model_folder_its_stack_loads(task):
    """`ros2 launch farl_control <task>.launch.py` starts the shield on config/models/<task>: it must load with
    the task's observation layout and its calibrated eps_safe, and stay small and free of datasets."""
    nodes = {n.name: n for n in load_stack(task).resolve({})}
    folder = resolve_config_path(nodes["shield"].parameters["models_dir"])
    spec = TaskSpec.from_config(load_task_config(task))
    runtime = ShieldRuntime(folder, task, spec.obs_dim, spec.action_dim)
    assert runtime.manifest.obs_layout == {name: [i, i + 1] for i, name in enumerate(spec.layout())}
    assert runtime.epsilon == pytest.approx(json.loads((folder / "calibration.json").read_text())["epsilon_safe"])
    assert sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) < 5_000_000
    assert not list(folder.glob("*.npz")), "datasets must not be shipped"
    command = (folder / "command.json").read_text()
    assert "farl pretrain-twin " + task in command and '"/' not in command  # reproducible, no machine paths

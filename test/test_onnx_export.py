"""ONNX export: torch parity of the three graphs, manifest checks, one-line errors for bad files."""
from __future__ import annotations

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import torch

from farl_common.errors import FarlInputError
from farl_learner.export import load_manifest
from farl_learner.export.folder import export_model_folder
from farl_learner.export.manifest import write_manifest
from farl_learner.export.onnx_export import export_policy
from farl_learner.export.parity import TOLERANCE, check_parity, sample_obs
from farl_learner.models import GaussianPolicy, WorldModel
from farl_learner.risk import h_step_risk
from farl_learner.training.checkpoint import load_checkpoint, save_checkpoint

torch.set_num_threads(1)
OBS, ACT, H, GAMMA = 39, 4, 6, 0.9


def _models(seed: int = 0):
    torch.manual_seed(seed)
    data = np.random.default_rng(seed).normal(0.5, 0.2, (256, OBS)).astype(np.float32)
    policy, recovery = GaussianPolicy(OBS, ACT, (64, 64)), GaussianPolicy(OBS, ACT, (64, 64))
    world_model = WorldModel(OBS, ACT, latent_dim=16, hidden=(64, 64))
    for net in (policy, recovery, world_model):
        net.normalizer.fit(data)
    return policy, recovery, world_model


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx")
    policy, recovery, world_model = _models()
    manifest, diffs = export_model_folder(path, "bounded_push", policy, recovery, world_model, H, GAMMA, 1.25,
                                          versions={"policy": 3})
    return path, (policy, recovery, world_model), diffs


def test_parity_of_policy_recovery_and_risk_graphs(folder):
    path, (policy, recovery, world_model), diffs = folder
    assert set(diffs) == {"policy", "recovery", "risk"} and max(diffs.values()) < TOLERANCE
    manifest = load_manifest(path, expect_task="bounded_push", expect_obs_dim=OBS, expect_action_dim=ACT)
    obs = sample_obs(policy.normalizer, 17, seed=5)  # another batch size than at export
    action = np.clip(np.random.default_rng(5).normal(size=(17, ACT)), -1, 1).astype(np.float32)
    risk, step_prob, hand_path = manifest.session("risk").run(None, {"obs": obs, "task_action": action})
    with torch.no_grad():
        ref_risk, ref_prob, ref_states = h_step_risk(world_model, policy, torch.as_tensor(obs), H, GAMMA,
                                                     torch.as_tensor(action))
    np.testing.assert_allclose(risk, ref_risk.numpy(), atol=TOLERANCE)
    np.testing.assert_allclose(step_prob, ref_prob.numpy(), atol=TOLERANCE)
    np.testing.assert_allclose(hand_path, ref_states[..., :3].numpy(), atol=TOLERANCE)
    mean, log_std = manifest.session("policy").run(None, {"obs": obs})
    np.testing.assert_allclose(log_std, policy.log_std.detach().numpy(), atol=1e-6)
    assert mean.shape == (17, ACT) and np.all(np.abs(mean) <= 1)


def test_graphs_that_no_longer_compute_what_the_torch_modules_do_are_refused(folder):
    path, (policy, recovery, world_model), _ = folder
    manifest = load_manifest(path, expect_task="bounded_push", expect_obs_dim=OBS, expect_action_dim=ACT)
    changed = WorldModel(OBS, ACT, latent_dim=16, hidden=(64, 64))
    changed.load_state_dict(world_model.state_dict())
    with torch.no_grad():
        changed.normalizer.mean += 0.05  # as if the world model had been retrained after the export
    with pytest.raises(FarlInputError, match=r"risk\.onnx.*ONNX Runtime differs from torch"):
        check_parity(manifest, policy, recovery, changed)
    assert set(check_parity(manifest, policy, recovery, world_model)) == {"policy", "recovery", "risk"}


def test_manifest_records_what_the_shield_needs(folder):
    path, _, _ = folder
    data = json.loads((path / "manifest.json").read_text())
    assert data["format_version"] == 1 and data["task"] == "bounded_push"
    assert data["obs_dim"] == OBS and data["obs_layout"]["hand_pos"] == [0, 3]
    assert data["action_dim"] == ACT and data["action_low"] == [-1.0] * ACT and data["action_high"] == [1.0] * ACT
    assert (data["horizon"], data["gamma_risk"], data["epsilon_safe"]) == (H, GAMMA, 1.25)
    assert data["models"]["policy"]["version"] == 3 and len(data["models"]["risk"]["sha256"]) == 64
    assert data["created"]


def _one_line(error: pytest.ExceptionInfo, name: str) -> str:
    message = str(error.value)
    assert "\n" not in message and name in message
    return message


def test_wrong_task_or_shape_is_refused(folder):
    path, _, _ = folder
    with pytest.raises(FarlInputError) as error:
        load_manifest(path, expect_task="bounded_soccer")
    assert "bounded_push" in _one_line(error, "manifest.json")
    with pytest.raises(FarlInputError) as error:
        load_manifest(path, expect_obs_dim=40)
    _one_line(error, "obs_dim")


def test_changed_or_missing_files_are_refused(folder, tmp_path):
    src, _, _ = folder
    copy = tmp_path / "models"
    shutil.copytree(src, copy)
    with open(copy / "risk.onnx", "r+b") as stream:  # flip a byte: the checksum no longer matches
        stream.seek(100)
        byte = stream.read(1)
        stream.seek(100)
        stream.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(FarlInputError) as error:
        load_manifest(copy)
    assert "sha256" in _one_line(error, "risk.onnx")
    (copy / "risk.onnx").unlink()
    with pytest.raises(FarlInputError) as error:
        load_manifest(copy)
    assert "missing" in _one_line(error, "risk.onnx")
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(FarlInputError) as error:
        load_manifest(copy)
    _one_line(error, "manifest.json")
    with pytest.raises(FarlInputError) as error:
        load_manifest(tmp_path / "nowhere")
    _one_line(error, "manifest.json")


def test_a_graph_of_the_wrong_shape_is_refused_even_with_a_fresh_checksum(folder, tmp_path):
    src, _, _ = folder
    copy = tmp_path / "models"
    shutil.copytree(src, copy)
    export_policy(GaussianPolicy(OBS, ACT + 1, (8,)), copy / "policy.onnx")  # a 5-d action policy
    write_manifest(copy, "bounded_push", OBS, ACT, H, GAMMA, 1.25, versions={})
    with pytest.raises(FarlInputError) as error:
        load_manifest(copy)
    assert "action_mean" in _one_line(error, "policy.onnx")


def test_corrupt_or_mismatched_checkpoints_are_one_line_errors(tmp_path):
    policy, _, world_model = _models()
    good = save_checkpoint(tmp_path / "policy.pt", "policy", policy, {"task": "bounded_push"})
    loaded, meta = load_checkpoint(good, "policy", expect={"obs_dim": OBS})
    assert meta["task"] == "bounded_push"
    obs = torch.as_tensor(sample_obs(policy.normalizer, 4))
    torch.testing.assert_close(loaded(obs), policy(obs))

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"hello, not a checkpoint")
    for path in (truncated, garbage):
        with pytest.raises(FarlInputError) as error:
            load_checkpoint(path, "policy")
        _one_line(error, path.name)
    wm_file = save_checkpoint(tmp_path / "wm.pt", "world_model", world_model)
    with pytest.raises(FarlInputError) as error:
        load_checkpoint(wm_file, "policy")
    assert "world_model" in _one_line(error, "wm.pt")
    with pytest.raises(FarlInputError) as error:
        load_checkpoint(good, "policy", expect={"obs_dim": 12})
    _one_line(error, "policy.pt")
    with pytest.raises(FarlInputError) as error:
        load_checkpoint(tmp_path / "absent.pt", "policy")
    _one_line(error, "absent.pt")


def test_risk_graph_latency_is_small(folder):
    """One shield tick's risk call, single-threaded ONNX Runtime (a loose bound: the machine is shared)."""
    import time

    path, (policy, _, _), _ = folder
    session = load_manifest(path).session("risk")
    feed = {"obs": sample_obs(policy.normalizer, 1), "task_action": np.zeros((1, ACT), np.float32)}
    for _ in range(5):
        session.run(None, feed)
    start = time.perf_counter()
    for _ in range(50):
        session.run(None, feed)
    assert (time.perf_counter() - start) / 50 < 0.02
    assert isinstance(session, ort.InferenceSession)

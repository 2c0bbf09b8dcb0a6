"""Policies travel as bytes: a shield with no access to the learner's folder still hot-swaps, and refuses
a transfer that is corrupt, incomplete, from another learner, or would write outside its cache.

The learner's side (known-risk folders written under one root) and the shield's
side (its model folder and cache under another) share no folder; the learner's
root is deleted before the shield sees the bytes.
"""
from __future__ import annotations

import base64
import hashlib
import shutil

import numpy as np
import pytest

from farl_common import interface as api
from farl_common.errors import FarlInputError
from farl_control.shield.runtime import ShieldRuntime
from farl_control.shield.transfer import folder_files, pack_folder, unpack_folder
from model_folders import OBS_DIM, TASK, known_risk_folder

OBS = np.array([0.55, 0.0, 0.3, 0.45, -0.15, 0.56, 0.12], dtype=np.float32)
LEARNER_ID = "runs/fragile_push_wall-learner"


def sha(files: dict[str, str]) -> str:
    return hashlib.sha256(base64.b64decode(files["manifest.json"])).hexdigest()


@pytest.fixture
def sides(tmp_path):
    learner, shield = tmp_path / "learner_pc", tmp_path / "robot_pc"
    known_risk_folder(shield / "models", epsilon_safe=0.58)
    runtime = ShieldRuntime(shield / "models", TASK, OBS_DIM, 3, policy_root=LEARNER_ID, policy_cache=shield / "cache")
    return learner, shield, runtime


def sent(learner_root, version: int, **kwargs) -> dict[str, str]:
    """What the learner puts in the announcement; its folder is gone afterwards."""
    folder = known_risk_folder(learner_root / f"v{version:04d}", policy_version=version, **kwargs)
    files = pack_folder(folder)
    shutil.rmtree(learner_root)
    return files


def test_the_files_sent_are_the_manifest_and_the_graphs_it_lists(tmp_path):
    folder = known_risk_folder(tmp_path / "m")
    (folder / "notes.txt").write_text("not for the shield")
    assert folder_files(folder) == ["manifest.json", "policy.onnx", "recovery.onnx", "risk.onnx"]
    assert set(pack_folder(folder)) == set(folder_files(folder))


def test_a_transferred_policy_is_swapped_in_from_the_shields_own_cache(sides):
    learner, shield, runtime = sides
    files = sent(learner, 2, action=(0.2, 0, 0), epsilon_safe=0.62)
    assert not learner.exists()
    folder = runtime.swap_transferred(files, sha(files), 2, LEARNER_ID)
    assert folder.parent == shield / "cache"
    decision = runtime.decide(OBS)
    assert decision.policy_version == 2 and decision.epsilon == pytest.approx(0.62)
    np.testing.assert_allclose(decision.action_task, (0.2, 0, 0), atol=1e-6)


def test_the_payload_carries_the_files_through_its_schema(sides):
    learner, _, runtime = sides
    files = sent(learner, 2, action=(0.2, 0, 0))
    wire = api.POLICY_PAYLOAD.to_json({"path": "/elsewhere/v0002", "version": 2, "sha256": sha(files),
                                       "source": LEARNER_ID, "files": files})
    received = api.POLICY_PAYLOAD.from_json(wire)
    runtime.swap_transferred(received["files"], received["sha256"], received["version"], received["source"])
    assert runtime.decide(OBS).policy_version == 2
    assert len(wire) < 1_000_000  # one message; DDS fragments it


def corrupt_graph(files: dict[str, str]) -> dict[str, str]:
    data = bytearray(base64.b64decode(files["policy.onnx"]))
    data[len(data) // 2] ^= 0xFF
    return {**files, "policy.onnx": base64.b64encode(bytes(data)).decode()}


@pytest.mark.parametrize("damage, problem", [
    (corrupt_graph, "sha256 differs from manifest.json"),
    (lambda f: {**f, "manifest.json": base64.b64encode(b"{}").decode()}, "manifest.json sha256 differs"),
    (lambda f: {k: v for k, v in f.items() if k != "risk.onnx"}, "missing ['risk.onnx']"),
    (lambda f: {**f, "policy.onnx": "not base64!"}, "not valid base64"),
    (lambda f: {**f, "../escape.onnx": f["policy.onnx"]}, "refusing file name '../escape.onnx'"),
    (lambda f: {**f, "extra.bin": f["policy.onnx"]}, "extra ['extra.bin']"),
])
def test_a_bad_transfer_is_refused_and_the_running_policy_stays(sides, damage, problem):
    learner, shield, runtime = sides
    files = sent(learner, 2, action=(0.2, 0, 0))
    manifest_sha = sha(files)
    with pytest.raises(FarlInputError, match=problem.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        runtime.swap_transferred(damage(files), manifest_sha, 2, LEARNER_ID)
    assert runtime.decide(OBS).policy_version == 1
    np.testing.assert_allclose(runtime.decide(OBS).action_task, (0.5, 0, 0), atol=1e-6)
    leftovers = list((shield / "cache").glob("*")) if (shield / "cache").exists() else []
    assert leftovers == [], "a refused transfer must leave nothing in the cache"
    assert not (shield / "escape.onnx").exists()


def test_a_policy_from_another_learner_is_refused(sides):
    learner, _, runtime = sides
    files = sent(learner, 2, action=(0.2, 0, 0))
    with pytest.raises(FarlInputError, match="comes from learner 'runs/other-learner'"):
        runtime.swap_transferred(files, sha(files), 2, "runs/other-learner")
    assert runtime.decide(OBS).policy_version == 1


def test_unpacking_writes_nothing_before_the_manifest_checks_out(tmp_path):
    files = pack_folder(known_risk_folder(tmp_path / "m"))
    with pytest.raises(FarlInputError):
        unpack_folder(files, "0" * 64, 3, tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())

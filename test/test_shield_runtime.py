"""ShieldRuntime without ROS, on known-risk model folders (C_H = tcp.x; constant pi_task, pi_rec)."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from farl_common.errors import FarlInputError
from farl_control.shield.runtime import ShieldRuntime
from model_folders import HORIZON, OBS_DIM, TASK, known_risk_folder

OBS = np.array([0.55, 0.0, 0.3, 0.45, -0.15, 0.56, 0.12], dtype=np.float32)


def _sha(folder) -> str:
    return hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()


def _at(x: float) -> np.ndarray:
    obs = OBS.copy()
    obs[0] = x
    return obs


def test_recovery_exactly_above_epsilon(tmp_path):
    runtime = ShieldRuntime(known_risk_folder(tmp_path / "m", epsilon_safe=0.58), TASK, OBS_DIM, 3)
    for x in np.linspace(0.50, 0.66, 81):
        d = runtime.decide(_at(x))
        assert d.risk == pytest.approx(np.float32(x), abs=1e-6)
        assert d.source == ("recovery" if d.risk > 0.58 else "task")
        np.testing.assert_allclose(d.action, (-0.5, 0, 0) if d.source == "recovery" else (0.5, 0, 0), atol=1e-6)
        np.testing.assert_allclose(d.action_task, (0.5, 0, 0), atol=1e-6)
        assert d.step_prob.shape == (HORIZON + 1,) and d.hand_path.shape == (HORIZON + 1, 3)
        np.testing.assert_allclose(d.hand_path[-1], _at(x)[:3], atol=1e-6)


def test_a_held_recovery_keeps_control_for_the_folders_ticks_after_each_trigger(tmp_path):
    """C_H = tcp.x, eps 0.58: one risky tick, then safe ones. pi_rec acts on the trigger and 2 ticks more."""
    runtime = ShieldRuntime(known_risk_folder(tmp_path / "m", recovery_hold_ticks=2), TASK, OBS_DIM, 3)
    sources = [runtime.decide(_at(x)).source for x in (0.50, 0.60, 0.50, 0.50, 0.50, 0.60, 0.50)]
    assert sources == ["task", "recovery", "recovery", "recovery", "task", "recovery", "recovery"]
    held = runtime.decide(_at(0.50))
    np.testing.assert_allclose(held.action, (-0.5, 0, 0), atol=1e-6)  # pi_rec's action, not the proposal
    assert held.risk == pytest.approx(0.50, abs=1e-6)                  # the risk is still the proposal's
    runtime.new_episode()                                              # a new episode starts unheld
    assert runtime.decide(_at(0.50)).source == "task"
    unheld = ShieldRuntime(known_risk_folder(tmp_path / "m2", recovery_hold_ticks=2), TASK, OBS_DIM, 3,
                           recovery_hold_override=0)                   # the paper's per-tick rule
    assert [unheld.decide(_at(x)).source for x in (0.60, 0.50)] == ["recovery", "task"]


def test_a_negative_recovery_hold_in_a_manifest_is_refused_naming_the_key(tmp_path):
    folder = known_risk_folder(tmp_path / "m")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["recovery_hold_ticks"] = -3
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FarlInputError) as error:
        ShieldRuntime(folder, TASK, OBS_DIM, 3)
    assert "recovery_hold_ticks" in str(error.value) and "manifest.json" in str(error.value)


def test_shield_disabled_never_substitutes(tmp_path):
    runtime = ShieldRuntime(known_risk_folder(tmp_path / "m"), TASK, OBS_DIM, 3, shield_enabled=False)
    assert runtime.decide(_at(0.9)).source == "task"


def test_swap_adopts_the_new_folders_epsilon_unless_overridden(tmp_path):
    v1 = known_risk_folder(tmp_path / "v1", epsilon_safe=0.58)
    v2 = known_risk_folder(tmp_path / "v2", action=(0.2, 0, 0), epsilon_safe=0.62, policy_version=2)
    runtime = ShieldRuntime(v1, TASK, OBS_DIM, 3)
    assert runtime.decide(_at(0.60)).source == "recovery"
    runtime.swap_policy(v2, _sha(v2), 2)
    d = runtime.decide(_at(0.60))
    assert (d.source, d.epsilon, d.policy_version) == ("task", pytest.approx(0.62), 2)
    np.testing.assert_allclose(d.action_task, (0.2, 0, 0), atol=1e-6)
    pinned = ShieldRuntime(v1, TASK, OBS_DIM, 3, epsilon_override=0.5)
    pinned.swap_policy(v2, _sha(v2), 2)
    assert pinned.decide(_at(0.55)).epsilon == pytest.approx(0.5)


@pytest.mark.parametrize("problem", ["sha", "truncated", "task", "horizon"])
def test_bad_policy_refused_old_one_keeps_running(tmp_path, problem):
    runtime = ShieldRuntime(known_risk_folder(tmp_path / "v1"), TASK, OBS_DIM, 3)
    bad = known_risk_folder(tmp_path / "bad", action=(0.1, 0, 0), policy_version=2,
                            task="bounded_push" if problem == "task" else TASK,
                            horizon=5 if problem == "horizon" else 10)
    sha = "0" * 64 if problem == "sha" else _sha(bad)
    if problem == "truncated":
        data = (bad / "risk.onnx").read_bytes()
        (bad / "risk.onnx").write_bytes(data[:100])
    with pytest.raises(FarlInputError) as error:
        runtime.swap_policy(bad, sha, 2)
    assert {"sha": "differs from the announcement", "truncated": "sha256 differs from manifest.json",
            "task": "models are for task 'bounded_push'", "horizon": "horizon 5 differs"}[problem] in str(error.value)
    d = runtime.decide(_at(0.55))
    assert d.policy_version == 1
    np.testing.assert_allclose(d.action_task, (0.5, 0, 0), atol=1e-6)


def test_a_policy_from_outside_the_learners_folder_is_refused(tmp_path):
    """Another stack on the same ROS domain may announce valid folders: only our learner's count."""
    runtime = ShieldRuntime(known_risk_folder(tmp_path / "v1"), TASK, OBS_DIM, 3,
                            policy_root=tmp_path / "our_learner")
    stranger = known_risk_folder(tmp_path / "their_learner" / "v0002", action=(0.3, 0, 0), policy_version=2)
    with pytest.raises(FarlInputError, match="outside this stack's learner folder"):
        runtime.swap_policy(stranger, _sha(stranger), 2)
    ours = known_risk_folder(tmp_path / "our_learner" / "policies" / "v0002", action=(0.3, 0, 0), policy_version=2)
    runtime.swap_policy(ours, _sha(ours), 2)
    assert runtime.decide(_at(0.5)).policy_version == 2

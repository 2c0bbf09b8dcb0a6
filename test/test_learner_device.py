"""The learner's torch device: cpu by default, cuda on request (an error without a GPU), auto picks.

Whatever device trains, what leaves the learner (model folders, its state
file) is CPU data the shield and a CPU-only restart can read. The CUDA test
runs only where torch sees a GPU.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from farl_common.errors import FarlInputError  # noqa: E402
from farl_common.paths import config_dir  # noqa: E402
from farl_control.launching.stack import load_stack  # noqa: E402
from farl_control.shield.manifest import load_manifest  # noqa: E402
from farl_learner.config import load_farl_config  # noqa: E402
from farl_learner.device import resolve_device  # noqa: E402
from farl_learner.learner_core import STATE_FILE, LearnerCore  # noqa: E402
from model_folders import ACTION_DIM, OBS_DIM, TASK, untrained_folder  # noqa: E402

CUDA = torch.cuda.is_available()


@pytest.mark.parametrize("choice, cuda_available, expected", [
    ("cpu", False, "cpu"), ("cpu", True, "cpu"), ("auto", False, "cpu"), ("auto", True, "cuda"), ("cuda", True, "cuda")])
def test_resolve_device(choice, cuda_available, expected):
    assert resolve_device(choice, cuda_available=cuda_available).type == expected


def test_cuda_without_a_gpu_is_one_line_that_names_the_ways_out():
    with pytest.raises(FarlInputError) as caught:
        resolve_device("cuda", cuda_available=False)
    line = str(caught.value)
    assert line.startswith("<input>: parameter device: cuda requested but torch sees no CUDA GPU")
    assert "auto" in line and "TORCH_VARIANT" in line


def test_an_unknown_device_is_refused():
    with pytest.raises(FarlInputError, match="'gpu' is not one of cpu, cuda, auto"):
        resolve_device("gpu")


def test_the_stack_passes_the_launch_argument_and_keeps_cpu_the_default():
    stack = load_stack(TASK)
    learner = {n.name: n for n in stack.resolve({})}["learner"]
    assert learner.parameters["device"] == "cpu"
    learner = {n.name: n for n in stack.resolve({"learner_device": "auto"})}["learner"]
    assert learner.parameters["device"] == "auto"


def episode(rng, n=40) -> dict:
    obs = rng.normal(0.4, 0.1, (n + 1, OBS_DIM)).astype(float)
    return {"task": TASK, "obs": obs[:-1].tolist(), "next_obs": obs[1:].tolist(),
            "action": rng.uniform(-1, 1, (n, ACTION_DIM)).tolist(), "reward": rng.normal(size=n).tolist(),
            "done": [False] * (n - 1) + [True]}


def learner(tmp_path, device: str) -> LearnerCore:
    models = untrained_folder(tmp_path / "models")
    cfg = load_farl_config(str(config_dir() / "farl" / "franka" / f"{TASK}.yaml"))
    return LearnerCore(TASK, models, tmp_path / "run", cfg, episodes_per_update=2, min_steps_per_update=8,
                       device=device)


def update_and_check(core: LearnerCore) -> None:
    rng = np.random.default_rng(0)
    for _ in range(2):
        core.add_episode(episode(rng))
    announcement = core.update()
    load_manifest(announcement.path, expect_task=TASK, expect_obs_dim=OBS_DIM,
                  expect_action_dim=ACTION_DIM)  # what the shield does, ONNX graphs included
    saved = torch.load(core.run_dir / STATE_FILE, weights_only=True)  # no map_location: devices as saved
    for part in ("policy", "value"):
        assert {t.device.type for t in saved[part].values()} == {"cpu"}
    assert {t.device.type for s in saved["optimizer"]["state"].values() for t in s.values()} == {"cpu"}
    cpu_restart = LearnerCore(TASK, core.pretrained_dir, core.run_dir, core.cfg, device="cpu")
    assert cpu_restart.resumed and cpu_restart.version == 1


def test_the_learner_trains_on_the_cpu_by_default(tmp_path):
    core = learner(tmp_path, "cpu")
    assert core.device.type == "cpu"
    update_and_check(core)


@pytest.mark.skipif(CUDA, reason="this machine has a GPU")
def test_asking_for_cuda_on_a_cpu_machine_stops_the_learner_in_one_line(tmp_path):
    with pytest.raises(FarlInputError, match="cuda requested"):
        learner(tmp_path, "cuda")


@pytest.mark.skipif(not CUDA, reason="torch sees no CUDA GPU here")
def test_the_learner_trains_on_cuda_and_writes_cpu_folders_and_state(tmp_path):
    core = learner(tmp_path, "cuda")
    assert next(core.policy.parameters()).device.type == "cuda"
    update_and_check(core)


def test_the_learner_weights_recovery_and_operator_steps_from_the_episode_payload(tmp_path):
    """`source` == recovery gets ppo.recovery_pg_weight, an intervention 0, the task's own steps 1."""
    core = learner(tmp_path, "cpu")
    rng = np.random.default_rng(1)
    ep = episode(rng, n=4)
    ep["source"] = ["task", "recovery", "recovery", "task"]
    ep["intervention"] = [False, False, False, True]
    rollout = core._rollout([ep])
    w = core.cfg.ppo.recovery_pg_weight
    assert rollout.pg_weight == [1.0, w, w, 0.0]


def test_with_a_trigger_penalty_the_learner_learns_on_the_refused_proposal_with_the_penalty(tmp_path):
    """Shielding with punishment: at a recovery step pi_task's proposal (action_task), reward - penalty, weight 1."""
    core = learner(tmp_path, "cpu")
    core.cfg.ppo.trigger_penalty = 2.0
    rng = np.random.default_rng(2)
    ep = episode(rng, n=3)
    ep["source"] = ["task", "recovery", "task"]
    ep["action_task"] = [[0.5] * ACTION_DIM, [0.9] * ACTION_DIM, [0.1] * ACTION_DIM]
    rollout = core._rollout([ep])
    assert rollout.pg_weight == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(rollout.action[1], [0.9] * ACTION_DIM)
    np.testing.assert_allclose(rollout.action[0], np.clip(ep["action"][0], -1, 1), rtol=1e-6)  # executed = proposed
    assert rollout.reward[1] == pytest.approx(ep["reward"][1] - 2.0)
    assert rollout.reward[0] == pytest.approx(ep["reward"][0])

"""Offline pre-training pieces: BC, clipped offline improvement, world model, and the entry functions."""
from __future__ import annotations

import json

import numpy as np
import torch

from farl_learner.agents.bc import bc_ensemble
from farl_learner.agents.offline import improve_policy
from farl_learner.agents.transitions import Transitions
from farl_learner.agents.world_model_agent import constraint_recall, train_world_model
from farl_learner.config import BCConfig, FarlConfig, NetworkConfig, OfflineConfig, WorldModelConfig, apply_overrides
from farl_learner.export import load_manifest
from farl_learner.models import GaussianPolicy
from farl_learner.training.export import export
from farl_learner.training.finetune import finetune
from farl_learner.training.pretrain import pretrain
from farl_learner.training.toy import ReachEnv, expert, toy_datasets

torch.set_num_threads(1)
SMALL = NetworkConfig(policy_hidden=(32, 32), value_hidden=(32, 32))


def test_bc_ensemble_clones_the_expert():
    demos = toy_datasets(seed=0, task_episodes=20, recovery_episodes=2, failure_episodes=2)["task"]
    members, curves = bc_ensemble(demos, BCConfig(ensemble_size=2, steps=600, learning_rate=3e-3), SMALL, seed=0,
                                  progress=False)
    assert len(members) == 2
    expert_actions = np.stack([expert(o) for o in demos.obs])
    for member, curve in zip(members, curves):
        assert curve[-1] < curve[0]
        with torch.no_grad():
            mean = member(torch.as_tensor(demos.obs)).numpy()
        assert np.mean(np.abs(mean - expert_actions)) < 0.25


def test_clipped_offline_improvement_climbs_a_known_q():
    """With Q(s, a) = -(a - 0.5)^2 the improved mean must move from 0 toward 0.5, by clipped steps."""
    torch.manual_seed(0)
    n = 256
    data = Transitions.from_arrays({"obs": np.random.default_rng(0).normal(size=(n, 2)), "action": np.zeros((n, 1)),
                                    "next_obs": np.zeros((n, 2))})
    policy = GaussianPolicy(2, 1, (16,), init_log_std=-1.0)
    torch.nn.init.zeros_(policy.net[-1].weight)
    torch.nn.init.zeros_(policy.net[-1].bias)
    cfg = OfflineConfig(policy_steps=300, policy_lr=3e-3, old_policy_interval=50, batch_size=128)
    improve_policy(policy, lambda s, a: -((a[..., 0] - 0.5) ** 2), data, cfg, seed=0, progress=False)
    with torch.no_grad():
        mean = float(policy(torch.as_tensor(data.obs)).mean())
    assert 0.3 < mean < 0.7


def test_sequences_are_masked_after_the_episode_ends():
    n = 6
    data = Transitions.from_arrays({
        "obs": np.arange(n)[:, None].repeat(2, 1), "action": np.zeros((n, 1)), "next_obs": np.zeros((n, 2)),
        "done": np.array([0, 1, 0, 0, 0, 0], bool), "episode_id": np.array([0, 0, 1, 1, 1, 2])})
    seq = data.sequences(np.array([0, 2, 4, 5]), horizon=3)
    assert seq["mask"].T.tolist() == [[1, 1, 0], [1, 1, 1], [1, 0, 0], [1, 0, 0]]


def test_world_model_learns_the_rare_failures():
    data = toy_datasets(seed=1, task_episodes=20, recovery_episodes=2, failure_episodes=120)
    train, holdout = data["failure"].split_episodes(0.25, seed=0)
    cfg = WorldModelConfig(latent_dim=16, hidden=(64, 64), horizon=3, steps=400, batch_size=64, learning_rate=3e-3)
    wm, curve = train_world_model(Transitions.concat([data["task"], train]), cfg, seed=0, progress=False)
    assert curve[-1]["loss"] < curve[0]["loss"]
    quality = constraint_recall(wm, holdout)
    assert quality["recall@0.5"] > 0.6 and quality["false_alarm@0.5"] < 0.2, quality
    assert "constraint" in repr(wm) and "parameters" in repr(wm)


def test_pretrain_finetune_export_on_the_toy_task(tmp_path):
    cfg = apply_overrides(FarlConfig(task="toy"), {
        "networks.policy_hidden": [32, 32], "networks.value_hidden": [32, 32],
        "bc.ensemble_size": 2, "bc.steps": 100, "offline.critic_steps": 100, "offline.policy_steps": 30,
        "recovery_bc.steps": 100, "recovery_offline.critic_steps": 50, "recovery_offline.policy_steps": 30,
        "world_model.steps": 150, "world_model.hidden": [32, 32], "world_model.latent_dim": 8,
        "world_model.batch_size": 64, "risk.horizon": 4, "ppo.num_steps": 100, "ppo.update_epochs": 2,
        "ppo.num_minibatches": 2,
        "online.eval_episodes": 3})
    metrics = pretrain("toy", None, tmp_path / "pre", cfg, datasets=toy_datasets(seed=0, failure_episodes=60),
                       progress=False)
    calibration = metrics["calibration"]
    if calibration["limited_by"] == "miss_rate":
        assert calibration["miss_rate"] <= 0.05
    else:
        assert calibration["limited_by"] == "needless_trigger_rate" and calibration["needless_trigger_rate"] <= 0.25
    assert set(metrics["timings"]) == {"task_policy_s", "recovery_policy_s", "world_model_s", "calibration_s"}
    assert json.loads((tmp_path / "pre" / "pretrain.json").read_text())["config"]["risk"]["horizon"] == 4

    result = finetune("toy", tmp_path / "pre", tmp_path / "ft", method="farl", steps=200, cfg=cfg,
                      env=ReachEnv(seed=0), progress=False, count_needless=True)
    counters = result["counters"]
    assert counters["steps"] == 200 and counters["updates"] == 2
    assert counters["failure_episodes"] == sum(counters["episode_failed"])
    assert counters["needless_checked"] == counters["shield_triggers"] >= counters["needless_triggers"]
    assert counters["shield_misses"] + counters["recovery_failures"] == counters["failure_steps"]
    assert (tmp_path / "ft" / "finetune.json").is_file() and (tmp_path / "ft" / "task_policy.pt").is_file()

    report = export("toy", tmp_path / "pre", tmp_path / "onnx", cfg, policy_dir=tmp_path / "ft")
    assert max(report["parity_max_abs_diff"].values()) < 1e-4
    manifest = load_manifest(tmp_path / "onnx", expect_task="toy")
    assert manifest.horizon == 4 and manifest.epsilon_safe == metrics["calibration"]["epsilon_safe"]


def test_rollout_scores_pick_the_member_and_gate_its_improvement():
    """With an evaluator, a member keeps its offline improvement only if its score did not drop,
    and the best-scoring version goes online (not the critic's favourite)."""
    from farl_learner.agents.uni_o4 import pretrain_task_policy

    demos = toy_datasets(seed=0, task_episodes=10, recovery_episodes=2, failure_episodes=2)["task"]
    cfg = apply_overrides(FarlConfig(task="toy"), {
        "networks.policy_hidden": [16, 16], "networks.value_hidden": [16, 16], "bc.ensemble_size": 3,
        "bc.steps": 30, "offline.critic_steps": 20, "offline.policy_steps": 10})
    calls: list[GaussianPolicy] = []
    # Scores in call order: 3 members after BC, then the same 3 after improvement.
    scores = [0.5, 0.2, 0.4, 0.3, 0.6, 0.9]

    def evaluate(policy):
        calls.append(policy)
        return {"score": scores[len(calls) - 1]}

    result = pretrain_task_policy(demos, cfg, progress=False, evaluate=evaluate)
    m = result.metrics
    assert m["improvement_kept"] == [False, True, True]  # member 0 dropped 0.5 -> 0.3: its BC version stays
    assert m["chosen_member"] == 2 and m["chosen_eval"]["score"] == 0.9
    assert result.policy is calls[5]  # the improved member 2, the very object that was scored
    assert m["selected_by"] == "evaluation rollouts"

"""FARL's two ablations and the method registry: every `farl finetune --method` runs on the toy task.

- farl-qrisk: a Recovery-RL critic learns the discounted failure probability
  offline and replaces C_H as the trigger (agents/q_risk.py).
- farl-mppi: the trigger stays C_H, the executed action is planned by MPPI in
  the world model instead of pi_rec's (agents/mppi.py).
"""
from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pytest
import torch

from farl_learner.agents.mppi import mppi_first_actions, sequence_scores
from farl_learner.agents.q_risk import QRisk, calibrate_q_risk, train_q_risk
from farl_learner.agents.transitions import Transitions
from farl_learner.config import AblationConfig, FarlConfig, RiskConfig, apply_overrides
from farl_learner.data.format import Dataset, load_dataset, save_dataset
from farl_learner.models import GaussianPolicy
from farl_learner.training.finetune import finetune
from farl_learner.training.io import FAILURE_DATA
from farl_learner.training.methods import METHODS
from farl_learner.training.pretrain import pretrain
from farl_learner.training.toy import ReachEnv, toy_datasets


# ---------------------------------------------------------------- Q_risk

def chain(n_episodes: int = 200, length: int = 6) -> Transitions:
    """1-D chains: obs = position k; action +1 walks right, -1 stays; reaching the end with +1 fails.

    Under "always +1" from position k the failure comes after (length - 1 - k) more steps, so the
    true Q_risk(k, +1) = gamma^(length - 1 - k), and Q_risk(k, -1) = 0 for a policy that then stops.
    """
    rows = {name: [] for name in ("obs", "action", "cost", "done", "episode_id", "next_obs")}
    rng = np.random.default_rng(0)
    for episode in range(n_episodes):
        for k in range(length):
            action = 1.0 if rng.random() < 0.7 else -1.0
            fails = action > 0 and k == length - 1
            nxt = k + 1 if action > 0 and not fails else k
            for name, value in (("obs", [k]), ("action", [action]), ("cost", float(fails)), ("done", fails),
                                ("episode_id", episode), ("next_obs", [nxt])):
                rows[name].append(value)
            if fails or action < 0:
                rows["done"][-1] = True
                break
    arrays = {k: np.asarray(v, dtype=np.float32 if k in ("obs", "action", "next_obs", "cost") else None)
              for k, v in rows.items()}
    return Transitions.from_arrays(arrays)


class AlwaysRight(torch.nn.Module):
    def forward(self, obs):
        return torch.ones(obs.shape[0], 1)


def test_q_risk_learns_the_discounted_failure_probability_of_walking_on():
    data = chain()
    cfg = AblationConfig(q_risk_gamma=0.5, q_risk_steps=3000, q_risk_batch_size=128, q_risk_learning_rate=3e-3,
                         q_risk_tau=0.05)
    q, losses = train_q_risk(data, AlwaysRight(), cfg, horizon=5, seed=0, hidden=(32, 32))
    positions = torch.arange(6, dtype=torch.float32)[:, None]
    walk_on = q(positions, torch.ones(6, 1)).numpy()
    expected = 0.5 ** (5 - np.arange(6))  # 1 at the end, halving per step back
    np.testing.assert_allclose(walk_on, expected, atol=0.08)
    assert losses[-1] < losses[0]


def test_q_risk_threshold_is_calibrated_by_farls_rule_on_held_out_episodes():
    data = chain()
    q, _ = train_q_risk(data, AlwaysRight(), AblationConfig(q_risk_gamma=0.5, q_risk_steps=1500,
                                                            q_risk_learning_rate=3e-3, q_risk_tau=0.05),
                        horizon=2, seed=0, hidden=(32, 32))
    result = calibrate_q_risk(q, data, RiskConfig(horizon=2, target_miss_rate=0.05, max_needless_trigger_rate=0.25))
    assert result["miss_rate"] <= 0.05 or result["limited_by"] == "needless_trigger_rate"
    assert 0.0 < result["epsilon_safe"] < 1.0 and result["recall"] == pytest.approx(1 - result["miss_rate"])


# ---------------------------------------------------------------- MPPI

class LineModel(torch.nn.Module):
    """A world model on a line: z is the position, a moves it; reward +a (go right); failure beyond z > 1."""

    def encode(self, obs):
        return obs

    def next(self, z, a):
        return z + 0.5 * a

    def decode(self, z):
        return z

    def reward(self, z, a):
        return a[:, 0]

    def failure_prob(self, z, a):
        return ((z + 0.5 * a)[:, 0] > 1.0).float()

    def V(self, z):
        return torch.zeros(z.shape[0])


class Rightward(torch.nn.Module):
    def forward(self, obs):
        return torch.ones(obs.shape[0], 1)


def test_sequence_scores_add_discounted_reward_and_charge_predicted_failures():
    z0 = torch.tensor([[0.0]])
    actions = torch.tensor([[[[1.0], [1.0], [1.0]], [[1.0], [0.0], [0.0]]]])  # [1 state, 2 sequences, 3 steps]
    scores = sequence_scores(LineModel(), z0, actions, gamma=0.5, risk_weight=10.0)
    # right x3: z 0 -> .5 -> 1 -> 1.5; step 2 crosses 1: reward 1 + .5 + .25 - 10 * .25 = -0.75
    # right then stop: reward 1, never fails
    torch.testing.assert_close(scores, torch.tensor([[-0.75, 1.0]]))


def test_mppi_turns_away_from_a_predicted_failure_the_task_policy_walks_into():
    cfg = AblationConfig(mppi_samples=256, mppi_iterations=4, mppi_horizon=3, mppi_noise_std=0.6,
                         mppi_temperature=0.1, mppi_risk_weight=10.0)
    generator = torch.Generator().manual_seed(0)
    near_edge = mppi_first_actions(LineModel(), Rightward(), torch.tensor([[0.9]]), cfg, 0.9, generator)
    far = mppi_first_actions(LineModel(), Rightward(), torch.tensor([[-3.0]]), cfg, 0.9, generator)
    assert float(near_edge[0, 0]) < 0.2  # one more full step right would fail: the plan holds back
    assert float(far[0, 0]) > 0.5  # nothing to fear: the plan keeps going right


# ---------------------------------------------------------------- every method through finetune()

@pytest.fixture(scope="module")
def toy_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy") / "pre"
    cfg = small_config()
    data = toy_datasets(seed=0, failure_episodes=60)
    pretrain("toy", None, folder, cfg, datasets=data, progress=False)
    failure = data["failure"]
    save_dataset(folder / FAILURE_DATA, Dataset(task="toy", meta={"policy": "toy drifter"}, **{
        f.name: getattr(failure, f.name) for f in fields(Transitions)}))
    return folder


def small_config() -> FarlConfig:
    return apply_overrides(FarlConfig(task="toy"), {
        "networks.policy_hidden": [32, 32], "networks.value_hidden": [32, 32],
        "bc.ensemble_size": 1, "bc.steps": 100, "offline.critic_steps": 50, "offline.policy_steps": 20,
        "recovery_bc.steps": 100, "recovery_offline.critic_steps": 50, "recovery_offline.policy_steps": 20,
        "world_model.steps": 150, "world_model.hidden": [32, 32], "world_model.latent_dim": 8,
        "world_model.batch_size": 64, "risk.horizon": 4, "ppo.num_steps": 100, "ppo.update_epochs": 2,
        "ppo.num_minibatches": 2, "online.eval_episodes": 2, "ablation.q_risk_steps": 300,
        "ablation.mppi_samples": 16, "ablation.mppi_horizon": 4})


@pytest.mark.parametrize("method", METHODS)
def test_every_method_fine_tunes_the_same_pretrained_folder(method, toy_folder, tmp_path):
    result = finetune("toy", toy_folder, tmp_path / method, method=method, steps=200, cfg=small_config(),
                      env=[ReachEnv(seed=0), ReachEnv(seed=1)], progress=False)
    counters = result["counters"]
    assert result["method"] == method and counters["steps"] == 200 and counters["updates"] == 2
    written = json.loads((tmp_path / method / "finetune.json").read_text())
    assert written["method"] == method
    shielded = method in ("farl", "farl-qrisk", "farl-mppi")
    assert (result["epsilon_safe"] is not None) == shielded
    if not shielded:
        assert counters["shield_triggers"] == 0
    if method in ("ppo-lag", "p3o", "cpo"):
        assert all("episode_cost" in update for update in result["ppo_updates"])
    if method == "farl-qrisk":
        assert (tmp_path / method / "q_risk.pt").is_file()
        assert result["q_risk"]["epsilon_risk"] == result["epsilon_safe"]


def test_the_q_risk_ablation_without_failure_data_says_which_file_is_missing(tmp_path, toy_folder):
    import shutil

    from farl_common.errors import FarlInputError

    folder = tmp_path / "no_failure_data"
    shutil.copytree(toy_folder, folder)
    (folder / FAILURE_DATA).unlink()
    with pytest.raises(FarlInputError, match="failure_data.npz.*farl pretrain"):
        finetune("toy", folder, tmp_path / "out", method="farl-qrisk", steps=10, cfg=small_config(),
                 env=ReachEnv(seed=0), progress=False)


# ---------------------------------------------------------------- eps_safe for the run's own risk settings

def test_a_run_at_another_operating_point_recalibrates_eps_safe_on_the_same_held_out_episodes(toy_folder):
    from farl_learner.training.finetune import load_pretrained, shield_threshold
    from farl_learner.training.pretrain import calibrate

    models = load_pretrained(toy_folder, "toy")
    stored = models["calibration"]["epsilon_safe"]
    epsilon, facts = shield_threshold(models, small_config(), toy_folder)
    assert (epsilon, facts["source"]) == (stored, "model folder")  # the settings it was calibrated under

    stricter = apply_overrides(small_config(), {"risk.max_needless_trigger_rate": 0.02, "risk.target_miss_rate": 0.0})
    epsilon, facts = shield_threshold(models, stricter, toy_folder)
    failure = Transitions.from_arrays(load_dataset(toy_folder / FAILURE_DATA))
    _, holdout = failure.split_episodes(stricter.risk.holdout_fraction, stricter.seed)
    expected = calibrate(models["world_model"], models["policy"], holdout, stricter)
    assert facts["source"] == "recalibrated" and epsilon == expected["epsilon_safe"] != stored
    assert facts["needless_trigger_rate"] <= 0.02
    assert facts["changed"]["max_needless_trigger_rate"] == [small_config().risk.max_needless_trigger_rate, 0.02]

    fixed = apply_overrides(stricter, {"risk.epsilon_safe": 0.5})
    assert shield_threshold(models, fixed, toy_folder)[0] == 0.5  # a fixed eps_safe always wins


def test_a_new_operating_point_without_failure_data_says_what_to_do(tmp_path, toy_folder):
    import shutil

    from farl_common.errors import FarlInputError
    from farl_learner.training.finetune import load_pretrained, shield_threshold

    folder = tmp_path / "no_failure_data"
    shutil.copytree(toy_folder, folder)
    (folder / FAILURE_DATA).unlink()
    other = apply_overrides(small_config(), {"risk.max_needless_trigger_rate": 0.1})
    with pytest.raises(FarlInputError, match="max_needless_trigger_rate.*risk.epsilon_safe.*farl pretrain"):
        shield_threshold(load_pretrained(folder, "toy"), other, folder)

"""C_H against hand-computed values, eps_safe calibration, failure labels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from farl_learner.agents.transitions import Transitions, steps_to_failure
from farl_learner.risk import calibrate_epsilon, evaluate_epsilon, h_step_risk

torch.set_num_threads(1)


class ClockWorldModel(torch.nn.Module):
    """z = [step k, obs...]; P(C = 1) at step k is probs[k], or first_prob if a[0] > 0.5 at k = 0."""

    def __init__(self, probs: list[float], first_prob: float | None = None):
        super().__init__()
        self.probs = torch.tensor(probs)
        self.first_prob = first_prob

    def encode(self, obs):
        return torch.cat([torch.zeros(obs.shape[0], 1), obs], -1)

    def next(self, z, a):
        return torch.cat([z[:, :1] + 1, z[:, 1:] + a[:, :1]], -1)

    def decode(self, z):
        return z[:, 1:]

    def failure_prob(self, z, a):
        p = self.probs[z[:, 0].long()]
        if self.first_prob is not None:
            p = torch.where((z[:, 0] == 0) & (a[:, 0] > 0.5), torch.tensor(self.first_prob), p)
        return p


class ConstantPolicy(torch.nn.Module):
    def forward(self, obs):
        return torch.full((obs.shape[0], 1), 0.1)


def test_risk_is_the_discounted_sum_of_per_step_failure_probabilities():
    probs, gamma, horizon = [0.1, 0.2, 0.05, 0.5, 0.3], 0.8, 4
    risk, step_prob, states = h_step_risk(ClockWorldModel(probs), ConstantPolicy(), torch.zeros(3, 2), horizon, gamma)
    expected = sum(gamma**k * p for k, p in enumerate(probs))  # 0.1 + 0.16 + 0.032 + 0.256 + 0.12288
    assert risk.shape == (3,)
    assert torch.allclose(risk, torch.full((3,), expected))
    assert torch.allclose(step_prob[0], torch.tensor(probs))
    # The predicted path: the given obs, then the policy's constant 0.1 steps in dim 0.
    assert states.shape == (3, horizon + 1, 2)
    assert torch.allclose(states[0, :, 0], torch.arange(horizon + 1) * 0.1)


def test_horizon_zero_is_the_one_step_probability_and_first_action_is_judged():
    model = ClockWorldModel([0.3, 0.9], first_prob=0.7)
    risk, _, _ = h_step_risk(model, ConstantPolicy(), torch.zeros(1, 2), 0, 0.9)
    assert float(risk) == pytest.approx(0.3)
    risky = h_step_risk(model, ConstantPolicy(), torch.zeros(1, 2), 1, 0.5, first_action=torch.ones(1, 1))[0]
    assert float(risky) == pytest.approx(0.7 + 0.5 * 0.9)


def test_calibration_keeps_misses_under_target_with_the_largest_epsilon():
    rng = np.random.default_rng(0)
    to_failure = np.where(rng.random(2000) < 0.3, rng.integers(0, 5, 2000), np.inf)
    risk = np.where(np.isfinite(to_failure), rng.uniform(0.5, 3.0, 2000), rng.uniform(0.0, 1.5, 2000))
    cal = calibrate_epsilon(risk, to_failure, horizon=4, target_miss_rate=0.05)
    assert cal.miss_rate <= 0.05
    positives = np.sort(risk[to_failure <= 4])
    # The next failure-preceding risk above eps would push the miss rate over the target.
    above = positives[positives > cal.epsilon_safe][0]
    assert evaluate_epsilon(risk, to_failure, 4, above).miss_rate > 0.05
    assert 0.0 < cal.needless_trigger_rate < 1.0
    assert cal.n_failure_preceding + cal.n_safe == 2000


def test_steps_to_failure_counts_within_each_episode():
    cost = np.array([0, 0, 1, 0, 0, 0, 1], np.float32)
    episode = np.array([0, 0, 0, 1, 1, 2, 2])
    n = len(cost)
    data = Transitions.from_arrays({"obs": np.zeros((n, 2)), "action": np.zeros((n, 1)), "next_obs": np.zeros((n, 2)),
                                    "cost": cost, "episode_id": episode})
    assert steps_to_failure(data).tolist() == [2, 1, 0, np.inf, np.inf, 1, 0]


def test_calibration_raises_epsilon_when_it_would_trigger_on_most_safe_states():
    rng = np.random.default_rng(1)
    to_failure = np.where(rng.random(2000) < 0.3, 2.0, np.inf)
    risk = rng.uniform(0.0, 1.0, 2000)  # an uninformative world model: the same risks for both
    strict = calibrate_epsilon(risk, to_failure, horizon=4, target_miss_rate=0.05)
    assert strict.limited_by == "miss_rate" and strict.needless_trigger_rate > 0.9
    capped = calibrate_epsilon(risk, to_failure, horizon=4, target_miss_rate=0.05, max_needless_trigger_rate=0.25)
    assert capped.limited_by == "needless_trigger_rate"
    assert capped.needless_trigger_rate <= 0.25 and capped.epsilon_safe > strict.epsilon_safe
    assert capped.miss_rate > 0.05  # the price, reported honestly


def test_tradeoff_curve_recall_and_needless_rates_per_threshold():
    # Two episodes: one fails at its 4th step, one never fails. H = 2.
    risk = np.array([0.1, 0.5, 0.7, 0.9, 0.2, 0.6, 0.1])
    to_failure = np.array([3, 2, 1, 0, np.inf, np.inf, np.inf])
    from farl_learner.risk import tradeoff_curve

    curve = tradeoff_curve(risk, to_failure, horizon=2)
    at = {round(e, 6): (r, n) for e, r, n in zip(curve["epsilon"], curve["recall"], curve["needless_trigger_rate"])}
    # Positives (<= 2 steps before the failure): risks 0.5, 0.7, 0.9; safe: 0.1, 0.2, 0.6, 0.1.
    assert at[0.5] == (pytest.approx(2 / 3), pytest.approx(1 / 4))   # 0.7, 0.9 > 0.5; 0.6 > 0.5
    assert at[0.6] == (pytest.approx(2 / 3), pytest.approx(0.0))
    assert at[0.9] == (pytest.approx(0.0), pytest.approx(0.0))
    assert curve["recall"] == sorted(curve["recall"], reverse=True)  # higher eps, fewer warnings


def test_warning_lead_time_counts_ticks_from_the_run_of_warnings_to_the_failure():
    from farl_learner.risk import warning_lead_times

    #            episode 0 (fails at index 5)      episode 1 (fails at 3)   episode 2 (no failure)
    risk = np.array([0.9, 0.1, 0.1, 0.8, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.9, 0.9])
    cost = np.array([0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0], dtype=np.float32)
    episode = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    data = Transitions.from_arrays({"obs": np.zeros((12, 1)), "action": np.zeros((12, 1)), "cost": cost,
                                    "episode_id": episode, "next_obs": np.zeros((12, 1))})
    leads = warning_lead_times(risk, steps_to_failure(data), episode, epsilon=0.5)
    # Episode 0: the early lone warning at index 0 does not count; the run 3..5 starts 2 ticks before.
    # Episode 1: never warned. Episode 2 has no failure and is not counted.
    assert leads.tolist() == [2, -1]

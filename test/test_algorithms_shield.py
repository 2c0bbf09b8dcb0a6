"""The shield executes pi_rec exactly when C_H > eps_safe."""
from __future__ import annotations

import numpy as np
import torch

from farl_learner.models import GaussianPolicy
from farl_learner.risk import h_step_risk
from farl_learner.shield import RECOVERY, TASK, Shield

torch.set_num_threads(1)


class PositionRiskModel(torch.nn.Module):
    """P(C = 1) = sigmoid(5 (x - 0.5)) of the first obs dim, which integrates the actions."""

    def encode(self, obs):
        return obs.clone()

    def next(self, z, a):
        return z + torch.nn.functional.pad(0.1 * a, (0, z.shape[1] - a.shape[1]))

    def decode(self, z):
        return z

    def failure_prob(self, z, a):
        return torch.sigmoid(5 * (z[:, 0] - 0.5))


def test_shield_picks_recovery_exactly_when_risk_exceeds_epsilon():
    torch.manual_seed(0)
    task, recovery = GaussianPolicy(3, 1, (8,)), GaussianPolicy(3, 1, (8,))
    model, horizon, gamma = PositionRiskModel(), 4, 0.9
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (200, 3)).astype(np.float32)
    actions = rng.uniform(-1, 1, (200, 1)).astype(np.float32)
    with torch.no_grad():
        risks = h_step_risk(model, task, torch.as_tensor(obs), horizon, gamma, torch.as_tensor(actions))[0].numpy()
    epsilon = float(np.median(risks))
    shield = Shield(task, recovery, model, horizon, gamma, epsilon)
    sources = []
    for o, a, r in zip(obs, actions, risks):
        decision = shield.decide(o, a)
        assert decision.risk == np.float32(r) or abs(decision.risk - r) < 1e-6
        assert decision.epsilon == epsilon
        assert decision.source == (RECOVERY if decision.risk > epsilon else TASK)
        if decision.source == TASK:
            np.testing.assert_array_equal(decision.action, np.clip(a, -1, 1))
        else:
            expected = recovery(torch.as_tensor(o)[None])[0].detach().clamp(-1, 1).numpy()
            np.testing.assert_allclose(decision.action, expected, atol=1e-6)
        assert decision.hand_path.shape == (horizon + 1, 3)
        sources.append(decision.source)
    assert 0 < sources.count(RECOVERY) < len(sources)  # both branches exercised


def test_risk_exactly_at_epsilon_keeps_the_task_action():
    task, recovery = GaussianPolicy(3, 1, (8,)), GaussianPolicy(3, 1, (8,))
    model = PositionRiskModel()
    obs, action = np.array([0.2, 0.0, 0.0], np.float32), np.array([0.3], np.float32)
    with torch.no_grad():
        risk = float(h_step_risk(model, task, torch.as_tensor(obs)[None], 3, 0.9, torch.as_tensor(action)[None])[0])
    assert Shield(task, recovery, model, 3, 0.9, risk).decide(obs, action).source == TASK
    assert Shield(task, recovery, model, 3, 0.9, np.nextafter(np.float32(risk), np.float32(0))).decide(
        obs, action).source == RECOVERY


def test_batched_shield_equals_n_single_decisions():
    """decide_batch (one world-model rollout for N states) gives, row by row, what N decide calls give."""
    torch.manual_seed(1)
    task, recovery = GaussianPolicy(3, 2, (8,)), GaussianPolicy(3, 2, (8,))
    model, horizon, gamma = PositionRiskModel(), 5, 0.9
    rng = np.random.default_rng(1)
    obs = rng.uniform(-1, 1, (16, 3)).astype(np.float32)
    actions = rng.uniform(-1.5, 1.5, (16, 2)).astype(np.float32)  # some outside [-1, 1]: clipped alike
    with torch.no_grad():
        risks = h_step_risk(model, task, torch.as_tensor(obs), horizon, gamma,
                            torch.as_tensor(np.clip(actions, -1, 1)))[0].numpy()
    shield = Shield(task, recovery, model, horizon, gamma, float(np.median(risks)))
    batch = shield.decide_batch(obs, actions)
    singles = [shield.decide(o, a) for o, a in zip(obs, actions)]
    assert batch.action.shape == (16, 2) and batch.triggered.shape == (16,)
    np.testing.assert_allclose(batch.risk, [d.risk for d in singles], rtol=1e-5, atol=1e-6)
    assert batch.sources() == [d.source for d in singles]
    np.testing.assert_allclose(batch.action, np.stack([d.action for d in singles]), atol=1e-6)
    np.testing.assert_array_equal(batch.task_action, np.stack([d.task_action for d in singles]))
    assert 0 < batch.triggered.sum() < 16  # both branches exercised


def test_batched_shield_with_nothing_triggered_returns_the_clipped_task_actions():
    task, recovery = GaussianPolicy(3, 1, (8,)), GaussianPolicy(3, 1, (8,))
    obs = np.zeros((4, 3), np.float32)
    actions = np.array([[2.0], [-2.0], [0.5], [0.0]], np.float32)
    batch = Shield(task, recovery, PositionRiskModel(), 3, 0.9, epsilon_safe=100.0).decide_batch(obs, actions)
    assert not batch.triggered.any()
    np.testing.assert_array_equal(batch.action, np.clip(actions, -1, 1))

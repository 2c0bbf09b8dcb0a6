"""The safe-RL baselines' update rules, each checked against a hand-computed case.

PPO-Lagrangian, P3O and CPO fine-tune the same pretrained policy as Uni-O4 and
FARL with the binary failure cost (agents/ppo_lagrangian.py, p3o.py, cpo.py).
Their equations are in the modules' docstrings; here each rule meets numbers
worked out by hand, CPO's closed-form step meets a brute-force search of the
same problem, and each learner, shown a batch whose costly actions exceed the
limit, makes those actions less likely.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from farl_learner.agents.constrained import make_cost_critic
from farl_learner.agents.cpo import CONSTRAINED, RECOVERY, TRPO, CPOLearner, conjugate_gradient, cpo_direction
from farl_learner.agents.p3o import P3OLearner, p3o_loss
from farl_learner.agents.ppo import Rollout
from farl_learner.agents.ppo_lagrangian import PPOLagrangianLearner, lagrange_step, lagrangian_advantage
from farl_learner.config import PPOConfig, SafeRLConfig
from farl_learner.models import GaussianPolicy, ValueNetwork
from farl_learner.training.online import run_online
from farl_learner.training.toy import ReachEnv


# ---------------------------------------------------------------- PPO-Lagrangian

def test_the_multiplier_rises_by_lr_times_the_cost_gap_and_never_goes_below_zero():
    assert lagrange_step(0.5, episode_cost=0.25, cost_limit=0.05, learning_rate=0.5) == pytest.approx(0.6)
    assert lagrange_step(0.5, episode_cost=0.0, cost_limit=0.05, learning_rate=2.0) == pytest.approx(0.4)
    assert lagrange_step(0.02, episode_cost=0.0, cost_limit=0.05, learning_rate=1.0) == 0.0


def test_the_lagrangian_advantage_is_the_reward_advantage_less_lambda_cost_advantage_over_one_plus_lambda():
    adv = lagrangian_advantage(torch.tensor([1.0, -2.0]), torch.tensor([0.5, 1.0]), multiplier=3.0)
    torch.testing.assert_close(adv, torch.tensor([(1.0 - 1.5) / 4.0, (-2.0 - 3.0) / 4.0]))
    torch.testing.assert_close(lagrangian_advantage(torch.tensor([1.0]), torch.tensor([9.0]), 0.0),
                               torch.tensor([1.0]))  # lambda = 0: plain PPO


# ---------------------------------------------------------------- P3O

def test_p3o_loss_adds_kappa_times_the_violated_cost_surrogate_and_nothing_while_within_the_limit():
    ratio, adv_r, adv_c = torch.tensor([1.1, 0.7]), torch.tensor([1.0, -2.0]), torch.tensor([0.5, -1.0])
    # reward: min(r A, clip(r) A) = [min(1.1, 1.1), min(-1.4, -1.6)] -> mean -0.25
    # cost:   max(r A, clip(r) A) = [max(0.55, 0.55), max(-0.7, -0.8)] -> mean -0.075
    violated = p3o_loss(ratio, adv_r, adv_c, episode_cost=0.3, cost_limit=0.1, kappa=2.0, clip=0.2)
    assert float(violated) == pytest.approx(0.25 + 2.0 * (-0.075 + 0.2))
    within = p3o_loss(ratio, adv_r, adv_c, episode_cost=0.0, cost_limit=0.1, kappa=2.0, clip=0.2)
    assert float(within) == pytest.approx(0.25)


# ---------------------------------------------------------------- CPO

def test_conjugate_gradient_solves_a_symmetric_positive_definite_system():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(5, 5))
    a = torch.tensor(m @ m.T + 5 * np.eye(5), dtype=torch.float64)
    rhs = torch.tensor(rng.normal(size=5), dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, rhs, iters=20)
    torch.testing.assert_close(a @ x, rhs)


def brute_force(g: np.ndarray, b: np.ndarray, c: float, delta: float, h: np.ndarray) -> tuple[float, bool]:
    """max g.x over 1/2 x'Hx <= delta, b.x + c <= 0 in 2-D, by dense search of the feasible set's boundary.

    A linear objective on the convex set (ellipse and half-plane) peaks at an extreme point, and every
    extreme point lies on the ellipse (the chord's ends do too); a half-plane that meets the ellipse at
    all meets its boundary. So the feasible points of the ellipse alone decide both answers.
    Returns (best value, whether the feasible set is empty).
    """
    chol = np.linalg.cholesky(np.linalg.inv(h))  # x = sqrt(2 delta) L u, |u| = 1 traces the ellipse
    angles = np.linspace(0, 2 * np.pi, 400_001)
    points = (math.sqrt(2 * delta) * (chol @ np.stack([np.cos(angles), np.sin(angles)]))).T
    feasible = points[points @ b + c <= 1e-9]
    if len(feasible) == 0:
        return -math.inf, True
    return float((feasible @ g).max()), False


@pytest.mark.parametrize("g, b, c, expected_case", [
    ([1.0, 0.0], [0.0, 1.0], -5.0, TRPO),  # the plane is far outside the trust region
    ([1.0, 0.0], [1.0, 0.0], 0.05, CONSTRAINED),  # the plane cuts right through the reward direction
    ([1.0, 1.0], [1.0, -0.5], -0.05, CONSTRAINED),  # feasible now, but the full TRPO step would cross it
    ([0.0, 1.0], [1.0, 1.0], 0.1, CONSTRAINED),
    ([1.0, 0.0], [1.0, 0.0], 5.0, RECOVERY),  # no point of the trust region satisfies the constraint
])
@pytest.mark.parametrize("h_diag", [(1.0, 1.0), (4.0, 0.5)])
def test_the_cpo_step_is_the_best_point_of_trust_region_and_linearised_constraint(g, b, c, expected_case, h_diag):
    delta = 0.02
    g_t, b_t = torch.tensor(g, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    h = np.diag(h_diag)
    h_inv = torch.tensor(np.linalg.inv(h))
    step, case = cpo_direction(g_t, b_t, c, delta, lambda v: h_inv @ v)
    x = step.numpy()
    if h_diag == (1.0, 1.0):  # the case labels were worked out for the round trust region
        assert case == expected_case
    best, empty = brute_force(np.array(g), np.array(b), c, delta, h)
    if expected_case == RECOVERY:
        assert empty
        # the steepest decrease of b.x on the trust region's boundary: x = -sqrt(2 delta / s) H^-1 b
        s = float(b_t @ h_inv @ b_t)
        np.testing.assert_allclose(x, -math.sqrt(2 * delta / s) * (h_inv @ b_t).numpy(), rtol=1e-9)
        return
    assert 0.5 * x @ h @ x <= delta * (1 + 1e-6)  # inside the trust region
    assert x @ np.array(b) + c <= 1e-6  # satisfies the linearised constraint
    assert float(np.array(g) @ x) == pytest.approx(best, rel=1e-3, abs=1e-5)  # and is the best such point


# ---------------------------------------------------------------- each learner on a costly batch

def costly_rollout(seed: int = 0) -> tuple[GaussianPolicy, ValueNetwork, Rollout]:
    """One-step episodes from a policy centred on 0: reward 0 everywhere, cost 1 where the action > 0.3."""
    torch.manual_seed(seed)
    policy, value = GaussianPolicy(1, 1, (16,), init_log_std=-0.5), ValueNetwork(1, (16,))
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, size=(512, 1)).astype(np.float32)
    with torch.no_grad():
        action = policy.distribution(torch.as_tensor(obs)).sample()
        logprob = policy.log_prob(torch.as_tensor(obs), action).numpy()
    rollout = Rollout()
    for o, a, lp in zip(obs, action.numpy(), logprob):
        rollout.add(o, a, float(lp), 0.0, o, True, True, cost=float(a[0] > 0.3))
    return policy, value, rollout


@pytest.mark.parametrize("learner_class", [PPOLagrangianLearner, P3OLearner, CPOLearner])
def test_a_learner_over_the_cost_limit_makes_the_costly_actions_less_likely(learner_class):
    policy, value, rollout = costly_rollout()
    obs = torch.as_tensor(np.asarray(rollout.obs))
    action = torch.as_tensor(np.asarray(rollout.action))
    costly = torch.as_tensor(np.asarray(rollout.cost)) > 0
    before = float(policy.log_prob(obs, action)[costly].mean().detach())
    ppo = PPOConfig(learning_rate=1e-3, num_minibatches=4, update_epochs=4, target_kl=0.0)
    safe = SafeRLConfig(cost_limit=0.05, lagrangian_init=1.0, cpo_max_kl=0.02)
    learner = learner_class(policy, value, ppo, safe)
    stats = learner.update(rollout, episode_costs=list(rollout.cost))  # J_c ~ 0.3, limit 0.05
    after = float(policy.log_prob(obs, action)[costly].mean().detach())
    assert stats["episode_cost"] == pytest.approx(float(np.mean(rollout.cost)))
    assert after < before - 0.01, stats
    if learner_class is PPOLagrangianLearner:
        assert stats["lagrange_multiplier"] == pytest.approx(1.0 + 0.5 * (stats["episode_cost"] - 0.05))


def test_the_cost_critic_starts_at_zero_with_the_reward_critics_observation_statistics():
    value = ValueNetwork(3, (8,))
    value.normalizer.fit(np.random.default_rng(0).normal(5.0, 2.0, size=(100, 3)))
    critic = make_cost_critic(value)
    obs = torch.randn(4, 3)
    torch.testing.assert_close(critic(obs), torch.zeros(4))
    torch.testing.assert_close(critic.normalizer.mean, value.normalizer.mean)
    assert all(p.requires_grad for p in critic.parameters())


@pytest.mark.parametrize("learner_class", [PPOLagrangianLearner, P3OLearner, CPOLearner])
def test_each_learner_runs_the_online_loop_and_sees_the_episode_costs(learner_class):
    policy, value = GaussianPolicy(2, 1, (16,)), ValueNetwork(2, (16,))
    ppo = PPOConfig(num_steps=100, update_epochs=2, num_minibatches=2)
    learner = learner_class(policy, value, ppo, SafeRLConfig())
    counters, updates = run_online([ReachEnv(seed=s) for s in range(4)], policy, value, ppo, total_steps=400, seed=0,
                                   progress=False, learner=learner)
    assert counters.steps == 400 and counters.updates == 4 == len(updates)
    assert all("episode_cost" in u and "cost_value_loss" in u for u in updates)
    # J_c is the failure rate of the episodes that ended (ReachEnv: cost 1 at a failure, which ends it)
    assert 0.0 <= updates[-1]["episode_cost"] <= 1.0

"""PPO (the online stage of Uni-O4 and FARL) improves a trivial task from scratch."""
from __future__ import annotations

import pytest
import torch

from farl_learner.agents.ppo import compute_gae
from farl_learner.config import PPOConfig
from farl_learner.models import GaussianPolicy, ValueNetwork
from farl_learner.training.online import evaluate, run_online
from farl_learner.training.toy import ReachEnv

torch.set_num_threads(1)


def test_gae_stops_at_episode_ends_and_bootstraps_timeouts():
    reward = torch.tensor([1.0, 1.0, 1.0])
    value = torch.tensor([0.5, 0.5, 0.5])
    # step 0 continues, step 1 ends the episode by a time limit (bootstrap 2.0), step 2 terminates (no bootstrap).
    next_value = torch.tensor([0.5, 2.0, 0.0])
    end = torch.tensor([0.0, 1.0, 1.0])
    adv, ret = compute_gae(reward, value, next_value, end, gamma=0.9, gae_lambda=1.0)
    delta1 = 1.0 + 0.9 * 2.0 - 0.5
    assert torch.allclose(adv, torch.tensor([1.0 + 0.9 * 0.5 - 0.5 + 0.9 * delta1, delta1, 0.5]))
    assert torch.allclose(ret, adv + value)


def test_ppo_improves_reaching_a_target():
    torch.manual_seed(0)
    env = ReachEnv(seed=0)
    policy = GaussianPolicy(2, 1, (32, 32), init_log_std=-0.5)
    value = ValueNetwork(2, (32, 32))
    before = evaluate(env, policy, episodes=20, seed=123)["mean_return"]
    cfg = PPOConfig(learning_rate=3e-3, num_steps=500, update_epochs=4, num_minibatches=4, ent_coef=0.0,
                    target_kl=0.0, gamma=0.95)
    counters, updates = run_online(env, policy, value, cfg, total_steps=6000, seed=0, progress=False)
    after = evaluate(env, policy, episodes=20, seed=123)["mean_return"]
    assert counters.updates == 12 and len(updates) == 12
    assert counters.episodes >= 6000 // 25
    assert after > before + 3.0, (before, after)
    assert after > -4.5, (before, after)  # an expert scores about -1.1, the untrained policy about -9


def test_operator_steps_give_no_policy_gradient_but_train_the_value():
    """Interventions are off-policy: a rollout of only operator steps leaves pi unchanged."""
    from farl_learner.agents.ppo import Rollout, make_optimizer, ppo_update

    torch.manual_seed(0)
    policy, value = GaussianPolicy(2, 1, [8]), ValueNetwork(2, [8])
    cfg = PPOConfig(num_minibatches=1, update_epochs=2, target_kl=0.0, ent_coef=0.0)
    rollout = Rollout()
    for t in range(16):
        rollout.add([0.1 * t, 0.0], [1.0], -1.0, 1.0, [0.1 * t + 0.1, 0.0], 0.0, float(t == 15), pg_weight=0.0)
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    value_before = [p.detach().clone() for p in value.parameters()]
    stats = ppo_update(policy, value, make_optimizer(policy, value, cfg), rollout, cfg)
    assert stats["off_policy_steps"] == 16 and stats["policy_loss"] == 0.0
    assert all(torch.equal(before[n], p) for n, p in policy.named_parameters())
    assert any(not torch.equal(a, b) for a, b in zip(value_before, value.parameters()))


def test_recovery_steps_are_weighted_by_the_config_and_joining_segments_keeps_the_weights():
    """The shield's recovery steps enter the policy gradient with `recovery_pg_weight`; N env segments joined
    into one batch keep every step's weight (operator 0, recovery w, task 1)."""
    from farl_learner.agents.ppo import Rollout
    from farl_learner.training.online import join_segments

    segments = [Rollout(), Rollout()]
    for i, weights in enumerate(([1.0, 0.25, 1.0], [0.0, 1.0, 0.25])):
        for t, w in enumerate(weights):
            segments[i].add([float(t), 0.0], [0.0], 0.0, 0.0, [float(t + 1), 0.0], 0.0, 0.0, pg_weight=w)
    joined = join_segments(segments)
    assert joined.pg_weight == [1.0, 0.25, 1.0, 0.0, 1.0, 0.25]
    assert joined.episode_end == [0.0, 0.0, True, 0.0, 0.0, True]


def test_a_zero_recovery_weight_leaves_pi_task_untouched_by_recovery_only_rollouts():
    from farl_learner.agents.ppo import Rollout, make_optimizer, ppo_update

    torch.manual_seed(0)
    policy, value = GaussianPolicy(2, 1, [8]), ValueNetwork(2, [8])
    cfg = PPOConfig(num_minibatches=1, update_epochs=2, target_kl=0.0, recovery_pg_weight=0.0)
    rollout = Rollout()
    for t in range(16):
        rollout.add([0.1 * t, 0.0], [0.5], -1.0, float(t), [0.1 * t + 0.1, 0.0], 0.0, float(t == 15),
                    pg_weight=cfg.recovery_pg_weight)
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    ppo_update(policy, value, make_optimizer(policy, value, cfg), rollout, cfg)
    assert all(torch.equal(before[n], p) for n, p in policy.named_parameters())
    cfg_full = PPOConfig(num_minibatches=1, update_epochs=2, target_kl=0.0, recovery_pg_weight=1.0)
    rollout.pg_weight = [cfg_full.recovery_pg_weight] * 16
    ppo_update(policy, value, make_optimizer(policy, value, cfg_full), rollout, cfg_full)
    assert any(not torch.equal(before[n], p) for n, p in policy.named_parameters())


def test_a_recovery_weight_outside_0_1_is_refused():
    from farl_learner.config import ConfigProblem

    with pytest.raises(ConfigProblem) as caught:
        PPOConfig(recovery_pg_weight=1.5).check()
    assert caught.value.key == "recovery_pg_weight"

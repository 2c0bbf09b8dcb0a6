"""The online loop over N parallel envs: counts every env's steps and episodes, and its PPO batch is
the N per-env segments joined so that GAE never runs from one env's segment into the next."""
from __future__ import annotations

import numpy as np
import torch

from farl_learner.agents.ppo import Rollout, compute_gae
from farl_learner.config import PPOConfig
from farl_learner.models import GaussianPolicy, ValueNetwork
from farl_learner.shield import Shield
from farl_learner.training.online import EnvBatch, join_segments, run_online
from farl_learner.training.toy import ReachEnv

torch.set_num_threads(1)


def _segment(rewards, ends, terminated):
    r = Rollout()
    for k, (rew, end, term) in enumerate(zip(rewards, ends, terminated)):
        r.add(np.zeros(2), np.zeros(1), 0.0, rew, np.zeros(2), term, end)
    return r


def test_joined_segments_end_each_env_segment_without_changing_bootstraps():
    a = _segment([1.0, 1.0], [False, False], [False, False])  # an episode still running at the update
    b = _segment([2.0, 2.0], [False, True], [False, True])
    joined = join_segments([a, b])
    assert joined.episode_end == [False, True, False, True]
    assert joined.terminated == [False, False, False, True]  # the running episode still bootstraps
    t = joined.tensors()
    value = torch.zeros(4)
    next_value = torch.tensor([0.0, 5.0, 0.0, 0.0])  # V(s') of env a's last next state
    adv, _ = compute_gae(t["reward"], value, next_value, t["episode_end"], gamma=0.5, gae_lambda=1.0)
    # env a's advantages do not see env b's rewards
    assert torch.allclose(adv[:2], torch.tensor([1.0 + 0.5 * (1.0 + 0.5 * 5.0), 1.0 + 0.5 * 5.0]))
    assert torch.allclose(adv[2:], torch.tensor([2.0 + 0.5 * 2.0, 2.0]))


def test_env_batch_resets_an_ended_episode_in_the_same_step_and_keeps_the_last_observation():
    envs = EnvBatch([ReachEnv(seed=0, max_episode_steps=2), ReachEnv(seed=1, max_episode_steps=3)])
    obs = envs.reset(seed=5)
    assert obs.shape == (2, 2)
    envs.step(np.zeros((2, 1)))
    obs, _, terminated, truncated, infos, final = envs.step(np.ones((2, 1)))
    assert truncated.tolist() == [True, False] and not terminated.any()
    assert final[0, 0] != obs[0, 0] or final[0, 1] != obs[0, 1]  # env 0 restarted, its last obs kept
    np.testing.assert_array_equal(final[1], obs[1])
    assert all("cost" in info for info in infos)


def test_n_envs_are_all_stepped_counted_and_updated_with_num_steps_in_all():
    envs = [ReachEnv(seed=s) for s in range(4)]
    policy, value = GaussianPolicy(2, 1, (16,)), ValueNetwork(2, (16,))
    cfg = PPOConfig(num_steps=100, update_epochs=1, num_minibatches=2)
    counters, updates = run_online(envs, policy, value, cfg, total_steps=402, seed=0, progress=False)
    assert counters.steps == 402  # exactly: on the last round only two of the four envs step
    assert counters.updates == len(updates) == 4  # every 25 steps of each env = 100 transitions
    assert counters.episodes == len(counters.episode_returns) == len(counters.episode_end_steps)
    assert counters.episodes >= 4 * (101 // 25) - 4
    assert counters.failure_episodes == sum(counters.episode_failed)


def test_shielded_loop_counts_every_failure_as_a_miss_or_a_recovery_failure():
    """A shield that always triggers executes only recovery actions: every failure is a recovery failure."""

    policy, value = GaussianPolicy(2, 1, (16,)), ValueNetwork(2, (16,))
    shield = always_risky_shield(policy)
    cfg = PPOConfig(num_steps=80, update_epochs=1, num_minibatches=2)
    counters, _ = run_online([ReachEnv(seed=s) for s in range(8)], policy, value, cfg, total_steps=400, seed=0,
                             shield=shield, progress=False)
    assert counters.shield_triggers == counters.steps == 400
    assert counters.failure_steps > 0
    assert counters.recovery_failures == counters.failure_steps and counters.shield_misses == 0


def always_risky_shield(policy: GaussianPolicy) -> Shield:
    """A shield whose world model calls every proposal risky; pi_rec pushes outward (toward failure)."""

    class AlwaysRisky(torch.nn.Module):
        def encode(self, obs):
            return obs

        def next(self, z, a):
            return z

        def decode(self, z):
            return z

        def failure_prob(self, z, a):
            return torch.ones(z.shape[0])

    class Outward(GaussianPolicy):
        def forward(self, obs):
            return torch.sign(obs[:, :1]) + (obs[:, :1] == 0).float()

    return Shield(policy, Outward(2, 1, (4,)), AlwaysRisky(), 2, 0.9, epsilon_safe=0.5)


def test_with_a_trigger_penalty_ppo_learns_on_the_refused_proposals_and_returns_stay_true():
    """Every step triggers: the PPO batch holds pi_task's proposals (not pi_rec's outward pushes), each
    reward lowered by the penalty; the episode returns counted are the environment's own."""
    batches = []

    class Recorder:  # a learner that keeps each PPO batch instead of learning from it
        def update(self, rollout, episode_costs):
            batches.append(rollout)
            return {}
    policy, value = GaussianPolicy(2, 1, (16,)), ValueNetwork(2, (16,))
    cfg = PPOConfig(num_steps=40, update_epochs=1, num_minibatches=2, trigger_penalty=2.0)
    plain = PPOConfig(num_steps=40, update_epochs=1, num_minibatches=2)
    for config in (cfg, plain):
        run_online([ReachEnv(seed=0)], policy, value, config, total_steps=40, seed=0,
                   shield=always_risky_shield(policy), progress=False, learner=Recorder())
    punished, executed = batches
    recovery_actions = np.sign(np.asarray(executed.obs)[:, :1]) + (np.asarray(executed.obs)[:, :1] == 0)
    np.testing.assert_allclose(np.asarray(executed.action), recovery_actions)  # the executed pi_rec actions
    assert not np.allclose(np.asarray(punished.action), recovery_actions)  # the proposals instead
    assert punished.pg_weight == [1.0] * 40
    # pi_rec is deterministic, so both runs executed the same trajectory: rewards differ by the penalty only
    np.testing.assert_allclose(np.asarray(punished.reward), np.asarray(executed.reward) - 2.0, atol=1e-6)

"""The actor's exploration: every action distributed as the policy's Gaussian, successive draws AR(1)-correlated."""
from __future__ import annotations

import numpy as np
import pytest

from farl_control.shield.runtime import ShieldRuntime
from farl_common.task_spec import ExplorationNoise
from model_folders import OBS_DIM, TASK, known_risk_folder


def _draws(correlation: float, n: int = 20000, episodes: int = 1) -> np.ndarray:
    noise = ExplorationNoise(3, correlation, np.random.default_rng(0))
    out = []
    for _ in range(episodes):
        noise.reset()
        out.append(np.array([noise.sample() for _ in range(n // episodes)]))
    return np.concatenate(out)


@pytest.mark.parametrize("rho", [0.0, 0.9])
def test_each_draw_is_standard_normal_and_successive_draws_correlate_by_rho(rho):
    z = _draws(rho)
    assert z.mean() == pytest.approx(0.0, abs=0.1)
    assert z.std() == pytest.approx(1.0, abs=0.05)
    lag1 = np.mean([np.corrcoef(z[:-1, d], z[1:, d])[0, 1] for d in range(3)])
    assert lag1 == pytest.approx(rho, abs=0.03)


def test_reset_starts_a_fresh_independent_draw():
    noise = ExplorationNoise(3, 0.99, np.random.default_rng(1))
    firsts = []
    for _ in range(2000):
        noise.reset()
        firsts.append(noise.sample())
        noise.sample()
    firsts = np.array(firsts)
    assert firsts.std() == pytest.approx(1.0, abs=0.06)  # not shrunk toward the previous episode's state


def test_correlation_outside_unit_interval_is_refused():
    with pytest.raises(ValueError, match="correlation"):
        ExplorationNoise(3, 1.0, np.random.default_rng(0))


def test_shield_runtime_samples_the_exported_gaussian_with_correlated_draws(tmp_path):
    folder = known_risk_folder(tmp_path / "m", epsilon_safe=10.0)  # never fires; constant mean (0.5, 0, 0)
    runtime = ShieldRuntime(folder, TASK, OBS_DIM, 3, seed=3, noise_correlation=0.9)
    obs = np.array([0.55, 0.0, 0.3, 0.45, -0.15, 0.56, 0.12], dtype=np.float32)
    runtime.new_episode()
    samples, logps = [], []
    for _ in range(4000):
        d = runtime.decide(obs)
        samples.append(d.action_task)
        logps.append(d.log_prob)
    a = np.array(samples)[:, 1]  # mean 0 on y: unclipped most of the time
    assert np.corrcoef(a[:-1], a[1:])[0, 1] == pytest.approx(0.9, abs=0.05)
    # Each proposal is distributed as the exported Gaussian (its log_prob is that density).
    raw_log_std = runtime._graphs.policy.run(["log_std"], {"obs": obs[None]})[0].reshape(-1)
    assert np.log(np.std(a)) == pytest.approx(float(raw_log_std[1]), abs=0.1)
    assert np.isfinite(logps).all()

"""Paired bootstrap CIs and learning curves of the FailureBench protocol."""
from __future__ import annotations

from farl_learner.stats import learning_curve, paired_bootstrap


def test_a_consistent_paired_reduction_has_an_interval_below_zero():
    uni = [100, 120, 90, 110, 105]
    farl = [50, 65, 40, 60, 52]
    r = paired_bootstrap(farl, uni)
    assert r["n"] == 5 and r["excludes_zero"]
    assert r["ci95"][1] < 0 and r["ci95"][0] <= r["mean_diff"] <= r["ci95"][1]
    assert -55 < r["change_pct"] < -45 and r["change_pct_ci95"][1] < 0


def test_noise_around_no_difference_gives_an_interval_covering_zero():
    r = paired_bootstrap([10, 12, 9, 11, 10], [11, 10, 10, 12, 9])
    assert r["ci95"][0] < 0 < r["ci95"][1] and not r["excludes_zero"]


def test_fewer_than_two_pairs_give_no_interval():
    assert paired_bootstrap([], [1, 2])["mean_diff"] is None
    one = paired_bootstrap([3], [8])
    assert one["n"] == 1 and one["ci95"] is None and one["excludes_zero"] is None


def test_curve_counts_failures_by_the_step_their_episode_ended():
    c = learning_curve(end_steps=[100, 250, 400], failed=[True, False, True], returns=[1.0, 2.0, 3.0],
                       total_steps=400, points=4, window=2)
    assert c["steps"] == [100, 200, 300, 400]
    assert c["cumulative_failures"] == [1.0, 1.0, 1.0, 2.0]  # the second episode did not fail
    assert c["return_moving_avg"] == [1.0, 1.0, 1.5, 2.5]

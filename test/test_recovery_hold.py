"""The shield's hysteresis: after a trigger, pi_rec keeps control for a set number of ticks."""
from __future__ import annotations

import numpy as np
import pytest

from farl_common.recovery_hold import RecoveryHold


def test_zero_ticks_is_the_papers_per_tick_rule():
    hold = RecoveryHold(0)
    assert [hold.holds(t) for t in (False, True, False, True, True, False)] == [False, True, False, True, True, False]


def test_each_trigger_restarts_the_hold():
    hold = RecoveryHold(2)
    fired = [False, True, False, False, False, True, False, True, False, False, False]
    assert [hold.holds(t) for t in fired] == [False, True, True, True, False, True, True, True, True, True, False]


def test_parallel_environments_hold_and_reset_independently():
    hold = RecoveryHold(1, environments=3)
    np.testing.assert_array_equal(hold.apply(np.array([True, False, True])), [True, False, True])
    hold.reset(2)  # environment 2's episode ended
    np.testing.assert_array_equal(hold.apply(np.array([False, False, False])), [True, False, False])
    np.testing.assert_array_equal(hold.apply(np.array([False, False, False])), [False, False, False])


@pytest.mark.parametrize("ticks", [-1, 1.5])
def test_a_hold_that_is_not_a_whole_number_of_ticks_is_refused(ticks):
    with pytest.raises(ValueError, match="whole number of ticks"):
        RecoveryHold(ticks)


def test_decisions_for_the_wrong_number_of_environments_are_refused():
    with pytest.raises(ValueError, match="2 decisions for 3 environments"):
        RecoveryHold(1, environments=3).apply(np.array([True, False]))

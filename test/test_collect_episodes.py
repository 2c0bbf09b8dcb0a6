"""The one retry loop of demo generation (farl_learner.data.episodes.collect_episodes): no env needed."""
from __future__ import annotations

import itertools

import pytest

from farl_learner.data.episodes import collect_episodes


def test_keeps_accepted_episodes_in_order_and_counts_attempts():
    outcomes = iter([None, "a", None, "b", "c"])
    kept, attempts = collect_episodes(3, lambda: next(outcomes), max_attempts=10, desc="t", progress=False,
                                      give_up=lambda k, a: "never")
    assert kept == ["a", "b", "c"] and attempts == 5


def test_gives_up_after_max_attempts_with_the_callers_advice():
    counter = itertools.count()
    with pytest.raises(RuntimeError, match=r"only 1 of 3 after 4 attempts; lower the noise"):
        collect_episodes(3, lambda: "x" if next(counter) == 0 else None, max_attempts=4, desc="t", progress=False,
                         give_up=lambda k, a: f"only {k} of 3 after {a} attempts; lower the noise")

"""The simulator reports pauses of its served loop (farl_control.sim.scene.LoopStallWatch).

libfranka expects one robot-state packet per millisecond. When the loop that serves
them pauses (a starved CPU), a client may lose its connection or an arm may be slow
to stop, and the sim node's log must say that the simulator paused, and for how long.
"""
from __future__ import annotations

import pytest

from farl_control.sim.scene import STALL_REPORT_S, LoopStallWatch

pytestmark = pytest.mark.sim  # imports the simulated scene's module (MuJoCo, franky-sim)


def run_steps(watch: LoopStallWatch, times) -> None:
    for t in times:
        watch.step(t)


def test_steps_at_the_loop_rate_are_not_pauses():
    watch = LoopStallWatch(0.05)
    run_steps(watch, [i * 0.001 for i in range(1000)])
    assert watch.take_new() == [] and watch.count == 0


def test_a_pause_is_reported_once_with_its_length():
    watch = LoopStallWatch(0.05)
    run_steps(watch, [0.0, 0.001, 0.181, 0.182])
    gaps = watch.take_new()
    assert gaps == [pytest.approx(0.18)]
    assert watch.take_new() == []  # taken: not reported again
    assert watch.count == 1 and watch.longest_s == pytest.approx(0.18)


def test_the_counters_keep_every_pause_since_start():
    watch = LoopStallWatch(0.05)
    run_steps(watch, [0.0, 0.1, 0.3, 0.301])
    assert len(watch.take_new()) == 2
    run_steps(watch, [0.5])
    assert watch.take_new() == [pytest.approx(0.199)]
    assert watch.count == 3 and watch.longest_s == pytest.approx(0.2)


def test_a_deliberate_pause_such_as_a_scene_reset_is_not_a_stall():
    watch = LoopStallWatch(0.05)
    run_steps(watch, [0.0, 0.001])
    watch.restart()  # the loop ran a reset between these steps
    run_steps(watch, [0.5, 0.501])
    assert watch.take_new() == [] and watch.count == 0


def test_the_default_threshold_is_far_above_the_loop_period():
    assert STALL_REPORT_S >= 0.02  # tens of missed 1 ms state packets, not scheduling jitter

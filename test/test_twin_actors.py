"""The twin's shielded actor: what it executes, and that pi_task's proposal survives the swap.

The online learner trains on the proposal where the shield refused it
(ppo.trigger_penalty), so every tick must hand back the proposal beside the
executed action - also on the ticks the recovery hold keeps pi_rec in control
without a trigger of its own.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from farl_learner.shield import RECOVERY, ShieldDecision
from farl_learner.twin.actors import PolicyActor, ShieldedActor

pytestmark = pytest.mark.sim  # farl_learner.twin imports franky-sim's MuJoCo scene

RECOVERY_ACTION = np.array([0.0, 0.0, 0.5], dtype=np.float32)


class ScriptedShield:
    """Fires on the ticks it is told to; pi_rec always answers RECOVERY_ACTION."""

    def __init__(self, fires: list[bool]):
        self.fires = list(fires)

    def decide(self, obs: np.ndarray, task_action: np.ndarray) -> ShieldDecision:
        fired = self.fires.pop(0)
        return ShieldDecision(action=RECOVERY_ACTION if fired else task_action,
                              source=RECOVERY if fired else "task", risk=1.0 if fired else 0.0, epsilon=0.5,
                              task_action=task_action, hand_path=np.zeros((1, 3)))

    def recovery_batch(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(RECOVERY_ACTION)[None].repeat(len(obs), 1)


class CountingActor(PolicyActor):
    """Proposes [k, 0, 0] on its k-th tick, so each proposal can be told apart."""

    def __init__(self):
        self.ticks = 0

    def reset(self) -> None:
        self.ticks = 0

    def propose(self, obs: np.ndarray) -> np.ndarray:
        self.ticks += 1
        return np.array([self.ticks / 10, 0.0, 0.0], dtype=np.float32)


def run(actor, ticks: int):
    return [actor.step(np.zeros(9, dtype=np.float32)) for _ in range(ticks)]


def test_without_a_shield_the_proposal_is_executed():
    steps = run(CountingActor(), 2)
    assert [s.source for s in steps] == ["task", "task"]
    for s in steps:
        np.testing.assert_array_equal(s.action, s.proposal)


def test_a_trigger_executes_pi_rec_and_keeps_the_refused_proposal():
    steps = run(ShieldedActor(CountingActor(), ScriptedShield([False, True, False])), 3)
    assert [s.source for s in steps] == ["task", RECOVERY, "task"]
    np.testing.assert_array_equal(steps[1].action, RECOVERY_ACTION)
    np.testing.assert_allclose(steps[1].proposal, [0.2, 0.0, 0.0])


def test_held_ticks_execute_pi_rec_and_still_hand_back_each_proposal():
    shield = ScriptedShield([True, False, False, False, False])
    steps = run(ShieldedActor(CountingActor(), shield, hold=2), 5)
    assert [s.source for s in steps] == [RECOVERY, RECOVERY, RECOVERY, "task", "task"]
    np.testing.assert_allclose([s.proposal[0] for s in steps], [0.1, 0.2, 0.3, 0.4, 0.5])
    for s in steps[:3]:
        np.testing.assert_array_equal(s.action, RECOVERY_ACTION)


def test_act_is_step_without_the_proposal():
    action, source, risk = ShieldedActor(CountingActor(), ScriptedShield([True])).act(np.zeros(9))
    assert source == RECOVERY and risk == 1.0
    np.testing.assert_array_equal(action, RECOVERY_ACTION)

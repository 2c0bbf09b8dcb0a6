"""When `farl launch` / `farl run` start a node again: the restart policy, without starting processes.

The end-to-end case (the control node SIGKILLed mid-run in sim, the run finishing) is in
test_required_nodes.py; here each rule of `StackLauncher.restart_crashed` is pinned down.
"""
from __future__ import annotations

import pytest

from farl_control.launching.launcher import StackLauncher
from farl_control.launching.stack import ResolvedNode


class ExitedProcess:
    def __init__(self, code):
        self.code = code
        self.popen = self

    def poll(self):
        return self.code

    def error_line(self):
        return "franka_node: error: the arm's connection did not close"


def launcher_with(code, restarts=2, lifecycle=False):
    node = ResolvedNode("franka", "farl_control", "franka_node", {}, required=True, lifecycle=lifecycle,
                        restarts=restarts)
    launcher = StackLauncher([node])
    launcher.processes = [(node, ExitedProcess(code))]
    spawned = []

    def spawn(n):
        spawned.append(n.name)
        return ExitedProcess(None)  # the new process runs

    launcher._spawn = spawn
    launcher._bring_up_in_background = lambda managed: spawned.append(f"bring up {managed[0][0].name}")
    return launcher, spawned


def crash_again(launcher):
    """The (restarted) node exits with an error once more."""
    node = launcher.processes[0][0]
    launcher.processes = [(node, ExitedProcess(1))]


def test_a_node_that_crashed_is_started_again_and_brought_up_again_if_managed(capsys):
    launcher, spawned = launcher_with(-9, lifecycle=True)
    launcher.restart_crashed()
    assert spawned == ["franka", "bring up franka"]
    assert launcher.required_exit() is None  # the new process runs: the stack goes on
    assert "[launch] franka exited with code -9: franka_node: error: the arm's connection did not close; " \
           "restarting it (restart 1 of 2)" in capsys.readouterr().out


@pytest.mark.parametrize("code", [0, 2])
def test_a_clean_exit_or_a_bad_input_exit_is_not_restarted(code):
    """0 is the node's normal end; 2 is bad input, which a new process would only repeat."""
    launcher, spawned = launcher_with(code)
    launcher.restart_crashed()
    assert spawned == [] and launcher.required_exit().code == code


def test_restarts_are_counted_per_run_and_then_the_exit_ends_the_stack():
    launcher, spawned = launcher_with(1, restarts=2)
    for _ in range(3):
        crash_again(launcher)
        launcher.restart_crashed()
    assert spawned == ["franka", "franka"]
    assert launcher.required_exit().code == 1


def test_nothing_is_restarted_while_the_stack_goes_down():
    launcher, spawned = launcher_with(-15)
    launcher.request_stop()
    launcher.restart_crashed()
    assert spawned == []


def test_a_node_without_restarts_is_never_started_again():
    launcher, spawned = launcher_with(1, restarts=0)
    launcher.restart_crashed()
    assert spawned == [] and launcher.required_exit().code == 1

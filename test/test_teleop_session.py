"""The operator's controls (farl_teleop.session) and the scripted operator's episodes. No ROS."""
from __future__ import annotations

import numpy as np

from farl_common import interface as api
from farl_common.task_config import load_task_config
from farl_teleop.scripted_operator import ScriptedDemo
from farl_teleop.session import OperatorSession


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def session(**kw) -> tuple[OperatorSession, Clock]:
    clock = Clock()
    return OperatorSession(operator="ana", device="keyboard", clock=clock, speed_scales=(0.25, 0.5, 1.0),
                           scale_index=1, **kw), clock


def test_an_episode_starts_gets_labels_with_their_times_and_stops_with_its_outcome():
    s, clock = session()
    [start] = s.handle("toggle")
    assert start["action"] == "start" and start["episode"] == 1 and start["kind"] == "task"
    clock.now += 2.5
    [mark] = s.handle("success")
    assert mark["elapsed"] == 2.5
    clock.now += 1.0
    s.handle("failure")
    [stop] = s.handle("toggle")
    assert stop["action"] == "stop" and stop["outcome"] == "failure"  # a failure outweighs a success mark
    for event in (start, mark, stop):
        api.OPERATOR_PAYLOAD.validate(event)  # what the node publishes validates against the schema


def test_labels_and_stop_outside_an_episode_are_refused_with_a_reason():
    s, _ = session()
    assert s.handle("failure") == [] and "no episode" in s.message
    assert s.handle("stop") == [] and "no episode" in s.message
    assert s.handle("discard") == [] and "nothing to discard" in s.message


def test_the_kind_changes_only_between_episodes():
    s, _ = session()
    s.handle("kind:failure")
    [start] = s.handle("start")
    assert start["kind"] == "failure"
    assert s.handle("kind:task") == [] and s.kind == "failure"
    assert "between episodes" in s.message


def test_on_the_real_arm_the_next_episode_waits_for_reset_done():
    s, _ = session(require_reset=True)
    s.handle("start")
    s.handle("stop")
    assert s.handle("start") == [] and "reset done" in s.message
    assert "waiting for reset done" in s.status_line()
    [reset] = s.handle("reset_done")
    assert reset["action"] == "reset_done"
    assert s.handle("start")[0]["episode"] == 2


def test_in_sim_no_reset_is_required():
    s, _ = session(require_reset=False)
    s.handle("start")
    s.handle("stop")
    assert s.handle("start")[0]["action"] == "start"


def test_discard_drops_the_running_episode_or_the_one_just_stopped_but_not_older_ones():
    s, _ = session()
    s.handle("start")
    assert s.handle("discard")[0]["episode"] == 1 and not s.recording and s.completed == 0
    s.handle("start")
    s.handle("stop")
    assert s.completed == 1
    assert s.handle("discard")[0]["episode"] == 2 and s.completed == 0
    assert s.handle("discard") == []  # only once


def test_speed_scale_steps_and_stays_within_the_configured_steps():
    s, _ = session()
    s.handle("faster")
    s.handle("faster")
    assert s.speed_scale == 1.0
    for _ in range(5):
        s.handle("slower")
    assert s.speed_scale == 0.25


def test_status_line_shows_recording_kind_labels_speed_and_input():
    s, clock = session()
    s.handle("kind:recovery")
    s.handle("start")
    clock.now += 3.0
    s.handle("failure")
    line = s.status_line("x+")
    assert "REC recovery #1" in line and "failure@3.0s" in line and "speed 50%" in line and "input x+" in line
    assert "\n" not in line


def test_scripted_operator_runs_labelled_episodes_and_waits_for_each_reset():
    config = load_task_config("fragile_push_wall").scripted_operator
    demo = ScriptedDemo(config, "failure", episodes=2)
    assert demo.tick(0.0, None, False, False) == (None, [])  # no pose yet: nothing starts
    _, actions = demo.tick(0.0, np.array([0.57, -0.22, 0.15]), False, False)
    assert actions == ["start"]
    tcp = np.array([0.57, -0.22, 0.15])
    labels, t = [], 0.0
    for _ in range(5000):
        t += 0.1
        velocity, actions = demo.tick(t, tcp, False, failure=t > 3.0)
        labels += actions
        if "stop" in actions:
            break
        tcp = tcp + 0.1 * velocity  # an ideal arm
    assert labels[0] == "failure" and labels[-1] == "stop" and labels.count("failure") == 1
    assert demo.tick(t + 0.1, tcp, False, False) == (None, [])  # waits for the reset
    demo.reset_done()
    assert demo.tick(t + 0.2, tcp, False, False)[1] == ["start"]
    assert not demo.finished


def test_failure_waypoints_push_the_block_into_the_wall():
    config = load_task_config("fragile_push_wall")
    op = config.scripted_operator
    assert op.waypoints_for("task") == op.waypoints
    deepest = max(p[0] for p in op.waypoints_for("failure"))
    block = next(o for o in config.scene.objects if o.name == "fragile_block")
    wall = next(o for o in config.scene.objects if o.name == "wall")
    # fingers (half width 9 mm) push the block's back face: its front face passes the wall's face
    assert deepest + 0.009 + 2 * block.size[0] > wall.pos[0] - wall.size[0]

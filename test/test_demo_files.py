"""Episode files and their conversion, without ROS: synthetic episodes written with the recorder's writer.

What is specified here: a closed file is complete and opens with `rosbags`; a
file whose writer died keeps everything flushed and is marked partial; a
discarded episode is moved aside; conversion builds observations with the task
spec from the poses, actions from the executed command, costs from failure
marks, and ends the episode at the failure; damaged files are one line each;
pretrain-demos says what to record more of and holds out failure episodes.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from farl_common import interface as api
from farl_common.task_config import load_task_config
from farl_common.task_spec import TaskSpec
from farl_learner.data.recorded import convert_folder, summarize
from farl_teleop.recording.episode_file import EpisodeFile, message_types, serialize
from farl_teleop.recording.episode_reader import episode_files, read_episode

TASK = "fragile_push_wall"
T = message_types()


def stamp(t: float):
    return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=int(t), nanosec=int(t % 1 * 1e9)),
                                     frame_id="base")


def pose(t: float, xyz) -> bytes:
    p = T["geometry_msgs/msg/Pose"](position=T["geometry_msgs/msg/Point"](x=xyz[0], y=xyz[1], z=xyz[2]),
                                    orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0))
    return serialize("geometry_msgs/msg/PoseStamped", T["geometry_msgs/msg/PoseStamped"](header=stamp(t), pose=p))


def twist(t: float, v) -> bytes:
    vec = T["geometry_msgs/msg/Vector3"]
    msg = T["geometry_msgs/msg/TwistStamped"](header=stamp(t), twist=T["geometry_msgs/msg/Twist"](
        linear=vec(x=v[0], y=v[1], z=v[2]), angular=vec(x=0.0, y=0.0, z=0.0)))
    return serialize("geometry_msgs/msg/TwistStamped", msg)


def write_episode(folder, stem: str, kind: str = "task", seconds: float = 3.0, fail_at: float | None = None,
                  close: bool = True, velocity=(0.0, 0.05, 0.0)) -> EpisodeFile:
    """The TCP moves +y at `velocity` from t0; poses at 100 Hz, objects at 30 Hz, executed at 10 Hz."""
    t0 = 1_000_000.0
    f = EpisodeFile(folder, stem, {"task": TASK, "kind": kind, "operator": "test", "device": "scripted",
                                    "episode": 1, "robot": "sim", "config_hash": "0" * 16, "start_time": t0})
    tcp = np.array([0.57, -0.22, 0.04])
    for i in range(int(seconds * 100)):
        t = t0 + i / 100
        ns = int(t * 1e9)
        pos = tcp + np.asarray(velocity) * (i / 100)
        f.write(api.EE_POSE.name, api.EE_POSE.type, pose(t, pos), ns)
        if i % 3 == 0:
            for name, xyz in (("fragile_block", (0.57, -0.12, 0.025)), ("target", (0.57, 0.10, 0.0)),
                              ("wall", (0.64, 0.0, 0.03))):
                f.write(f"/farl/objects/{name}", "geometry_msgs/msg/PoseStamped", pose(t, xyz), ns)
        if i % 10 == 0:
            f.write(api.EXECUTED_COMMAND.name, api.EXECUTED_COMMAND.type, twist(t, velocity), ns)
    labels = [{"label": "failure", "elapsed": fail_at, "time": t0 + fail_at}] if fail_at is not None else []
    if close:
        f.close({"outcome": "failure" if fail_at is not None else "unlabelled", "labels": labels,
                 "duration_s": seconds, "end_time": t0 + seconds})
    else:
        f.flush()
    return f


def test_a_closed_episode_is_complete_and_opens_with_rosbags(tmp_path):
    from rosbags.rosbag2 import Reader

    write_episode(tmp_path, "ep_001_task")
    [path] = episode_files(tmp_path)
    assert path.name == "ep_001_task.mcap"
    episode = read_episode(path)
    assert episode.status == "complete" and episode.problem == ""
    assert episode.metadata["status"] == "complete" and episode.metadata["kind"] == "task"
    assert episode.metadata["message_counts"][api.EE_POSE.name] == 300
    with Reader(path) as bag:
        assert {c.topic for c in bag.connections} >= {api.EE_POSE.name, api.EXECUTED_COMMAND.name}
        assert sum(c.msgcount for c in bag.connections if c.topic == api.EE_POSE.name) == 300


def test_an_episode_whose_writer_died_keeps_what_was_flushed_and_is_marked_partial(tmp_path):
    write_episode(tmp_path, "ep_001_task")
    f = write_episode(tmp_path, "ep_002_task", close=False)  # the process dies here: no close()
    partial = f.path
    assert partial.name == "ep_002_task.partial.mcap"
    episode = read_episode(partial)
    assert episode.status == "partial" and "partial episode" in episode.problem
    assert episode.metadata["status"] == "recording"
    assert episode.count(api.EE_POSE.name) > 200  # only the last unfinished chunk may be missing
    assert read_episode(tmp_path / "ep_001_task.mcap").status == "complete"


def test_discard_moves_the_episode_aside(tmp_path):
    f = write_episode(tmp_path, "ep_001_task", close=False)
    moved = f.discard({"outcome": "unlabelled"})
    assert moved.parent.name == "discarded" and episode_files(tmp_path) == []
    assert read_episode(moved).metadata["discarded"] is True


def test_conversion_uses_the_task_spec_on_the_recorded_poses_and_the_executed_action(tmp_path):
    config = load_task_config(TASK)
    spec = TaskSpec.from_config(config)
    write_episode(tmp_path, "ep_001_task", seconds=3.0)
    report = convert_folder(tmp_path, config)
    data = report.dataset
    assert report.skipped == [] and data is not None and data.n_episodes == 1
    assert len(data) == pytest.approx(3.0 * config.control.rate_hz, abs=2)  # control rate, not 100 Hz
    positions = {"tcp": np.array([0.57, -0.22, 0.04]), "fragile_block": np.array([0.57, -0.12, 0.025]),
                 "target": np.array([0.57, 0.10, 0.0])}
    np.testing.assert_allclose(data.obs[0], spec.build_observation(positions), atol=2e-3)
    np.testing.assert_allclose(data.action[3], spec.velocity_to_action(np.array([0.0, 0.05, 0.0])), atol=1e-6)
    np.testing.assert_allclose(data.next_obs[:-1], data.obs[1:])
    assert data.timeout[-1] and not data.done.any() and data.cost.sum() == 0


def test_a_failure_mark_is_the_cost_of_its_step_and_ends_the_episode(tmp_path):
    config = load_task_config(TASK)
    write_episode(tmp_path, "ep_001_failure", kind="failure", seconds=3.0, fail_at=1.55)
    data = convert_folder(tmp_path, config).dataset
    assert data.cost.sum() == 1 and data.cost[-1] == 1 and data.done[-1]
    assert len(data) == pytest.approx(1.55 * config.control.rate_hz, abs=2)
    assert set(data.kind.tolist()) == {2}
    assert summarize(read_episode(episode_files(tmp_path)[0])).failures == 1


def test_damaged_files_are_one_line_each_and_the_rest_convert(tmp_path):
    config = load_task_config(TASK)
    write_episode(tmp_path, "ep_001_task")
    write_episode(tmp_path, "ep_002_task")
    whole = tmp_path / "ep_002_task.mcap"
    whole.write_bytes(whole.read_bytes()[:5000])
    (tmp_path / "ep_003_task.mcap").write_bytes(b"\x00" * 100)
    write_episode(tmp_path, "ep_004_task", close=False)
    report = convert_folder(tmp_path, config)
    assert report.converted == ["ep_001_task.mcap"]
    assert len(report.skipped) == 3 and all("\n" not in line for line in report.skipped)
    assert any("ep_002_task.mcap: truncated or corrupt" in line for line in report.skipped)
    assert any("ep_003_task.mcap: not a readable MCAP file" in line for line in report.skipped)
    assert any("ep_004_task.partial.mcap: partial episode" in line for line in report.skipped)


def test_demos_list_and_convert_commands(tmp_path, capsys):
    from farl_learner.commands import recorded_demos

    write_episode(tmp_path, "ep_001_task")
    write_episode(tmp_path, "ep_002_failure", kind="failure", fail_at=1.0)
    assert recorded_demos.run("list", str(tmp_path), None, None) == 0
    out = capsys.readouterr().out
    assert "ep_002_failure.mcap" in out and "failure@1.0s" in out and "1 failure" in out and "1 task" in out
    assert recorded_demos.run("convert", str(tmp_path), None, str(tmp_path / "d.npz")) == 0
    assert "2 episodes" in capsys.readouterr().out and (tmp_path / "d.npz").is_file()


def test_pretrain_demos_names_what_to_record_more_of(tmp_path):
    from farl_learner.commands.pretrain_demos import shortages

    lines = shortages(TASK, "demos/x", {"task": 10, "recovery": 3, "failure": 0},
                      {"task": 5, "recovery": 5, "failure": 5})
    assert len(lines) == 2
    assert "record 2 more" in lines[0] and "--kind recovery" in lines[0] and "--out demos/x" in lines[0]
    assert "0 episodes that reach a failure, need 5: record 5 more" in lines[1] and "--kind failure" in lines[1]
    assert shortages(TASK, "d", {"task": 5, "recovery": 5, "failure": 5}, {"task": 5, "recovery": 5,
                                                                          "failure": 5}) == []


def test_the_held_out_failure_data_always_holds_a_failure_episode():
    from farl_learner.agents.transitions import Transitions
    from farl_learner.commands.pretrain_demos import stratified_split

    n_eps, steps = 6, 5
    episode_id = np.repeat(np.arange(n_eps), steps)
    cost = np.zeros(n_eps * steps)
    cost[[steps - 1, 2 * steps - 1]] = 1  # episodes 0 and 1 fail; 2..5 do not
    data = Transitions.from_arrays({"obs": np.zeros((len(cost), 2)), "action": np.zeros((len(cost), 1)),
                                    "next_obs": np.zeros((len(cost), 2)), "cost": cost, "episode_id": episode_id})
    for seed in range(10):
        train, held = stratified_split(data, 0.2, seed)
        assert held.cost.sum() == 1 and train.cost.sum() == 1  # one failure each side
        assert len(train) + len(held) == len(data)


def test_farl_record_passes_its_options_as_launch_arguments():
    from farl_common.errors import FarlInputError
    from farl_teleop import record_command

    parser = argparse.ArgumentParser()
    record_command.add_arguments(parser)
    args = parser.parse_args([TASK, "robot:=real", "--kind", "recovery", "--device", "spacemouse", "--episodes", "3",
                              "--out", "demos", "--operator", "ana"])
    tokens = record_command.launch_arguments(args)
    assert "autonomy:=false" in tokens and "record:=true" in tokens and "kind:=recovery" in tokens
    assert "device:=spacemouse" in tokens and "demo_episodes:=3" in tokens and "operator:=ana" in tokens
    assert tokens[-1] == "robot:=real"
    with pytest.raises(FarlInputError, match="scripted operator needs --episodes"):
        record_command.launch_arguments(parser.parse_args([TASK, "--device", "scripted", "--out", "d"]))
    with pytest.raises(FarlInputError, match="set by farl record"):
        record_command.launch_arguments(parser.parse_args([TASK, "autonomy:=true", "--out", "d"]))


def test_the_stack_runs_teleop_and_recorder_only_when_recording():
    from farl_control.launching.stack import load_stack

    stack = load_stack(TASK)
    names = {n.name for n in stack.resolve({"autonomy": "false", "record": "true", "device": "keyboard"})}
    assert {"teleop", "recorder", "franka", "sim_robot"} <= names and "shield" not in names
    teleop = next(n for n in stack.resolve({"autonomy": "false", "record": "true"}) if n.name == "teleop")
    assert teleop.terminal and teleop.completes and teleop.required
    assert not {"teleop", "recorder"} & {n.name for n in stack.resolve({})}
    json.dumps(teleop.parameters)  # plain values for the params file


def test_demos_commands_refuse_a_missing_or_empty_folder_in_one_line(tmp_path):
    from farl_common.errors import FarlInputError
    from farl_learner.commands import recorded_demos

    with pytest.raises(FarlInputError, match="demos folder not found"):
        recorded_demos.run("list", str(tmp_path / "nope"), None, None)
    with pytest.raises(FarlInputError, match="no episode files"):
        recorded_demos.run("inspect", str(tmp_path), None, None)
    (tmp_path / "bad.mcap").write_bytes(b"xx")
    with pytest.raises(FarlInputError, match="no episode of fragile_push_wall converted"):
        recorded_demos.run("convert", str(tmp_path), TASK, None)

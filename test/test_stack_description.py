"""The stack YAML is the one source of truth for which nodes run with which parameters."""
from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

from farl_common.errors import ConfigError, FarlInputError
from farl_control.launching.stack import StackDescription, load_stack, parse_launch_arguments

REPO = Path(__file__).resolve().parents[1]


def node_names(nodes):
    return [n.name for n in nodes]


def test_sim_is_the_default_and_starts_the_simulated_arm_before_the_control_node():
    nodes = load_stack("fragile_push_wall").resolve()
    names = node_names(nodes)
    assert names.index("sim_robot") < names.index("franka")


def test_real_robot_starts_no_simulator_and_passes_the_robot_ip():
    nodes = load_stack("fragile_push_wall").resolve({"robot": "real", "robot_ip": "172.16.0.2"})
    assert "sim_robot" not in node_names(nodes)
    franka = next(n for n in nodes if n.name == "franka")
    assert franka.parameters["robot_ip"] == "172.16.0.2"


def test_config_paths_are_made_absolute_so_nodes_find_them_from_any_directory():
    franka = next(n for n in load_stack("fragile_push_wall").resolve() if n.name == "franka")
    path = Path(franka.parameters["task_config"])
    assert path.is_absolute() and path.is_file()


def test_every_node_of_an_autonomous_run_is_required():
    """The arm never runs without its driver; a run never goes on without monitor, shield or learner."""
    nodes = {n.name: n for n in load_stack("fragile_push_wall").resolve()}
    assert set(nodes) == {"sim_robot", "franka", "episode_monitor", "shield", "learner"}
    assert all(n.required for n in nodes.values())
    assert "learner" not in {n.name for n in load_stack("fragile_push_wall").resolve({"learn": "false"})}


def test_only_the_simulated_control_node_is_restarted_after_an_error_exit():
    """In sim a crashed control node is started again (its exit stopped the arm); on the real arm an operator
    decides, so there its exit ends the stack at once."""
    sim = {n.name: n.restarts for n in load_stack("fragile_push_wall").resolve()}
    real = {n.name: n.restarts for n in load_stack("fragile_push_wall").resolve({"robot": "real"})}
    assert sim == {"sim_robot": 0, "franka": 2, "episode_monitor": 0, "shield": 0, "learner": 0}
    assert set(real.values()) == {0}


@pytest.mark.parametrize("tokens, problem", [
    (["robot:=mars"], "robot:=mars is not one of sim, real"),
    (["colour:=red"], "unknown launch argument 'colour'"),
])
def test_bad_launch_arguments_name_the_stack_file_and_the_argument(tokens, problem):
    stack = load_stack("fragile_push_wall")
    with pytest.raises(FarlInputError) as error:
        stack.resolve(parse_launch_arguments(tokens))
    assert problem in str(error.value)
    assert str(stack.path) in str(error.value)


def test_launch_arguments_must_be_key_colon_equals_value():
    with pytest.raises(FarlInputError, match="key:=value"):
        parse_launch_arguments(["robot=sim"])


def test_a_node_referring_to_an_undeclared_argument_is_a_config_error(tmp_path):
    bad = tmp_path / "stack.yaml"
    bad.write_text("task: t\nargs: {robot: {default: sim}}\nnodes:\n"
                   "  - {name: a, package: p, executable: e, parameters: {ip: '${robot_ip}'}}\n")
    with pytest.raises(FarlInputError, match=r"nodes\[0\]\.parameters\.ip: \$\{robot_ip\} is not a declared"):
        StackDescription.from_file(bad)


def test_farl_launch_with_an_unknown_task_prints_one_error_line_and_exits_2():
    result = subprocess.run([sys.executable, "-m", "farl_learner.cli", "launch", "warp_drive"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "stacks/warp_drive.yaml" in lines[0] and "unknown task 'warp_drive'" in lines[0]


def _load_launch_file_with_recording_launch_api(task: str = "fragile_push_wall"):
    """Import launch/<task>.launch.py against minimal stand-ins of launch/launch_ros.

    launch and launch_ros exist only in a ROS 2 install (not on PyPI); the stand-ins
    record what the file asks for so we can check it builds the same node table.
    """
    recorded = {"nodes": [], "args": []}

    class Action:
        def __init__(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

    class DeclareLaunchArgument(Action):
        def __init__(self, name, **kwargs):
            super().__init__(name, **kwargs)
            recorded["args"].append((name, kwargs["default_value"]))

    class Node(Action):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            recorded["nodes"].append(kwargs)

    class LifecycleNode(Node):
        pass

    class ChangeState(Action):  # the event: which node, which transition
        pass

    class LaunchConfiguration:
        def __init__(self, name):
            self.name = name

        def perform(self, context):
            return context[self.name]

    modules = {
        "launch": types.SimpleNamespace(LaunchDescription=lambda actions: actions),
        "launch.actions": types.SimpleNamespace(DeclareLaunchArgument=DeclareLaunchArgument, EmitEvent=Action,
                                                OpaqueFunction=Action, RegisterEventHandler=Action, Shutdown=Action),
        "launch.events": types.SimpleNamespace(matches_action=lambda action: action),
        "launch.substitutions": types.SimpleNamespace(LaunchConfiguration=LaunchConfiguration),
        "launch_ros.actions": types.SimpleNamespace(Node=Node, LifecycleNode=LifecycleNode),
        "launch_ros.event_handlers": types.SimpleNamespace(OnStateTransition=Action),
        "launch_ros.events.lifecycle": types.SimpleNamespace(ChangeState=ChangeState),
    }
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)  # type: ignore[arg-type]
    try:
        path = REPO / "launch" / f"{task}.launch.py"
        namespace: dict = {"__name__": f"{task}_launch", "__file__": str(path)}
        exec(compile(path.read_text(), path.name, "exec"), namespace)
        namespace["generate_launch_description"] = _calling_with(namespace["generate_launch_description"], modules)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return namespace, recorded


def _calling_with(function, modules):
    """The launch API is imported when a description is built: keep the stand-ins installed for each call."""
    def call(*args, **kwargs):
        saved = {name: sys.modules.get(name) for name in modules}
        sys.modules.update(modules)
        try:
            result = function(*args, **kwargs)
        finally:
            for name, module in saved.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
        if isinstance(result, list) and result and type(result[-1]).__name__ == "Action" and \
                "function" in result[-1].kwargs:
            result[-1].kwargs["function"] = _calling_with(result[-1].kwargs["function"], modules)
        return result
    return call


TASKS = ("fragile_push_wall", "disturbed_push", "bounded_soccer")


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("overrides", [{}, {"robot": "real", "robot_ip": "10.0.0.2"}, {"autonomy": "false"}])
def test_the_launch_file_starts_exactly_the_nodes_farl_launch_starts(overrides, task):
    namespace, recorded = _load_launch_file_with_recording_launch_api(task)
    actions = namespace["generate_launch_description"]()
    stack = load_stack(task)
    assert [name for name, _ in recorded["args"]] == [a.name for a in stack.arguments]
    context = {**{a.name: a.default for a in stack.arguments}, **overrides}
    opaque = actions[-1]
    opaque.kwargs["function"](context)
    expected = stack.resolve(overrides)
    assert [(n["name"], n["package"], n["executable"], n["parameters"][0]) for n in recorded["nodes"]] == \
        [(n.name, n.package, n.executable, n.parameters) for n in expected]


def test_the_launch_file_configures_then_activates_the_managed_control_node():
    """As `farl launch` does: configure at start, activate once inactive, take the stack down if configuring fails."""
    from lifecycle_msgs.msg import Transition

    namespace, recorded = _load_launch_file_with_recording_launch_api()
    actions = namespace["generate_launch_description"]()
    stack = load_stack("fragile_push_wall")
    entities = actions[-1].kwargs["function"]({a.name: a.default for a in stack.arguments})
    franka = next(e for e in entities if type(e).__name__ == "LifecycleNode")
    assert franka.kwargs["name"] == "franka" and franka.kwargs["parameters"][0]["autostart"] is False
    assert [type(e).__name__ for e in entities if type(e).__name__.endswith("Node")].count("LifecycleNode") == 1

    def emitted(action):  # the transition an EmitEvent(ChangeState(...)) asks of which node
        event = action.kwargs["event"]
        return event.kwargs["lifecycle_node_matcher"], event.kwargs["transition_id"]

    handlers = [e.args[0] if e.args else e.kwargs for e in entities if type(e).__name__ == "Action" and
                "event" not in e.kwargs and e.args]
    on_transition = {(h.kwargs["start_state"], h.kwargs["goal_state"]): h for h in handlers}
    configure = [e for e in entities if "event" in e.kwargs]
    assert [emitted(e) for e in configure] == [(franka, Transition.TRANSITION_CONFIGURE)]
    activate = on_transition[("configuring", "inactive")]
    assert activate.kwargs["target_lifecycle_node"] is franka
    assert emitted(activate.kwargs["entities"][0]) == (franka, Transition.TRANSITION_ACTIVATE)
    failed = on_transition[("configuring", "unconfigured")]
    assert "failed to configure" in failed.kwargs["entities"][0].kwargs["reason"]
    assert entities.index(franka) < entities.index(configure[0])  # configure is emitted after the node exists


def test_every_task_has_one_stack_one_launch_file_and_they_are_the_same_file():
    """No copy-pasted launch logic: each task's launch file is byte for byte the shared one
    (it reads its task from its own name), and each task's stack file runs the shared node table."""
    from farl_common.task_config import known_tasks

    assert set(TASKS) <= set(known_tasks())
    sources = {task: (REPO / "launch" / f"{task}.launch.py").read_text() for task in known_tasks()}
    assert len(set(sources.values())) == 1
    tables = {task: [(n.name, n.executable) for n in load_stack(task).nodes] for task in known_tasks()}
    assert len({tuple(t) for t in tables.values()}) == 1


@pytest.mark.parametrize("task", TASKS)
def test_each_task_s_nodes_read_that_task_s_config_files(task):
    nodes = {n.name: n for n in load_stack(task).resolve({})}
    for node in ("sim_robot", "franka", "episode_monitor", "shield", "learner"):
        assert nodes[node].parameters["task_config"].endswith(f"tasks/{task}.yaml")
    assert nodes["shield"].parameters["models_dir"].endswith(f"models/{task}")
    assert nodes["learner"].parameters["farl_config"].endswith(f"farl/franka/{task}.yaml")
    assert nodes["learner"].parameters["run_dir"] == f"runs/{task}-learner"


def test_a_stack_file_that_includes_a_missing_file_is_one_error_line(tmp_path):
    bad = tmp_path / "mystery.yaml"
    bad.write_text("task: mystery\ninclude: nowhere.yaml\n")
    with pytest.raises(ConfigError) as error:
        StackDescription.from_file(bad)
    assert str(error.value).startswith(f"{bad}: include: ") and "\n" not in str(error.value)

"""The launch_ros description of any task's stack: what every launch/<task>.launch.py returns.

One implementation for all tasks (no copy-pasted launch files): a task's
launch file only names itself, and the node table comes from
config/stacks/<task>.yaml, the same description `farl launch <task>` uses on
the pip set-up. A managed (lifecycle) node is configured once its process
starts and activated once configured, as `farl launch` does; a failed
configure takes the stack down. A node's `restarts` (the control node in sim)
apply to `farl launch` / `farl run` only: here a required node's exit always
takes the stack down, which is the safe side of the difference.

launch and launch_ros exist only in a ROS 2 install, so they are imported when
a description is built, never when this module is imported.
"""
from __future__ import annotations

from pathlib import Path

from farl_control.launching.stack import load_stack

LAUNCH_SUFFIX = ".launch.py"


def task_of_launch_file(path: str | Path) -> str:
    """launch/<task>.launch.py → <task>."""
    name = Path(path).name
    if not name.endswith(LAUNCH_SUFFIX):
        raise ValueError(f"{path}: a task launch file is named <task>{LAUNCH_SUFFIX}")
    return name[: -len(LAUNCH_SUFFIX)]


def _change(node, transition: int):
    from launch.actions import EmitEvent
    from launch.events import matches_action
    from launch_ros.events.lifecycle import ChangeState

    return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition))


def _managed(node, action) -> list:
    """configure now, activate once inactive, shut the stack down if configuring fails."""
    from launch.actions import RegisterEventHandler, Shutdown
    from launch_ros.event_handlers import OnStateTransition
    from lifecycle_msgs.msg import Transition

    return [
        RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=action, start_state="configuring", goal_state="inactive",
            entities=[_change(action, Transition.TRANSITION_ACTIVATE)])),
        RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=action, start_state="configuring", goal_state="unconfigured",
            entities=[Shutdown(reason=f"{node.name} failed to configure")])),
        action,
        _change(action, Transition.TRANSITION_CONFIGURE),
    ]


def _nodes(task: str):
    def build(context, *_, **__):
        from launch.actions import Shutdown
        from launch.substitutions import LaunchConfiguration
        from launch_ros.actions import LifecycleNode, Node

        stack = load_stack(task)
        overrides = {arg.name: LaunchConfiguration(arg.name).perform(context) for arg in stack.arguments}
        actions = []
        for node in stack.resolve(overrides):
            kind = LifecycleNode if node.lifecycle else Node
            action = kind(
                package=node.package,
                executable=node.executable,
                name=node.name,
                namespace="",
                parameters=[node.parameters],
                output="screen",
                # A required node (the arm's driver, the simulator, the run's monitor, shield and learner)
                # takes the stack down with it.
                on_exit=Shutdown(reason=f"{node.name} exited") if node.required else None,
            )
            actions += _managed(node, action) if node.lifecycle else [action]
        return actions

    return build


def task_launch_description(launch_file: str | Path):
    """The LaunchDescription of the task the launch file is named after."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    task = task_of_launch_file(launch_file)
    stack = load_stack(task)
    arguments = [
        DeclareLaunchArgument(arg.name, default_value=arg.default, description=arg.description,
                              **({"choices": list(arg.choices)} if arg.choices else {}))
        for arg in stack.arguments
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_nodes(task))])

"""ros2 launch farl_control fragile_push_wall.launch.py [robot:=sim|real] [robot_ip:=…] [autonomy:=…] [shield:=…]

A genuine launch_ros file for a ROS 2 install (docker image, lab PC). The node
table is not written here: it is read from config/stacks/fragile_push_wall.yaml,
the same description `farl launch fragile_push_wall` uses on the pip set-up.
A managed (lifecycle) node is configured once its process starts and activated
once configured, as `farl launch` does; a failed configure takes the stack down.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler, Shutdown
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from farl_control.launching.stack import load_stack

TASK = "fragile_push_wall"


def _change(node, transition: int) -> EmitEvent:
    return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition))


def _managed(node, action) -> list:
    """configure now, activate once inactive, shut the stack down if configuring fails."""
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


def _nodes(context, *_, **__):
    stack = load_stack(TASK)
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


def generate_launch_description() -> LaunchDescription:
    stack = load_stack(TASK)
    arguments = [
        DeclareLaunchArgument(arg.name, default_value=arg.default, description=arg.description,
                              **({"choices": list(arg.choices)} if arg.choices else {}))
        for arg in stack.arguments
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_nodes)])

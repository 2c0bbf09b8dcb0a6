"""ros2 launch farl_control fragile_push_wall.launch.py [robot:=sim|real] [robot_ip:=…] [autonomy:=…] [shield:=…]

A genuine launch_ros file for a ROS 2 install (docker image, lab PC). The node
table is not written here: it is read from config/stacks/fragile_push_wall.yaml,
the same description `farl launch fragile_push_wall` uses on the pip set-up.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from farl_control.launching.stack import load_stack

TASK = "fragile_push_wall"


def _nodes(context, *_, **__):
    stack = load_stack(TASK)
    overrides = {arg.name: LaunchConfiguration(arg.name).perform(context) for arg in stack.arguments}
    actions = []
    for node in stack.resolve(overrides):
        actions.append(Node(
            package=node.package,
            executable=node.executable,
            name=node.name,
            parameters=[node.parameters],
            output="screen",
            # A required node (the arm's driver, the simulator) takes the stack down with it.
            on_exit=Shutdown(reason=f"{node.name} exited") if node.required else None,
        ))
    return actions


def generate_launch_description() -> LaunchDescription:
    stack = load_stack(TASK)
    arguments = [
        DeclareLaunchArgument(arg.name, default_value=arg.default, description=arg.description,
                              **({"choices": list(arg.choices)} if arg.choices else {}))
        for arg in stack.arguments
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_nodes)])

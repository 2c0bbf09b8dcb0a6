"""ros2 launch farl_teleop collect_demos.launch.py kind:=task|recovery|failure device:=spacemouse|keyboard|scripted
   [robot:=sim|real] [robot_ip:=…] [demos_dir:=…] [demo_episodes:=N] [operator:=…] [record_camera:=true]

Demo collection on a ROS 2 install: the task's stack (config/stacks/<task>.yaml,
the one node table) with autonomy:=false (robot side only) and record:=true
(teleop node and recorder), as `farl record` does on the pip set-up.
ros2 launch does not hand its terminal to a node, so the keyboard device is for
`farl record` (which does); here use device:=spacemouse or device:=scripted.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

TASK = "fragile_push_wall"
PASSED = ("robot", "robot_ip", "kind", "device", "operator", "demos_dir", "demo_episodes", "record_camera",
          "allow_non_rt_kernel")


def generate_launch_description() -> LaunchDescription:
    from farl_control.launching.stack import load_stack

    stack = {a.name: a for a in load_stack(TASK).arguments}
    declared = [DeclareLaunchArgument(name, default_value=stack[name].default, description=stack[name].description,
                                      **({"choices": list(stack[name].choices)} if stack[name].choices else {}))
                for name in PASSED]
    stack_launch = os.path.join(get_package_share_directory("farl_control"), "launch", f"{TASK}.launch.py")
    arguments = {name: LaunchConfiguration(name) for name in PASSED}
    arguments.update(autonomy="false", record="true")
    return LaunchDescription([*declared, IncludeLaunchDescription(
        PythonLaunchDescriptionSource(stack_launch), launch_arguments=list(arguments.items()))])

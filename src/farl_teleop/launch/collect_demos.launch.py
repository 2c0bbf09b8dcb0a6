"""ros2 launch farl_teleop collect_demos.launch.py [task:=fragile_push_wall|disturbed_push|bounded_soccer]
   kind:=task|recovery|failure device:=spacemouse|keyboard|scripted
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
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

DEFAULT_TASK = "fragile_push_wall"
PASSED = ("robot", "robot_ip", "kind", "device", "operator", "demos_dir", "demo_episodes", "record_camera",
          "allow_non_rt_kernel")


def generate_launch_description() -> LaunchDescription:
    from farl_control.launching.stack import known_stacks, load_stack

    # The passed arguments mean the same in every task's stack; their defaults and help come from the default's.
    stack = {a.name: a for a in load_stack(DEFAULT_TASK).arguments}
    declared = [DeclareLaunchArgument("task", default_value=DEFAULT_TASK, choices=known_stacks(),
                                      description="the task whose stack (config/stacks/<task>.yaml) records demos")]
    declared += [DeclareLaunchArgument(name, default_value=stack[name].default, description=stack[name].description,
                                       **({"choices": list(stack[name].choices)} if stack[name].choices else {}))
                 for name in PASSED]
    return LaunchDescription([*declared, OpaqueFunction(function=_include_task_stack)])


def _include_task_stack(context):
    """The chosen task's launch file, robot side only, with the teleop node and the recorder."""
    task = LaunchConfiguration("task").perform(context)
    stack_launch = os.path.join(get_package_share_directory("farl_control"), "launch", f"{task}.launch.py")
    arguments = {name: LaunchConfiguration(name) for name in PASSED}
    arguments.update(autonomy="false", record="true")
    return [IncludeLaunchDescription(PythonLaunchDescriptionSource(stack_launch),
                                     launch_arguments=list(arguments.items()))]

"""ros2 launch farl_control <task>.launch.py [robot:=sim|real] [robot_ip:=…] [autonomy:=…] [shield:=…]

A genuine launch_ros file for a ROS 2 install (docker image, lab PC). Every
task's launch file is this same file under the task's name: the task is read
from the file name, the node table from config/stacks/<task>.yaml (what
`farl launch <task>` starts on the pip set-up), and the launch logic lives once
in farl_control.launching.ros_launch.
"""
from farl_control.launching.ros_launch import task_launch_description


def generate_launch_description():
    return task_launch_description(__file__)

#!/usr/bin/env bash
# Every command in the images runs with ROS 2 and the colcon-built FARL packages sourced;
# `farl ...` is a shortcut for `ros2 run farl_learner farl ...` (learner image).
set -e
# shellcheck disable=SC1090,SC1091
source "/opt/ros/${ROS_DISTRO}/setup.bash"
source /farl_ws/install/setup.bash
if [ "${1:-}" = "farl" ]; then
    shift
    exec ros2 run farl_learner farl "$@"
fi
exec "$@"

# Sourced by every entry point (run, test, CI, launcher): the environment the
# stack needs no matter how it was started.
#
# DDS discovery stays on the loopback interface: a lab network must never see
# the simulation's (or the test suite's) traffic.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-42}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# Offscreen MuJoCo rendering (sim camera) without a display.
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-egl}"
export PYTHONUNBUFFERED=1

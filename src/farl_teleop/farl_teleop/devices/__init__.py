"""Teleop input devices: each turns its raw input into base-frame axes in [-1, 1] (or None: no input) and
operator actions. Pure parsing here; the teleop node does the I/O and the ROS side."""

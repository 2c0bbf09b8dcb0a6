"""farl_teleop."""

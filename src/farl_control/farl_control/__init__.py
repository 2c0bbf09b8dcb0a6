"""farl_control."""

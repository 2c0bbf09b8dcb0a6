"""farl_common: configuration, the ROS interface contract and input errors shared by every FARL package."""

"""The arm driver: franka_node streams filtered velocities to the FR3 through franky (libfranka)."""

"""Model-folder manifests: defined on the robot side (farl_control.shield.manifest),
re-exported here for the exporter so both sides read and write one format."""
from farl_control.shield.manifest import *  # noqa: F401,F403
from farl_control.shield.manifest import _check_graph  # noqa: F401

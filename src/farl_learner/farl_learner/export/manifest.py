"""Model-folder manifests: defined on the robot side (farl_control.model_manifest),
re-exported here for the exporter so both sides read and write one format."""
from farl_control.model_manifest import *  # noqa: F401,F403
from farl_control.model_manifest import _check_graph  # noqa: F401

"""Model-folder manifests: defined on the robot side (farl_control.model_manifest),
re-exported here for the exporter so both sides read and write one format."""
from farl_control.model_manifest import (  # noqa: F401
    FORMAT_VERSION,
    GRAPHS,
    MANIFEST,
    METAWORLD_OBS_LAYOUT,
    Manifest,
    load_manifest,
    sha256_of,
    write_manifest,
)

"""Files the entry functions read and write: checkpoint names, JSON reports."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from farl_common.json_files import read_json_object

# Files of a pretrained model folder (torch side; the ONNX folder is written by export()).
CHECKPOINTS = {"task_policy": "task_policy.pt", "task_value": "task_value.pt",
               "recovery_policy": "recovery_policy.pt", "world_model": "world_model.pt"}
CALIBRATION = "calibration.json"
FAILURE_DATA = "failure_data.npz"  # generated from the pretrained task policy, so it lives with the models
RECOVERY_DEMOS = "recovery_demos.npz"  # partly started from the pretrained policy's failures: lives with the models


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Pretty JSON written atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    tmp.replace(path)
    return path


def read_json(path: str | Path) -> dict[str, Any]:
    return read_json_object(path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")

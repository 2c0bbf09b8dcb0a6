"""Files the entry functions read and write: datasets, JSON reports, run folders."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from farl_control.errors import FarlInputError

from ..agents.transitions import Transitions

DATASET_FILES = {"task": "task.npz", "recovery": "recovery.npz", "failure": "failure.npz"}
# Files of a pretrained model folder (torch side; the ONNX folder is written by export()).
CHECKPOINTS = {"task_policy": "task_policy.pt", "task_value": "task_value.pt",
               "recovery_policy": "recovery_policy.pt", "world_model": "world_model.pt"}
CALIBRATION = "calibration.json"


def load_dataset_file(path: str | Path) -> Transitions:
    """A FailureBench dataset (.npz of parallel arrays) as Transitions; FarlInputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FarlInputError(path, "dataset not found (generate the demos first)")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            data = Transitions.from_arrays({name: arrays[name] for name in arrays.files})
    except KeyError as error:
        raise FarlInputError(path, f"dataset lacks the array {error.args[0]!r}") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise FarlInputError(path, f"not a readable .npz dataset ({type(error).__name__})") from None
    n = len(data)
    for name in ("action", "reward", "cost", "done", "episode_id", "next_obs"):
        if len(getattr(data, name)) != n:
            raise FarlInputError(path, f"array {name!r} has {len(getattr(data, name))} rows, obs has {n}")
    if n == 0:
        raise FarlInputError(path, "dataset is empty")
    return data


def load_datasets(data_dir: str | Path) -> dict[str, Transitions]:
    """task / recovery / failure datasets of one task from `data_dir`."""
    data_dir = Path(data_dir)
    return {kind: load_dataset_file(data_dir / name) for kind, name in DATASET_FILES.items()}


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Pretty JSON written atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    tmp.replace(path)
    return path


def read_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FarlInputError(path, "file not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FarlInputError(path, f"not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise FarlInputError(path, "expected a JSON object")
    return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")

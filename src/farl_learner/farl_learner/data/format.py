"""The on-disk training-dataset format (one .npz file per dataset, format_version 1).

Arrays (N transitions):
    obs, next_obs  (N, obs_dim) float32   observation before / after the step
    action         (N, 4) float32         in [-1, 1]
    reward         (N,) float32           Meta-World reward
    cost           (N,) float32           C(s') in {0, 1}: the step ended in a failure state
    done           (N,) bool              terminal: no bootstrapping (failure or success termination)
    timeout        (N,) bool              the episode was cut here (time limit, demo fragment end):
                                          bootstrap from next_obs
    kind           (N,) int8              0 task demo, 1 recovery demo, 2 failure data
    episode_id     (N,) int32             transitions of one episode are contiguous
Metadata (`meta_json`, a JSON string inside the same .npz so that data and
metadata are written in one atomic rename): format_version, task, seed,
generator and its parameters, counts, created (UTC ISO time) and the sha256 of
every array, checked on load.

Any problem reading a file (missing, truncated, corrupt, wrong version, wrong
task, inconsistent arrays) raises `FarlInputError` whose one-line message names
the file and the problem.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from farl_common.errors import FarlInputError

FORMAT_VERSION = 1

KIND_TASK = 0
KIND_RECOVERY = 1
KIND_FAILURE = 2
KIND_NAMES = {KIND_TASK: "task", KIND_RECOVERY: "recovery", KIND_FAILURE: "failure"}

#: name -> (dtype, 2-d?); the row width of 2-d arrays is taken from the data.
ARRAYS: dict[str, tuple[type, bool]] = {
    "obs": (np.float32, True),
    "action": (np.float32, True),
    "reward": (np.float32, False),
    "cost": (np.float32, False),
    "done": (np.bool_, False),
    "timeout": (np.bool_, False),
    "kind": (np.int8, False),
    "episode_id": (np.int32, False),
    "next_obs": (np.float32, True),
}
_META_KEY = "meta_json"


@dataclass
class Dataset:
    """Transitions of one task, with their metadata (see the module docstring)."""

    task: str
    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    cost: np.ndarray
    done: np.ndarray
    timeout: np.ndarray
    kind: np.ndarray
    episode_id: np.ndarray
    next_obs: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, (dtype, _) in ARRAYS.items():
            setattr(self, name, np.ascontiguousarray(getattr(self, name), dtype=dtype))
        problem = self.problem()
        if problem:
            raise ValueError(problem)

    def problem(self) -> str | None:
        """Why the arrays are inconsistent, or None."""
        n = len(self.obs)
        for name, (_, multi) in ARRAYS.items():
            arr = getattr(self, name)
            if len(arr) != n:
                return f"array '{name}' has {len(arr)} rows, 'obs' has {n}"
            if arr.ndim != (2 if multi else 1):
                return f"array '{name}' has shape {arr.shape}"
        if self.next_obs.shape != self.obs.shape:
            return f"next_obs shape {self.next_obs.shape} differs from obs shape {self.obs.shape}"
        if n and not set(np.unique(self.kind).tolist()) <= set(KIND_NAMES):
            return f"unknown kind values {sorted(set(np.unique(self.kind).tolist()) - set(KIND_NAMES))}"
        return None

    def __len__(self) -> int:
        return len(self.obs)

    @property
    def n_episodes(self) -> int:
        return int(len(np.unique(self.episode_id)))

    def kind_counts(self) -> dict[str, int]:
        """Transitions per kind name."""
        return {name: int(np.sum(self.kind == k)) for k, name in KIND_NAMES.items()}

    def select(self, mask: np.ndarray) -> "Dataset":
        """The transitions where `mask` is true (e.g. `ds.select(ds.kind == KIND_RECOVERY)`)."""
        return Dataset(self.task, **{name: getattr(self, name)[mask] for name in ARRAYS}, meta=dict(self.meta))

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ARRAYS}


def array_sha256(arr: np.ndarray) -> str:
    """Checksum of an array's dtype, shape and bytes."""
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def concat_datasets(parts: Sequence[Dataset], meta: dict[str, Any] | None = None) -> Dataset:
    """One dataset from several of the same task; episode ids are renumbered to stay unique."""
    if not parts:
        raise ValueError("concat_datasets needs at least one dataset")
    tasks = {p.task for p in parts}
    if len(tasks) != 1:
        raise ValueError(f"cannot concatenate datasets of different tasks {sorted(tasks)}")
    arrays: dict[str, list[np.ndarray]] = {name: [] for name in ARRAYS}
    offset = 0
    for part in parts:
        for name in ARRAYS:
            arrays[name].append(getattr(part, name))
        _, ids = np.unique(part.episode_id, return_inverse=True)
        arrays["episode_id"][-1] = ids.astype(np.int32) + offset
        offset += int(ids.max()) + 1 if len(ids) else 0
    merged_meta = meta if meta is not None else {"parts": [p.meta for p in parts]}
    return Dataset(parts[0].task, **{k: np.concatenate(v) for k, v in arrays.items()}, meta=merged_meta)


def save_dataset(path: str | Path, dataset: Dataset) -> Path:
    """Write `dataset` to `path` (.npz) atomically: a temp file in the same folder, then rename.

    The metadata gets format_version, task, counts, created and checksums added.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = dataset.arrays()
    meta = dict(dataset.meta)
    meta.update(
        format_version=FORMAT_VERSION,
        task=dataset.task,
        n_transitions=len(dataset),
        n_episodes=dataset.n_episodes,
        kind_counts=dataset.kind_counts(),
        n_failures=int(np.sum(dataset.cost > 0)),
        created=meta.get("created") or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        sha256={name: array_sha256(arr) for name, arr in arrays.items()},
    )
    # A unique name opened exclusively (not mkstemp: its files are 0600, a
    # dataset should get the usual umask permissions).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as stream:
            np.savez_compressed(stream, **arrays, **{_META_KEY: np.array(json.dumps(meta))})
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dataset.meta = meta
    return path


def _read_npz(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if not path.is_file():
        raise FarlInputError(path, "dataset file not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if _META_KEY not in npz.files:
                raise FarlInputError(path, "not a FARL dataset (no metadata 'meta_json')")
            meta = json.loads(str(npz[_META_KEY]))
            arrays = {name: npz[name] for name in npz.files if name != _META_KEY}
    except FarlInputError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zlib.error) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise FarlInputError(path, f"corrupt or truncated dataset file ({detail})") from None
    if not isinstance(meta, dict):
        raise FarlInputError(path, "corrupt dataset metadata (not a JSON object)")
    return arrays, meta


def load_dataset(path: str | Path, expect_task: str | None = None) -> Dataset:
    """Read and verify a dataset written by `save_dataset`.

    Raises `FarlInputError` (one line: file and problem) for a missing,
    truncated or corrupt file, another format_version, a checksum mismatch,
    inconsistent arrays, or a task other than `expect_task`.
    """
    path = Path(path)
    arrays, meta = _read_npz(path)
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise FarlInputError(path, f"dataset format_version {version!r}, this reader reads {FORMAT_VERSION}")
    task = meta.get("task")
    if expect_task is not None and task != expect_task:
        raise FarlInputError(path, f"dataset is for task {task!r}, expected {expect_task!r}")
    missing = [name for name in ARRAYS if name not in arrays]
    if missing:
        raise FarlInputError(path, f"dataset lacks arrays {', '.join(missing)}")
    sums = meta.get("sha256") or {}
    for name in ARRAYS:
        if sums.get(name) != array_sha256(arrays[name]):
            raise FarlInputError(path, f"array '{name}' does not match its sha256 (corrupt or edited file)")
    try:
        return Dataset(str(task), **{name: arrays[name] for name in ARRAYS}, meta=meta)
    except ValueError as error:
        raise FarlInputError(path, f"inconsistent dataset: {error}") from None

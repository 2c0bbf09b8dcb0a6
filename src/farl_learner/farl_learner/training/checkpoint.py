"""Saving and loading networks, with one-line errors naming the file.

A checkpoint is a torch file holding {"format": "farl-checkpoint", "version",
"kind", "init": constructor arguments, "state_dict", "meta"}, so it rebuilds
its network without the config that made it, and a wrong file (another kind
of network, a truncated download, not a checkpoint at all) is refused with a
`FarlInputError` instead of a traceback from deep inside torch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from farl_common.errors import FarlInputError

from ..models import GaussianPolicy, QNetwork, ValueNetwork, WorldModel

FORMAT, VERSION = "farl-checkpoint", 1
KINDS: dict[str, type[nn.Module]] = {
    "policy": GaussianPolicy, "value": ValueNetwork, "q": QNetwork, "world_model": WorldModel,
}


def save_checkpoint(path: str | Path, kind: str, module: nn.Module, meta: dict[str, Any] | None = None) -> Path:
    """Write atomically (temp file + rename): a crash never leaves half a checkpoint."""
    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind {kind!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "version": VERSION, "kind": kind, "init": module.init_kwargs,
                "state_dict": module.state_dict(), "meta": meta or {}}, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path, kind: str, expect: dict[str, Any] | None = None) -> tuple[nn.Module, dict]:
    """(module, meta) from a checkpoint of `kind`; `expect` pins constructor arguments such as obs_dim."""
    path = Path(path)
    if not path.is_file():
        raise FarlInputError(path, f"{kind} checkpoint not found")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise FarlInputError(path, f"not a readable checkpoint ({type(error).__name__}); re-run pretraining or "
                                   f"copy the file again") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise FarlInputError(path, "not a FARL checkpoint (no 'farl-checkpoint' header)")
    if blob.get("version") != VERSION:
        raise FarlInputError(path, f"checkpoint format version {blob.get('version')!r}, this code reads {VERSION}")
    if blob.get("kind") != kind:
        raise FarlInputError(path, f"holds a {blob.get('kind')!r} network, expected a {kind!r}")
    init = dict(blob["init"])
    for key, value in (expect or {}).items():
        if init.get(key) != value:
            raise FarlInputError(path, f"{key} is {init.get(key)!r}, expected {value!r}", key=key)
    if "hidden" in init:
        init["hidden"] = tuple(init["hidden"])
    module = KINDS[kind](**init)
    try:
        module.load_state_dict(blob["state_dict"])
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else str(error)
        raise FarlInputError(path, f"weights do not fit the network: {first}") from None
    return module, blob.get("meta", {})

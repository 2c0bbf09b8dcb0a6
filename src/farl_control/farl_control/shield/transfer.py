"""A model folder as bytes inside the policy announcement, and back into a folder of the shield's own.

The learner may run on another machine (a GPU workstation) than the shield
(the robot PC): a path in the announcement would only work on a shared
filesystem. So the learner sends the folder's files themselves (manifest.json
and the graphs it lists, base64 in the JSON payload: about 0.6 MB for the
Fragile Push Wall folder, well within one reliable DDS message, which DDS
fragments itself), and the shield rebuilds the folder in its own cache:

- only manifest.json and the files it lists, with plain names (no folders, no
  "..": a payload never writes outside the cache);
- manifest.json must hash to the announcement's sha256 before anything is
  written; every graph is then checked against the manifest's checksums by
  `load_manifest` when the shield swaps it in, as for any folder.

Written into a temporary folder and renamed, so a half-written version never
exists under its final name.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Mapping

from farl_common.errors import FarlInputError
from farl_control.shield.manifest import MANIFEST

MAX_TRANSFER_BYTES = 64 * 1024 * 1024  # decoded; a model folder is well under a megabyte


def folder_files(folder: str | Path) -> list[str]:
    """manifest.json and the graph files it lists: what a shield needs of a model folder."""
    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    return [MANIFEST, *sorted({entry["file"] for entry in manifest["models"].values()})]


def pack_folder(folder: str | Path) -> dict[str, str]:
    """{file name: base64 bytes} of a model folder, for the `files` field of POLICY_PAYLOAD."""
    folder = Path(folder)
    files = {name: (folder / name).read_bytes() for name in folder_files(folder)}
    total = sum(len(data) for data in files.values())
    if total > MAX_TRANSFER_BYTES:
        raise FarlInputError(folder, f"model folder is {total / 1e6:.1f} MB, more than a policy transfer carries "
                                     f"({MAX_TRANSFER_BYTES / 1e6:.0f} MB)")
    return {name: base64.b64encode(data).decode("ascii") for name, data in files.items()}


def _safe_name(name: str) -> bool:
    return bool(name) and name == os.path.basename(name) and name not in (".", "..") and not name.startswith(".") \
        and "\\" not in name


def unpack_folder(files: Mapping[str, str], manifest_sha256: str, version: int, cache_root: str | Path) -> Path:
    """Rebuild a transferred model folder under `cache_root`; FarlInputError (nothing kept) if it is not sound."""
    where = f"policy transfer v{version}"
    if not isinstance(files, Mapping) or MANIFEST not in files:
        raise FarlInputError(None, f"{where}: no {MANIFEST} among the transferred files")
    decoded: dict[str, bytes] = {}
    total = 0
    for name, text in files.items():
        if not isinstance(name, str) or not _safe_name(name):
            raise FarlInputError(None, f"{where}: refusing file name {name!r} (plain file names only)")
        try:
            decoded[name] = base64.b64decode(text, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise FarlInputError(None, f"{where}: {name} is not valid base64 (corrupt transfer)") from None
        total += len(decoded[name])
        if total > MAX_TRANSFER_BYTES:
            raise FarlInputError(None, f"{where}: more than {MAX_TRANSFER_BYTES / 1e6:.0f} MB")
    if hashlib.sha256(decoded[MANIFEST]).hexdigest() != manifest_sha256:
        raise FarlInputError(None, f"{where}: {MANIFEST} sha256 differs from the announcement (corrupt transfer)")
    try:
        listed = {entry["file"] for entry in json.loads(decoded[MANIFEST])["models"].values()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise FarlInputError(None, f"{where}: {MANIFEST} does not list its models") from None
    if set(decoded) != listed | {MANIFEST}:
        missing, extra = sorted(listed - set(decoded)), sorted(set(decoded) - listed - {MANIFEST})
        raise FarlInputError(None, f"{where}: files do not match the manifest (missing {missing}, extra {extra})")
    root = Path(cache_root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"v{version:04d}-{manifest_sha256[:12]}"
    partial = root / f".{final.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for name, data in decoded.items():
        (partial / name).write_bytes(data)
    shutil.rmtree(final, ignore_errors=True)  # a re-sent version replaces an earlier copy
    partial.rename(final)
    return final

"""Reading a JSON object from a file, with the one-line errors every FARL input gets."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from farl_common.errors import FarlInputError


def read_json_object(path: str | Path, missing: str = "file not found") -> dict[str, Any]:
    """The file's top-level JSON object; FarlInputError naming the file if missing, malformed or not an object."""
    path = Path(path)
    if not path.is_file():
        raise FarlInputError(path, missing)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FarlInputError(path, f"not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise FarlInputError(path, "expected a JSON object")
    return data

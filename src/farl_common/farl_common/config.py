"""Reading YAML config files into typed values, with errors that name file and key.

Configs are plain YAML mappings; the typed dataclasses in `task_config` pull
values through a `Section`, which knows its file and dotted key path so every
error message can say exactly where the problem is.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import yaml

from farl_common.errors import ConfigError


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Parse a YAML file that must hold a mapping; ConfigError on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, "file not found")
    try:
        with path.open() as stream:
            data = yaml.safe_load(stream)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(path, f"malformed YAML{where}: {problem}") from None
    except OSError as error:
        raise ConfigError(path, f"cannot read: {error.strerror}") from None
    if not isinstance(data, dict):
        raise ConfigError(path, "expected a mapping of keys at the top level")
    return data


_MISSING = object()


class Section:
    """A mapping from a config file, read with typed getters that report file and key."""

    def __init__(self, data: dict[str, Any], path: str | Path, prefix: str = ""):
        self.data = data
        self.path = Path(path)
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.path, problem, key=self.key(name))

    def _raw(self, name: str, default: Any) -> Any:
        if name in self.data and self.data[name] is not None:
            return self.data[name]
        if default is _MISSING:
            raise self.error(name, "missing required key")
        return default

    def section(self, name: str, required: bool = True) -> "Section":
        value = self._raw(name, _MISSING if required else {})
        if not isinstance(value, dict):
            raise self.error(name, f"expected a mapping, got {type(value).__name__}")
        return Section(value, self.path, self.key(name))

    def sections(self, name: str) -> list["Section"]:
        value = self._raw(name, _MISSING)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(name, "expected a list of mappings")
        return [Section(v, self.path, f"{self.key(name)}[{i}]") for i, v in enumerate(value)]

    def string(self, name: str, default: Any = _MISSING, choices: Sequence[str] | None = None) -> str:
        value = self._raw(name, default)
        if not isinstance(value, str):
            raise self.error(name, f"expected a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.error(name, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def number(self, name: str, default: Any = _MISSING, minimum: float | None = None,
               maximum: float | None = None, positive: bool = False) -> float:
        value = self._raw(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(name, f"expected a finite number, got {value!r}")
        value = float(value)
        if positive and value <= 0:
            raise self.error(name, f"must be > 0, got {value}")
        if minimum is not None and value < minimum:
            raise self.error(name, f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(name, f"must be <= {maximum}, got {value}")
        return value

    def integer(self, name: str, default: Any = _MISSING, minimum: int | None = None) -> int:
        value = self._raw(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"expected an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(name, f"must be >= {minimum}, got {value}")
        return value

    def boolean(self, name: str, default: Any = _MISSING) -> bool:
        value = self._raw(name, default)
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {value!r}")
        return value

    def vector(self, name: str, length: int | None = None, default: Any = _MISSING) -> tuple[float, ...]:
        value = self._raw(name, default)
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
        ):
            raise self.error(name, f"expected a list of finite numbers, got {value!r}")
        if length is not None and len(value) != length:
            raise self.error(name, f"expected {length} numbers, got {len(value)}")
        return tuple(float(v) for v in value)

    def strings(self, name: str, default: Any = _MISSING) -> tuple[str, ...]:
        value = self._raw(name, default)
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise self.error(name, f"expected a list of strings, got {value!r}")
        return tuple(value)

"""The one way FARL reads a config file: YAML into typed, validated, frozen dataclasses.

A config class is a plain dataclass whose fields say everything about the file:
the type of each key (int, float, bool, str, fixed or variable tuples, a nested
config class, a tuple of them, dict[str, X], X | None, Any for free-form
values), its default (no default = required) and its constraints, given with
`setting(...)` (minimum, maximum, positive, below, choices, length). Rules that
span fields live in the class's `check()` method, which raises
`ConfigProblem(key, text)`.

`load(cls, path, overrides)` reads the file, applies dotted overrides (what a
command line's `--set control.rate_hz=20` gives), refuses unknown keys (a typo
never silently falls back to a default) and reports the first problem as one
`ConfigError` line: file, dotted key, problem. Task, stack, twin and FARL
configs are all read this way.

`Section` is the imperative reader kept for the FailureBench spec files
(farl_learner.envs): same checks and error lines, read key by key.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from farl_common.errors import ConfigError, FarlInputError

_MISSING = object()


class ConfigProblem(Exception):
    """Raised by a config class's `check()`: `key` is relative to the class's section."""

    def __init__(self, key: str, problem: str):
        super().__init__(problem)
        self.key = key
        self.problem = problem


def setting(default: Any = dataclasses.MISSING, *, minimum: float | None = None, maximum: float | None = None,
            below: float | None = None, positive: bool = False, choices: Sequence[str] | None = None,
            length: int | None = None) -> Any:
    """A dataclass field with constraints the loader checks (numbers: per element for number tuples)."""
    metadata = {"minimum": minimum, "maximum": maximum, "below": below, "positive": positive,
                "choices": tuple(choices) if choices is not None else None, "length": length}
    return dataclasses.field(default=default, metadata={"config": metadata})


# ---------------------------------------------------------------- reading files


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


def parse_overrides(pairs: Sequence[str], option: str = "--set") -> dict[str, Any]:
    """`KEY=VALUE` pairs (values parsed as YAML: numbers, booleans, [lists]) → {dotted key: value}."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise FarlInputError(None, f"expected KEY=VALUE, got {pair!r}", key=option)
        try:
            out[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise FarlInputError(None, f"{key.strip()}: value {text!r} is not valid YAML", key=option) from None
    return out


def apply_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any], source: str | Path,
                    cls: type | None = None) -> dict[str, Any]:
    """A deep copy of `data` with each dotted key set; with `cls`, each key must name one of its fields.

    Values are checked when the result is built.
    """
    out = copy.deepcopy(dict(data))
    for dotted, value in overrides.items():
        if cls is not None:
            _check_key(cls, dotted, source)
        *parents, name = dotted.split(".")
        target = out
        for i, part in enumerate(parents):
            child = target.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(source, f"{'.'.join(parents[:i + 1])} is not a section", key=dotted)
            target = child
        target[name] = value
    return out


def _check_key(cls: type, dotted: str, source: str | Path) -> None:
    """A dotted key must name a field of `cls` (free-form values below dict/Any fields are not checked)."""
    kind: Any = cls
    for part in dotted.split("."):
        while _is_union(kind):
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if not dataclasses.is_dataclass(kind):
            return
        fields = _field_types(kind)
        known = [f.name for f in _config_fields(kind)]
        if part not in known:
            raise ConfigError(source, f"unknown key; known: {', '.join(known)}", key=dotted)
        kind = fields[part]


def load(cls: type, path: str | Path, overrides: Mapping[str, Any] | None = None) -> Any:
    """Read `path` into config class `cls`, after applying dotted `overrides`."""
    data = load_yaml_mapping(path)
    if overrides:
        data = apply_overrides(data, overrides, f"{path} (--set)", cls)
    return build_with_overrides(cls, data, path, overrides or {})


def build_with_overrides(cls: type, data: Mapping[str, Any], path: str | Path, overrides: Mapping[str, Any]) -> Any:
    """`build`, with a bad value that came from an override blamed on the override, not on the file."""
    try:
        return build(cls, data, path)
    except ConfigError as error:
        if error.key is not None and any(error.key == k or error.key.startswith(f"{k}.") or
                                         error.key.startswith(f"{k}[") for k in overrides):
            raise ConfigError(f"{path} (--set)", error.problem, key=error.key) from None
        raise


def to_mapping(config: Any) -> dict[str, Any]:
    """A config instance as plain YAML-able data (tuples as lists), e.g. to write the effective file."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init
                    and not f.metadata.get("derived")}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, Path):
            return str(value)
        return value
    return plain(config)


# ---------------------------------------------------------------- building typed configs


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _config_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init and not f.metadata.get("derived")]


def derived(default: Any = None) -> Any:
    """A field set by the loader or the class itself, never read from the file (e.g. its path)."""
    return dataclasses.field(default=default, compare=False, repr=False, metadata={"derived": True})


def build(cls: type, data: Mapping[str, Any], path: str | Path, prefix: str = "") -> Any:
    """Instantiate config class `cls` from a mapping, recursively; ConfigError on the first problem."""
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"expected a mapping, got {_shown(data)}", key=prefix.rstrip(".") or None)
    types_ = _field_types(cls)
    fields = {f.name: f for f in _config_fields(cls)}
    for key in data:
        if key not in fields:
            raise ConfigError(path, f"unknown key; known: {', '.join(fields)}", key=f"{prefix}{key}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{prefix}{name}"
        value = data.get(name)
        if value is None and not _optional(types_[name]):
            if f.default is not dataclasses.MISSING:
                continue
            if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                continue
            raise ConfigError(path, "missing required key", key=key)
        if name not in data and f.default is not dataclasses.MISSING:
            continue
        values[name] = _convert(types_[name], value, path, key, f.metadata.get("config", {}))
    for f in dataclasses.fields(cls):
        if f.name == "path" and f.metadata.get("derived"):  # where the config came from (error lines)
            values["path"] = Path(path)
    try:
        instance = cls(**values)
    except ConfigProblem as problem:  # raised from __post_init__
        raise ConfigError(path, problem.problem, key=f"{prefix}{problem.key}") from None
    check = getattr(instance, "check", None)
    if callable(check):
        try:
            check()
        except ConfigProblem as problem:
            raise ConfigError(path, problem.problem, key=f"{prefix}{problem.key}") from None
    return instance


def _optional(kind: Any) -> bool:
    return _is_union(kind) and type(None) in typing.get_args(kind)


def _is_union(kind: Any) -> bool:
    return typing.get_origin(kind) in (typing.Union, types.UnionType)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _convert(kind: Any, value: Any, path: str | Path, key: str, meta: Mapping[str, Any]) -> Any:
    if kind is Any:
        return value
    if _is_union(kind):
        if value is None and type(None) in typing.get_args(kind):
            return None
        (inner,) = [a for a in typing.get_args(kind) if a is not type(None)]
        return _convert(inner, value, path, key, meta)
    if dataclasses.is_dataclass(kind):
        return build(kind, value, path, prefix=f"{key}.")
    origin = typing.get_origin(kind)
    if origin is tuple:
        args = typing.get_args(kind)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, f"expected a list, got {_shown(value)}", key=key)
        if len(args) == 2 and args[1] is Ellipsis:
            items = [args[0]] * len(value)
            length = meta.get("length")
        else:
            items, length = list(args), len(args)
        if length is not None and len(value) != length:
            raise ConfigError(path, f"expected {length} entries, got {len(value)}", key=key)
        out = tuple(_convert(t, v, path, f"{key}[{i}]" if dataclasses.is_dataclass(t) else key,
                             meta if not dataclasses.is_dataclass(t) else {})
                    for i, (t, v) in enumerate(zip(items, value)))
        return out
    if origin is dict:
        _, item = typing.get_args(kind)
        if not isinstance(value, Mapping):
            raise ConfigError(path, f"expected a mapping, got {_shown(value)}", key=key)
        return {str(k): _convert(item, v, path, f"{key}.{k}", {}) for k, v in value.items()}
    return _scalar(kind, value, path, key, meta)


def _scalar(kind: Any, value: Any, path: str | Path, key: str, meta: Mapping[str, Any]) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {_shown(value)}", key=key)
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {_shown(value)}", key=key)
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(path, f"{value!r} is not one of {', '.join(choices)}", key=key)
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"expected an integer, got {_shown(value)}", key=key)
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(path, f"expected a finite number, got {_shown(value)}", key=key)
        value = float(value)
    else:
        raise TypeError(f"config field {key}: unsupported type {kind!r}")
    _check_range(value, path, key, meta)
    return value


def _check_range(value: float, path: str | Path, key: str, meta: Mapping[str, Any]) -> None:
    if meta.get("positive") and value <= 0:
        raise ConfigError(path, f"must be > 0, got {value}", key=key)
    if meta.get("minimum") is not None and value < meta["minimum"]:
        raise ConfigError(path, f"must be >= {meta['minimum']}, got {value}", key=key)
    if meta.get("maximum") is not None and value > meta["maximum"]:
        raise ConfigError(path, f"must be <= {meta['maximum']}, got {value}", key=key)
    if meta.get("below") is not None and value >= meta["below"]:
        raise ConfigError(path, f"must be < {meta['below']}, got {value}", key=key)


# ---------------------------------------------------------------- imperative reading (FailureBench specs)


class Section:
    """A mapping from a config file, read key by key with the same checks and error lines as `build`."""

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
        return _scalar(str, self._raw(name, default), self.path, self.key(name), {"choices": choices})

    def number(self, name: str, default: Any = _MISSING, minimum: float | None = None,
               maximum: float | None = None, positive: bool = False) -> float:
        return _scalar(float, self._raw(name, default), self.path, self.key(name),
                       {"minimum": minimum, "maximum": maximum, "positive": positive})

    def integer(self, name: str, default: Any = _MISSING, minimum: int | None = None) -> int:
        return _scalar(int, self._raw(name, default), self.path, self.key(name), {"minimum": minimum})

    def boolean(self, name: str, default: Any = _MISSING) -> bool:
        return _scalar(bool, self._raw(name, default), self.path, self.key(name), {})

    def vector(self, name: str, length: int | None = None, default: Any = _MISSING) -> tuple[float, ...]:
        return _convert(tuple[float, ...], self._raw(name, default), self.path, self.key(name), {"length": length})

    def strings(self, name: str, default: Any = _MISSING) -> tuple[str, ...]:
        return _convert(tuple[str, ...], self._raw(name, default), self.path, self.key(name), {})

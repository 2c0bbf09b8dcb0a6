"""The node table of a task's stack (config/stacks/<task>.yaml).

Read by both the genuine launch_ros file (launch/<task>.launch.py) and the
pip-side launcher (`farl launch`), so which nodes run, with which parameters,
under which launch arguments is written down exactly once.
"""
from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from farl_common.errors import ConfigError, FarlInputError
from farl_common.paths import config_dir, resolve_config_path, stack_config_path
from farl_common.config import Section, load_yaml_mapping

_SUBSTITUTION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Parameters whose value is a path relative to config/: resolved to absolute
# paths so a node finds them whatever its working directory.
_CONFIG_PATH_PARAMETERS = ("task_config", "farl_config", "models_dir")
# The parameter of a managed node that makes it configure and activate itself (see robot.franka_node).
AUTOSTART = "autostart"


@dataclass(frozen=True)
class LaunchArgument:
    name: str
    default: str
    description: str
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class NodeSpec:
    """One node of the stack as written in the YAML (before arguments are applied)."""

    name: str
    package: str
    executable: str
    parameters: Mapping[str, Any]
    when: Mapping[str, str] = field(default_factory=dict)
    required: bool = False
    lifecycle: bool = False  # a managed node: the launcher drives configure -> activate


@dataclass(frozen=True)
class ResolvedNode:
    """A node to start: arguments substituted, config paths absolute."""

    name: str
    package: str
    executable: str
    parameters: dict[str, Any]
    required: bool
    lifecycle: bool = False

    @property
    def module(self) -> str:
        """The Python module whose main() runs this node (console script target)."""
        return console_script_module(self.package, self.executable)


@dataclass(frozen=True)
class StackDescription:
    task: str
    arguments: tuple[LaunchArgument, ...]
    nodes: tuple[NodeSpec, ...]
    path: Path

    @staticmethod
    def from_file(path: str | Path) -> "StackDescription":
        path = Path(path)
        root = Section(load_yaml_mapping(path), path)
        arguments = []
        for name, spec in root.section("args").data.items():
            s = root.section("args").section(name)
            choices = s.strings("choices", default=None) if "choices" in spec else None
            default = str(s._raw("default", "")).lower() if isinstance(spec.get("default"), bool) else str(
                s._raw("default", ""))
            if choices is not None and default not in choices:
                raise s.error("default", f"{default!r} is not one of {', '.join(choices)}")
            arguments.append(LaunchArgument(name, default, s.string("description", ""), choices))
        names = {a.name for a in arguments}
        nodes = []
        for s in root.sections("nodes"):
            when = s.section("when", required=False).data
            for key in when:
                if key not in names:
                    raise s.error("when", f"{key!r} is not a declared launch argument")
            params = s.section("parameters", required=False).data
            for key, value in params.items():
                for ref in _SUBSTITUTION.findall(str(value)):
                    if ref not in names:
                        raise s.error(f"parameters.{key}", f"${{{ref}}} is not a declared launch argument")
            nodes.append(NodeSpec(
                name=s.string("name"),
                package=s.string("package"),
                executable=s.string("executable"),
                parameters=dict(params),
                when={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in when.items()},
                required=s.boolean("required", False),
                lifecycle=s.boolean("lifecycle", False),
            ))
        return StackDescription(task=root.string("task"), arguments=tuple(arguments), nodes=tuple(nodes), path=path)

    def argument_values(self, overrides: Mapping[str, str]) -> dict[str, str]:
        """Defaults updated by `overrides`; unknown names and bad choices are input errors."""
        values = {a.name: a.default for a in self.arguments}
        for key, value in overrides.items():
            arg = next((a for a in self.arguments if a.name == key), None)
            if arg is None:
                raise FarlInputError(self.path, f"unknown launch argument {key!r}; known: {', '.join(values)}",
                                     key="args")
            if arg.choices is not None and value not in arg.choices:
                raise FarlInputError(self.path, f"{key}:={value} is not one of {', '.join(arg.choices)}",
                                     key=f"args.{key}")
            values[key] = value
        return values

    def resolve(self, overrides: Mapping[str, str] | None = None) -> list[ResolvedNode]:
        """The nodes that run under these launch arguments, in start order."""
        values = self.argument_values(overrides or {})
        resolved = []
        for node in self.nodes:
            if any(values[k] != v for k, v in node.when.items()):
                continue
            params = {k: _substitute(v, values) for k, v in node.parameters.items()}
            for key in _CONFIG_PATH_PARAMETERS:
                if isinstance(params.get(key), str) and params[key]:
                    params[key] = str(resolve_config_path(params[key]).resolve())
            if node.lifecycle:
                params[AUTOSTART] = False  # the launcher (or the launch file) drives its transitions
            resolved.append(ResolvedNode(node.name, node.package, node.executable, params, node.required,
                                         node.lifecycle))
        return resolved


def _substitute(value: Any, values: Mapping[str, str]) -> Any:
    """Replace ${arg} in strings; a string that is exactly one ${arg} keeps YAML typing of the value."""
    if not isinstance(value, str):
        return value
    match = _SUBSTITUTION.fullmatch(value)
    if match:
        return _typed(values[match.group(1)])
    return _SUBSTITUTION.sub(lambda m: values[m.group(1)], value)


def _typed(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def console_script_module(package: str, executable: str) -> str:
    """The module a package's console script runs, read from the installed entry points.

    setup.py is the one place that says which module implements an executable;
    `ros2 run`/launch_ros use the script, the pip launcher runs `python -m` on its module.
    """
    for entry in importlib.metadata.entry_points(group="console_scripts", name=executable):
        if entry.dist is None or entry.dist.name.replace("-", "_") == package:
            return entry.module
    raise FarlInputError(None, f"package {package!r} installs no executable {executable!r} "
                               "(is the package installed? see scripts/setup.sh)")


def known_stacks() -> list[str]:
    return sorted(p.stem for p in (config_dir() / "stacks").glob("*.yaml"))


def load_stack(task: str) -> StackDescription:
    path = stack_config_path(task)
    if not path.is_file():
        raise ConfigError(path, f"unknown task {task!r}; known stacks: {', '.join(known_stacks()) or 'none'}")
    return StackDescription.from_file(path)


def parse_launch_arguments(tokens: list[str]) -> dict[str, str]:
    """`key:=value` tokens (as ros2 launch takes them) → dict; anything else is an input error."""
    values = {}
    for token in tokens:
        key, sep, value = token.partition(":=")
        if not sep or not key:
            raise FarlInputError(None, f"launch arguments are key:=value, got {token!r}")
        values[key] = value
    return values

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
from farl_common.config import ConfigProblem, build, derived, load, load_yaml_mapping

_SUBSTITUTION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Parameters whose value is a path relative to config/: resolved to absolute
# paths so a node finds them whatever its working directory.
_CONFIG_PATH_PARAMETERS = ("task_config", "farl_config", "models_dir", "perception_config")
# The parameter of a managed node that makes it configure and activate itself (see robot.franka_node).
AUTOSTART = "autostart"
# "${task}" is always defined: the stack's task name, so one node table serves every task.
TASK_VARIABLE = "task"


def _text(value: Any) -> str:
    """A launch argument's value as ros2 launch sees it: YAML true/false become "true"/"false"."""
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class ArgumentSpec:
    """One entry of `args:` (its name is the key)."""

    default: Any = ""
    description: str = ""
    choices: tuple[str, ...] | None = None
    auto: dict[str, dict[str, str]] | None = None
    """The value `auto` stands for a value chosen by another argument: {other: {its value: this value}}
    (perception: auto = ground_truth with robot:=sim, aruco with robot:=real)."""
    only_with: dict[str, dict[str, str]] | None = None
    """Values allowed only together with other arguments' values: {value: {other: required value}}."""

    def check(self) -> None:
        if self.choices is not None and _text(self.default) not in self.choices:
            raise ConfigProblem("default", f"{_text(self.default)!r} is not one of {', '.join(self.choices)}")
        if self.auto is not None and len(self.auto) != 1:
            raise ConfigProblem("auto", "names exactly one other argument")
        for key, table in (self.auto or {}).items():
            for value in table.values():
                if self.choices is not None and value not in self.choices:
                    raise ConfigProblem(f"auto.{key}", f"{value!r} is not one of {', '.join(self.choices)}")


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
    parameters: dict[str, Any] = field(default_factory=dict)
    when: dict[str, Any] = field(default_factory=dict)
    """Launch argument values under which the node runs (all must match)."""
    required: bool = False
    """Its exit (or failed bring-up) takes the whole stack down."""
    lifecycle: bool = False
    """A managed node: the launcher drives configure -> activate."""
    completes: bool = False
    """Its exit with code 0 is the run's normal end (the teleop node after its episodes): stack down, exit 0."""
    terminal: bool = False
    """Gets the launcher's terminal (stdin, stderr): the keyboard teleop reads keys and draws its status line."""
    restarts: int = 0
    """How many times `farl launch` / `farl run` start it again after it exits with an error (not after a
    clean exit, and never while the stack is going down); when they are used up, `required` applies."""
    restart_when: dict[str, Any] = field(default_factory=dict)
    """Launch argument values under which `restarts` applies (all must match); empty = always."""


@dataclass(frozen=True)
class ResolvedNode:
    """A node to start: arguments substituted, config paths absolute."""

    name: str
    package: str
    executable: str
    parameters: dict[str, Any]
    required: bool
    lifecycle: bool = False
    terminal: bool = False
    completes: bool = False
    restarts: int = 0

    @property
    def module(self) -> str:
        """The Python module whose main() runs this node (console script target)."""
        return console_script_module(self.package, self.executable)


@dataclass(frozen=True)
class StackDescription:
    task: str
    args: dict[str, ArgumentSpec]
    nodes: tuple[NodeSpec, ...]
    include: str | None = None
    """Another stack file (relative to this one) whose args and nodes this task runs, ${task} filled in
    with this task: the tasks share one node table and differ only in their config files."""
    path: Path = derived()

    @property
    def arguments(self) -> tuple[LaunchArgument, ...]:
        task = {TASK_VARIABLE: self.task}
        return tuple(LaunchArgument(name, _substitute(_text(a.default), task), a.description, a.choices)
                     for name, a in self.args.items())

    def check(self) -> None:
        for name, arg in self.args.items():
            for other, _ in list((arg.auto or {}).items()) + [kv for table in (arg.only_with or {}).values()
                                                                  for kv in table.items()]:
                if other not in self.args:
                    raise ConfigProblem(f"args.{name}", f"refers to {other!r}, which is not a declared launch argument")
        for i, node in enumerate(self.nodes):
            for field_name, table in (("when", node.when), ("restart_when", node.restart_when)):
                for key in table:
                    if key not in self.args:
                        raise ConfigProblem(f"nodes[{i}].{field_name}", f"{key!r} is not a declared launch argument")
            if node.restarts < 0:
                raise ConfigProblem(f"nodes[{i}].restarts", f"{node.restarts} is negative")
            for key, value in node.parameters.items():
                for ref in _SUBSTITUTION.findall(str(value)):
                    if ref not in self.args and ref != TASK_VARIABLE:
                        raise ConfigProblem(f"nodes[{i}].parameters.{key}",
                                            f"${{{ref}}} is not a declared launch argument")

    @staticmethod
    def from_file(path: str | Path) -> "StackDescription":
        path = Path(path)
        data = load_yaml_mapping(path)
        include = data.get("include")
        if include is None:
            return load(StackDescription, path)
        base_path = path.parent / str(include)
        if not base_path.is_file():
            raise ConfigError(path, f"{base_path} does not exist (include names a stack file beside this one)",
                              key="include")
        base = load_yaml_mapping(base_path)
        if base.get("include") is not None:
            raise ConfigError(base_path, "an included stack file may not include another", key="include")
        merged = {**base, **{k: v for k, v in data.items() if k != "args"}}
        merged["args"] = {**(base.get("args") or {}), **(data.get("args") or {})}
        return build(StackDescription, merged, path)

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
        for name, spec in self.args.items():
            if spec.auto and values[name] == "auto":
                (other, table), = spec.auto.items()
                if values[other] not in table:
                    raise FarlInputError(self.path, f"{name}:=auto has no value for {other}:={values[other]}; "
                                                    f"give {name} explicitly", key=f"args.{name}")
                values[name] = table[values[other]]
            for other, required in (spec.only_with or {}).get(values[name], {}).items():
                if values[other] != required:
                    raise FarlInputError(self.path, f"{name}:={values[name]} needs {other}:={required} "
                                                    f"(got {other}:={values[other]})", key=f"args.{name}")
        return values

    def resolve(self, overrides: Mapping[str, str] | None = None) -> list[ResolvedNode]:
        """The nodes that run under these launch arguments, in start order."""
        values = {TASK_VARIABLE: self.task, **self.argument_values(overrides or {})}
        resolved = []
        for node in self.nodes:
            if any(values[k] != _text(v) for k, v in node.when.items()):
                continue
            params = {k: _substitute(v, values) for k, v in node.parameters.items()}
            for key in _CONFIG_PATH_PARAMETERS:
                if isinstance(params.get(key), str) and params[key]:
                    params[key] = str(resolve_config_path(params[key]).resolve())
            if node.lifecycle:
                params[AUTOSTART] = False  # the launcher (or the launch file) drives its transitions
            restarts = node.restarts if all(values[k] == _text(v) for k, v in node.restart_when.items()) else 0
            resolved.append(ResolvedNode(node.name, node.package, node.executable, params, node.required,
                                         node.lifecycle, node.terminal, node.completes, restarts))
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

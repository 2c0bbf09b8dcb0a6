"""Every test is marked for what it runs, so `-m "not sim"` really skips MuJoCo and `-m "not ros"` DDS.

Read from each test module's source (no test is run): a test needs `sim` when
its module imports something that steps MuJoCo (franky-sim's scene, the twin,
FailureBench on Meta-World) or when it starts franky-sim (`sim_robot_node`,
the `robot_ip` fixture); it needs `ros` when it starts processes through the
`processes` fixture or talks to the graph (RobotClient, LifecycleClient, rclpy).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
# Modules whose use runs MuJoCo (importing farl_learner.twin.config or data.format does not).
MUJOCO = ("mujoco", "metaworld", "gymnasium", "farl_control.sim.scene", "farl_learner.envs.failurebench",
          "farl_learner.envs.scene", "farl_learner.envs.constructed", "farl_learner.data.demos",
          "farl_learner.data.recovery", "farl_learner.data.failure_data", "farl_learner.data.build",
          "farl_learner.twin.env", "farl_learner.twin.data", "farl_learner.twin.actors", "farl_learner.twin.experts")
ROS_NAMES = {"processes", "RobotClient", "LifecycleClient", "rclpy"}
SIM_PROGRAMS = {"sim_robot_node"}


def _marks(decorators: list[ast.expr]) -> set[str]:
    marks = set()
    for node in decorators:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Attribute) and sub.value.attr == "mark":
                marks.add(sub.attr)
    return marks


def _module_marks(tree: ast.Module) -> set[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            return _marks([node.value])
    return set()


def _imports(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _uses(function: ast.FunctionDef) -> tuple[set[str], set[str]]:
    """Names (fixtures, identifiers, attributes) a test function uses, and the programs it starts."""
    names = {a.arg for a in function.args.args}
    programs = set()  # first entries of list literals: the argv of a process the test starts
    for node in ast.walk(function):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.List) and node.elts and isinstance(node.elts[0], ast.Constant):
            programs.add(str(node.elts[0].value))
    return names, programs


def _fixture_uses(tree: ast.Module) -> dict[str, tuple[set[str], set[str]]]:
    """Module-level fixtures: what each uses, so a test using the fixture inherits it."""
    return {node.name: _uses(node) for node in tree.body
            if isinstance(node, ast.FunctionDef) and "fixture" in ast.unparse(node.decorator_list or [ast.Constant(0)])}


def _cases() -> list[tuple[str, str, set[str], set[str]]]:
    cases = []
    for path in sorted(TESTS.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        module_marks = _module_marks(tree)
        mujoco = any(name == m or name.startswith(m + ".") for name in _imports(tree) for m in MUJOCO)
        fixtures = _fixture_uses(tree)
        for node in tree.body:
            if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
                continue
            names, programs = _uses(node)
            pending, seen = [a.arg for a in node.args.args if a.arg in fixtures], set()
            while pending:  # the fixtures it uses, and theirs
                fixture = pending.pop()
                if fixture in seen:
                    continue
                seen.add(fixture)
                names |= fixtures[fixture][0]
                programs |= fixtures[fixture][1]
                pending += [n for n in fixtures[fixture][0] if n in fixtures]
            needs = set()
            if mujoco or "robot_ip" in names or programs & SIM_PROGRAMS:
                needs.add("sim")
            if names & ROS_NAMES:
                needs.add("ros")
            cases.append((path.name, node.name, needs, module_marks | _marks(node.decorator_list)))
    return cases


def test_every_test_is_marked_for_what_it_runs():
    cases = _cases()
    assert len(cases) > 100  # the scan really sees the suite
    unmarked = [f"{module}::{test} runs {', '.join(sorted(needs - marks))}"
                for module, test, needs, marks in cases if needs - marks]
    assert not unmarked, "not marked for what they run:\n" + "\n".join(unmarked)
    assert sum("sim" in needs for *_, needs, _ in cases) > 30  # and recognises MuJoCo and ROS users
    assert sum("ros" in needs for *_, needs, _ in cases) > 20


def test_the_colcon_build_is_marked_slow():
    tree = ast.parse((TESTS / "test_packaging.py").read_text())
    assert "slow" in _module_marks(tree)

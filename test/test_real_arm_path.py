"""The real-arm path needs neither the simulator nor the learning stack.

A lab PC that drives the FR3 runs the control node, the shield (ONNX Runtime)
and the episode monitor; it must not need MuJoCo, Meta-World or torch
installed. Each check runs in a fresh interpreter where importing them fails.
"""
from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from farl_common.paths import task_config_path

BLOCKED = ("mujoco", "metaworld", "torch", "gymnasium", "franky_sim")
BLOCKER = textwrap.dedent(f"""
    import importlib.abc, sys
    class _Unavailable(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.partition(".")[0] in {BLOCKED!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}} (unavailable on the real-arm path)")
            return None
    sys.meta_path.insert(0, _Unavailable())
""")


SIM_ONLY_MODULES = ("farl_control.sim.", "farl_perception.sim_camera_node")


def real_arm_scripts() -> dict[str, str]:
    """Every console script of farl_control and farl_perception except the simulator's: name -> module."""
    scripts = {ep.name: ep.module for ep in importlib.metadata.entry_points(group="console_scripts")
               if ep.dist is not None and ep.dist.name.replace("-", "_") in ("farl_control", "farl_perception")}
    return {name: module for name, module in scripts.items() if not module.startswith(SIM_ONLY_MODULES)}


def run_blocked(code: str, *args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code), *args], capture_output=True,
                          text=True, timeout=timeout_s)


def test_the_blocker_really_blocks():
    result = run_blocked("import mujoco")
    assert result.returncode != 0 and "unavailable on the real-arm path" in result.stderr


def test_every_robot_side_node_imports_without_mujoco_metaworld_or_torch():
    scripts = real_arm_scripts()
    assert {"franka_node", "shield_node", "episode_monitor_node", "realsense_camera_node",
            "object_pose_node"} <= set(scripts), scripts
    code = """
        import importlib, sys
        for module in sys.argv[1:]:
            importlib.import_module(module)
        print(sorted(m for m in sys.modules if m.partition('.')[0] in ('mujoco', 'metaworld', 'torch')))
    """
    result = run_blocked(code, *scripts.values(), "farl_control.launching.launcher",
                         "farl_perception.calibration.command")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_farl_launch_for_the_real_arm_works_without_them():
    code = """
        import sys
        from farl_learner.cli import main
        main(["launch", "fragile_push_wall", "robot:=real", "robot_ip:=10.0.0.2", "--dry-run"])
    """
    result = run_blocked(code)
    assert result.returncode == 0, result.stderr[-3000:]
    started = [line.split(":")[0] for line in result.stdout.splitlines() if line and not line.startswith(" ")]
    assert "franka" in started and "sim_robot" not in started, result.stdout


@pytest.mark.ros
@pytest.mark.timeout(60)
def test_the_control_node_runs_without_them(tmp_path: Path):
    """Not only imports: franka_node starts, tries the arm and reports it unreachable, in one line."""
    data = yaml.safe_load(task_config_path("fragile_push_wall").read_text())
    data["robot"]["connect_timeout_s"] = 1.0
    config = tmp_path / "fast.yaml"
    config.write_text(yaml.safe_dump(data))
    code = """
        import sys
        from farl_control.robot.franka_node import main
        main(sys.argv[1:])
    """
    result = run_blocked(code, "--ros-args", "-p", f"task_config:={config}", "-p", "robot_ip:=127.0.0.9",
                         "-p", "autostart:=true")
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 1, lines
    assert lines[-1].startswith("franka_node: error: cannot reach the arm at 127.0.0.9"), lines
    assert not any("Traceback" in line or "unavailable on the real-arm path" in line for line in lines), lines

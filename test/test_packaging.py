"""The five packages build with colcon as genuine ament_python packages.

A lab PC with a ROS 2 install uses `colcon build`; this proves that path works
from the same sources: launch files and config land in share/farl_control/,
node executables in lib/<package>/, and the installed package finds its config
through the ament index rather than the source checkout.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COLCON = shutil.which("colcon") or str(Path(sys.executable).with_name("colcon"))
PACKAGES = ("farl_common", "farl_control", "farl_teleop", "farl_perception", "farl_learner")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("colcon")
    result = subprocess.run(
        [COLCON, "--log-base", str(base / "log"), "build", "--base-paths", str(REPO / "src"),
         "--build-base", str(base / "build"), "--install-base", str(base / "install")],
        cwd=base, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return base / "install"


def installed_env(install: Path) -> dict[str, str]:
    """The environment `source install/setup.sh` would give: every package's site-packages and prefix."""
    sites = [str(next((install / p / "lib").glob("python3*/site-packages"))) for p in PACKAGES]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sites),
               AMENT_PREFIX_PATH=os.pathsep.join(str(install / p) for p in PACKAGES))
    env.pop("FARL_CONFIG_DIR", None)
    return env


def test_colcon_builds_all_five_packages(colcon_install):
    for package in PACKAGES:
        assert (colcon_install / package / "share" / package / "package.xml").is_file()
        assert (colcon_install / "share" / "ament_index" / "resource_index" / "packages" / package).exists() or \
            (colcon_install / package / "share" / "ament_index" / "resource_index" / "packages" / package).is_file()


def test_launch_files_and_config_are_installed_into_farl_control_share(colcon_install):
    share = colcon_install / "farl_control" / "share" / "farl_control"
    assert (share / "launch" / "fragile_push_wall.launch.py").is_file()
    assert (share / "config" / "tasks" / "fragile_push_wall.yaml").is_file()
    assert (share / "config" / "stacks" / "fragile_push_wall.yaml").is_file()


def test_node_executables_are_installed_where_ros2_run_looks(colcon_install):
    lib = colcon_install / "farl_control" / "lib" / "farl_control"
    assert (lib / "franka_node").is_file()
    assert (lib / "sim_robot_node").is_file()
    perception = colcon_install / "farl_perception" / "lib" / "farl_perception"
    for node in ("realsense_camera_node", "sim_camera_node", "object_pose_node"):
        assert (perception / node).is_file(), node


def test_the_installed_package_reads_config_from_its_share_folder(colcon_install):
    env = installed_env(colcon_install)
    probe = "import farl_common.paths as p; print(p.__file__); print(p.config_dir())"
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                            timeout=60, cwd=colcon_install)
    assert result.returncode == 0, result.stderr
    module_file, config = result.stdout.strip().splitlines()[-2:]
    assert module_file.startswith(str(colcon_install))
    assert Path(config) == colcon_install / "farl_control" / "share" / "farl_control" / "config"


def test_the_installed_launcher_finds_each_node_module_from_the_entry_points(colcon_install):
    probe = ("from farl_control.launching.stack import load_stack\n"
             "for n in load_stack('fragile_push_wall').resolve({}): print(n.name, n.module)")
    result = subprocess.run([sys.executable, "-c", probe], env=installed_env(colcon_install), capture_output=True,
                            text=True, timeout=60, cwd=colcon_install)
    assert result.returncode == 0, result.stderr
    modules = dict(line.split() for line in result.stdout.strip().splitlines())
    assert modules == {"sim_robot": "farl_control.sim.sim_robot_node", "franka": "farl_control.robot.franka_node",
                       "episode_monitor": "farl_control.episodes.episode_monitor_node",
                       "shield": "farl_control.shield.shield_node", "learner": "farl_learner.learner_node"}


def test_teleop_nodes_and_the_demo_collection_launch_file_are_installed(colcon_install):
    lib = colcon_install / "farl_teleop" / "lib" / "farl_teleop"
    assert (lib / "teleop_node").is_file() and (lib / "recorder_node").is_file()
    assert (colcon_install / "farl_teleop" / "share" / "farl_teleop" / "launch" / "collect_demos.launch.py").is_file()

"""farl_control: the robot side of FARL (no torch anywhere in this package).

Installable two ways: `colcon build` in a ROS 2 workspace (launch files and
config land in share/farl_control/) and `pip install -e` for the pip-only set-up.
"""
import os
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "farl_control"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def _share_files(folder: str) -> list[tuple[str, list[str]]]:
    """Install the repo-level launch/ and config/ trees into share/farl_control/.

    They live at the workspace root (one source of truth for both set-ups), so
    paths are given relative to this setup.py as setuptools expects.
    """
    root = REPO / folder
    entries: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            target = f"share/{PACKAGE}/{path.parent.relative_to(REPO)}"
            entries.setdefault(target, []).append(os.path.relpath(path, HERE))
    return sorted(entries.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *_share_files("launch"),
        *_share_files("config"),
    ],
    install_requires=["setuptools", "numpy", "pyyaml", "onnxruntime"],
    zip_safe=True,
    maintainer="FARL-ROS maintainers",
    maintainer_email="maintainers@farl-ros.org",
    description="Robot-side FARL nodes: Franka control (managed), simulated FR3, safety shield, episode monitor, launching.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "franka_node = farl_control.robot.franka_node:main",
            "sim_robot_node = farl_control.sim.sim_robot_node:main",
            "shield_node = farl_control.shield.shield_node:main",
            "episode_monitor_node = farl_control.episodes.episode_monitor_node:main",
        ],
    },
)

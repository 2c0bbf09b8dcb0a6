"""Every package.xml declares what its package's Python code imports, and nothing it does not.

`rosdep install --from-paths src` (the Docker images, a lab PC with a ROS 2
install) installs only what the manifests declare: an import missing there is
a node that dies with ModuleNotFoundError on the robot PC, found only there.
Each third-party module a package imports (anywhere in its sources, lazy
imports inside functions included) must map, through the explicit table
below, to a key its package.xml declares as a run-time dependency; the
packages of this repository must be declared too. Keys that rosdistro does not
know (pip-only packages) must be defined in rosdep/farl.yaml.
"""
from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("farl_common", "farl_control", "farl_teleop", "farl_perception", "farl_learner")
# Sources a package installs besides its own module tree (farl_control's setup.py installs launch/).
EXTRA_SOURCES = {"farl_control": ("launch",), "farl_teleop": ("src/farl_teleop/launch",)}
CUSTOM_ROSDEP = REPO / "rosdep" / "farl.yaml"

# Top-level import name -> rosdep key. ROS packages are their own key; rosdistro keys
# (python3-numpy, python3-yaml) resolve to apt; the `-pip` keys are ours (rosdep/farl.yaml).
IMPORT_TO_KEY = {
    "numpy": "python3-numpy",
    "yaml": "python3-yaml",
    "rclpy": "rclpy",
    "launch": "launch",
    "launch_ros": "launch_ros",
    "ament_index_python": "ament_index_python",
    "rcl_interfaces": "rcl_interfaces",
    "builtin_interfaces": "builtin_interfaces",
    "std_msgs": "std_msgs",
    "std_srvs": "std_srvs",
    "geometry_msgs": "geometry_msgs",
    "sensor_msgs": "sensor_msgs",
    "visualization_msgs": "visualization_msgs",
    "diagnostic_msgs": "diagnostic_msgs",
    "lifecycle_msgs": "lifecycle_msgs",
    "franky": "python3-franky-control-pip",
    "franky_sim": "python3-franky-sim-pip",
    "mujoco": "python3-mujoco-pip",
    "onnxruntime": "python3-onnxruntime-pip",
    "pinocchio": "python3-pin-pip",
    "torch": "python3-torch-pip",
    "gymnasium": "python3-gymnasium-pip",
    "metaworld": "python3-metaworld-pip",
    "matplotlib": "python3-matplotlib-pip",
    "tqdm": "python3-tqdm-pip",
    "ray": "python3-ray-pip",
    "mcap": "python3-mcap-pip",
    "rosbags": "python3-rosbags-pip",
    "cv2": "python3-opencv-pip",
    "pyrealsense2": "python3-pyrealsense2-pip",
    **{package: package for package in PACKAGES},
}
# Keys rosdep resolves without our YAML: ROS 2 Jazzy packages and rosdistro's python keys.
ROSDISTRO_KEYS = {
    "rclpy", "launch", "launch_ros", "ament_index_python", "rcl_interfaces", "builtin_interfaces", "std_msgs",
    "std_srvs", "geometry_msgs", "sensor_msgs", "visualization_msgs", "diagnostic_msgs", "lifecycle_msgs",
    "python3-numpy", "python3-yaml", "python3-pytest",
}
RUN_DEPENDENCY_TAGS = ("depend", "exec_depend")


def imported_modules(package: str) -> dict[str, set[str]]:
    """Top-level module -> files importing it, for every absolute import in the package's sources."""
    roots = [REPO / "src" / package / package, *(REPO / extra for extra in EXTRA_SOURCES.get(package, ()))]
    found: dict[str, set[str]] = {}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top != package:
                        found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def declared_keys(package: str, tags: tuple[str, ...] = RUN_DEPENDENCY_TAGS) -> set[str]:
    root = ET.parse(REPO / "src" / package / "package.xml").getroot()
    return {element.text.strip() for tag in tags for element in root.iter(tag) if element.text}


def custom_keys() -> dict:
    return yaml.safe_load(CUSTOM_ROSDEP.read_text())


@pytest.mark.parametrize("package", PACKAGES)
def test_every_third_party_import_maps_to_a_key_in_the_mapping(package):
    unknown = {m: sorted(f) for m, f in imported_modules(package).items() if m not in IMPORT_TO_KEY}
    assert not unknown, (f"{package} imports modules with no rosdep key in IMPORT_TO_KEY (add one, and the "
                         f"key to src/{package}/package.xml): {unknown}")


@pytest.mark.parametrize("package", PACKAGES)
def test_every_import_is_declared_as_a_run_dependency_in_package_xml(package):
    declared = declared_keys(package)
    missing = {IMPORT_TO_KEY[m]: sorted(f)[0] for m, f in imported_modules(package).items()
               if m in IMPORT_TO_KEY and IMPORT_TO_KEY[m] not in declared}
    assert not missing, f"src/{package}/package.xml lacks <exec_depend> for (key: first importing file) {missing}"


@pytest.mark.parametrize("package", PACKAGES)
def test_package_xml_declares_nothing_the_package_does_not_import(package):
    used = {IMPORT_TO_KEY[m] for m in imported_modules(package) if m in IMPORT_TO_KEY}
    stale = declared_keys(package) - used
    assert not stale, f"src/{package}/package.xml declares run dependencies nothing imports: {sorted(stale)}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_declared_key_resolves_in_rosdistro_or_the_custom_rosdep_yaml(package):
    known = ROSDISTRO_KEYS | set(custom_keys()) | set(PACKAGES)
    every_tag = RUN_DEPENDENCY_TAGS + ("build_depend", "test_depend", "buildtool_depend")
    unresolved = declared_keys(package, every_tag) - known
    assert not unresolved, f"src/{package}/package.xml: keys rosdep cannot resolve, define them in " \
                           f"rosdep/farl.yaml: {sorted(unresolved)}"


def test_custom_rosdep_keys_install_with_pip_on_ubuntu_and_debian():
    for key, rules in custom_keys().items():
        assert key.endswith("-pip"), f"rosdep/farl.yaml: {key}: pip-only keys end in -pip (rosdistro's convention)"
        for platform in ("ubuntu", "debian"):
            assert rules[platform]["pip"]["packages"], f"rosdep/farl.yaml: {key}.{platform}: no pip package"


def test_the_real_arm_path_dependencies_stay_free_of_torch():
    """The robot image installs farl_control's keys: torch there would be gigabytes the arm never uses."""
    assert "python3-torch-pip" not in declared_keys("farl_control")
    assert "python3-torch-pip" not in declared_keys("farl_common")
    assert "python3-torch-pip" not in declared_keys("farl_teleop")
    assert "python3-torch-pip" not in declared_keys("farl_perception")


def test_the_scanner_sees_lazy_imports_inside_functions():
    """farl_common imports rclpy only inside a method: a scanner that missed it would pass vacuously."""
    assert "rclpy" in imported_modules("farl_common")
    assert "launch_ros" in imported_modules("farl_control")  # from launch/, which farl_control installs


@pytest.mark.parametrize("package", PACKAGES)
def test_each_manifest_is_a_valid_format_3_package_xml(package):
    from catkin_pkg.package import parse_package

    parse_package(str(REPO / "src" / package / "package.xml")).validate()

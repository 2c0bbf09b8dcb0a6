"""farl_teleop: teleoperation devices and MCAP demo recording."""
from setuptools import find_packages, setup

PACKAGE = "farl_teleop"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", ["launch/collect_demos.launch.py"]),
    ],
    install_requires=["setuptools", "numpy"],
    zip_safe=True,
    maintainer="FARL-ROS maintainers",
    maintainer_email="maintainers@farl-ros.org",
    description="Teleoperation (SpaceMouse, keyboard, scripted operator) and demo recording.",
    license="Apache-2.0",
    entry_points={"console_scripts": [
        "teleop_node = farl_teleop.teleop_node:main",
        "recorder_node = farl_teleop.recorder_node:main",
    ]},
)

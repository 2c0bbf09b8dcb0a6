"""farl_common: what every FARL package shares and nothing robot- or learning-specific.

Configuration (the one loader behind every config/ file, the task description),
the ROS interface (topic and service names, QoS contract, versioned JSON
payload schemas) and the one-line input errors. No rclpy, no torch, no MuJoCo
at import time, so the robot side, the learner and tools all depend on it.
"""
from setuptools import find_packages, setup

PACKAGE = "farl_common"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools", "numpy", "pyyaml"],
    zip_safe=True,
    maintainer="FARL-ROS maintainers",
    maintainer_email="maintainers@farl-ros.org",
    description="FARL configuration, ROS interface (names, QoS, payload schemas) and input errors.",
    license="Apache-2.0",
    entry_points={"console_scripts": []},
)

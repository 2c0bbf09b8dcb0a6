"""farl_perception: scene camera (RealSense or the sim render), ArUco object poses, camera calibration."""
from setuptools import find_packages, setup

PACKAGE = "farl_perception"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools", "numpy"],
    zip_safe=True,
    maintainer="FARL-ROS maintainers",
    maintainer_email="maintainers@farl-ros.org",
    description="Scene camera (RealSense, or a MuJoCo render of the simulated scene), ArUco object poses "
                "in the base frame, eye-to-hand camera calibration.",
    license="Apache-2.0",
    entry_points={"console_scripts": [
        "realsense_camera_node = farl_perception.realsense_camera_node:main",
        "sim_camera_node = farl_perception.sim_camera_node:main",
        "object_pose_node = farl_perception.object_pose_node:main",
    ]},
)

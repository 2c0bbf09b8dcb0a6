"""farl_learner: FARL algorithms, FailureBench, the learner node and the `farl` CLI.

The only package of the stack that imports torch at run time.
"""
from setuptools import find_packages, setup

PACKAGE = "farl_learner"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    # torch is pinned: an unpinned requirement pulls a multi-GB CUDA build.
    install_requires=["setuptools", "numpy", "torch==2.13.0", "gymnasium", "metaworld", "mujoco", "onnx",
                      "onnxruntime", "tqdm", "matplotlib", "pyyaml"],
    zip_safe=True,
    maintainer="FARL-ROS maintainers",
    maintainer_email="maintainers@farl-ros.org",
    description="Failure-Aware RL algorithms, FailureBench and the farl CLI.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "farl = farl_learner.cli:main",
            "learner_node = farl_learner.learner_node:main",
        ],
    },
)

"""ONNX export of the task policy, recovery policy and risk graph, with a checked manifest.

`manifest.py` has no torch import: the robot side (farl_control's shield)
reads and verifies model folders with it and onnxruntime alone.
"""
from .manifest import FORMAT_VERSION, Manifest, load_manifest

__all__ = ["FORMAT_VERSION", "Manifest", "load_manifest"]

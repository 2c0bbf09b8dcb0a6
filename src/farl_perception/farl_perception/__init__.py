"""Perception for the real arm, run identically in simulation.

camera (RealSense | MuJoCo render) -> Image + CameraInfo -> object_pose (ArUco,
solvePnP, camera->base extrinsic) -> /farl/objects/<name>. The ROS-free pieces
(config, geometry, marker detection, tracking filter, hand-eye solver) are plain
modules the nodes call, so they are tested without DDS.
"""

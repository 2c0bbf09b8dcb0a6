"""ArUco detection, IPPE_SQUARE poses and the tracking filter, on synthetic camera images (no simulator).

A marker texture is warped into a 640x480 image from a known pose: the
estimated pose must match it, the object pose in base must follow the
extrinsic and the marker-to-object offset, a marker that leaves the image
gives no pose (never the last one again), and a one-frame jump is refused.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from farl_common.task_config import load_task_config
from farl_perception.config import FilterConfig, load_perception_config
from farl_perception.geometry import (axis_angle_matrix, face_rotation, invert, look_at_rotation, rotation_angle_deg, transform,
                                      translation_of)
from farl_perception.intrinsics import Intrinsics
from farl_perception.markers import MarkerDetector, marker_image
from farl_perception.object_poses import ObjectPoseEstimator
from farl_perception.tracking import ObjectTracker

INTRINSICS = Intrinsics(640, 480, 600.0, 600.0, 319.5, 239.5)
MARGIN = 0.125  # marker_image's default white surround


def synthetic_view(markers: list[tuple[int, float, np.ndarray]], dictionary: str = "DICT_4X4_50") -> np.ndarray:
    """An RGB image of printed markers (id, black-square size, T_camera_marker) on a grey background."""
    image = np.full((INTRINSICS.height, INTRINSICS.width, 3), 110, np.uint8)
    for marker_id, size, T in markers:
        texture = cv2.cvtColor(marker_image(dictionary, marker_id, 400, MARGIN), cv2.COLOR_GRAY2RGB)
        h = size / (1 - 2 * MARGIN) / 2  # the printed square with its margin
        corners = np.array([[-h, h, 0], [h, h, 0], [h, -h, 0], [-h, -h, 0]])
        in_camera = (T[:3, :3] @ corners.T).T + T[:3, 3]
        pixels = INTRINSICS.project(in_camera).astype(np.float32)
        source = np.array([[0, 0], [399, 0], [399, 399], [0, 399]], np.float32)
        H = cv2.getPerspectiveTransform(source, pixels)
        warped = cv2.warpPerspective(texture, H, (INTRINSICS.width, INTRINSICS.height), flags=cv2.INTER_LINEAR)
        mask = cv2.warpPerspective(np.full((400, 400), 255, np.uint8), H, (INTRINSICS.width, INTRINSICS.height))
        image[mask > 127] = warped[mask > 127]
    return image


def facing_camera(position, tilt_deg: float = 30.0, yaw_deg: float = 20.0) -> np.ndarray:
    """A marker at `position` (camera frame) facing the camera, tilted and turned."""
    R = look_at_rotation((0, 0, 0), (0, 0, 1)) @ axis_angle_matrix((1, 0, 0), np.radians(180 + tilt_deg)) \
        @ axis_angle_matrix((0, 0, 1), np.radians(yaw_deg))
    return transform(R, position)


@pytest.mark.parametrize("distance", [0.4, 0.6, 0.8])
def test_a_marker_pose_is_recovered_within_millimetres_and_a_degree(distance):
    T = facing_camera((0.03, -0.02, distance))
    found = MarkerDetector("DICT_4X4_50").detect(cv2.cvtColor(synthetic_view([(7, 0.04, T)]), cv2.COLOR_RGB2GRAY))
    pose = MarkerDetector.pose(7, found[7], 0.04, INTRINSICS)
    assert pose is not None and pose.reprojection_px < 0.5
    assert np.linalg.norm(pose.T_camera_marker[:3, 3] - T[:3, 3]) < 0.004 * distance / 0.4
    assert rotation_angle_deg(pose.T_camera_marker[:3, :3], T[:3, :3]) < 1.5 * distance / 0.4  # ~30 px at 0.8 m


def test_markers_of_other_ids_are_reported_by_their_own_id():
    view = synthetic_view([(7, 0.04, facing_camera((-0.08, 0, 0.5))), (3, 0.04, facing_camera((0.08, 0, 0.5)))])
    assert set(MarkerDetector("DICT_4X4_50").detect(cv2.cvtColor(view, cv2.COLOR_RGB2GRAY))) == {3, 7}


@pytest.fixture
def estimator_setup():
    task = load_task_config("fragile_push_wall")
    config = load_perception_config("fragile_push_wall", task)
    return task, config, config.sim_camera.camera_to_base()


def marker_to_object(obj) -> np.ndarray:
    """The object's pose in its marker's frame: `offset`, turned by the face the marker is on."""
    return transform(face_rotation(obj.face).T, obj.offset)


def block_view(config, T_base_camera, block_position, yaw_deg=0.0) -> np.ndarray:
    obj = config.markers[0]
    T_base_block = transform(axis_angle_matrix((0, 0, 1), np.radians(yaw_deg)), block_position)
    T_base_marker = T_base_block @ invert(marker_to_object(obj))
    return synthetic_view([(obj.marker_id, obj.marker_size, invert(T_base_camera) @ T_base_marker)])


def test_the_object_pose_in_base_goes_through_the_extrinsic_and_the_marker_offset(estimator_setup):
    task, config, T_base_camera = estimator_setup
    estimator = ObjectPoseEstimator(config, task, T_base_camera)
    block = (0.57, -0.10, 0.025)
    result = estimator.process(block_view(config, T_base_camera, block, yaw_deg=15), 1.0, INTRINSICS)
    track = result.objects["fragile_block"]
    assert track.state == "seen"
    assert np.linalg.norm(track.pose[:3, 3] - block) < 0.008  # one frame, 4 cm marker ~0.5 m away
    assert rotation_angle_deg(track.pose[:3, :3], axis_angle_matrix((0, 0, 1), np.radians(15))) < 2.0
    # Fixtures come from the task config, with every frame.
    assert np.allclose(result.objects["wall"].pose[:3, 3], task.scene.object("wall").pos)


def test_a_marker_that_leaves_the_image_gives_no_pose_and_is_reported_lost(estimator_setup):
    task, config, T_base_camera = estimator_setup
    estimator = ObjectPoseEstimator(config, task, T_base_camera)
    seen = estimator.process(block_view(config, T_base_camera, (0.57, -0.1, 0.025)), 10.0, INTRINSICS)
    assert seen.objects["fragile_block"].pose is not None
    empty = np.full((480, 640, 3), 110, np.uint8)
    missing = estimator.process(empty, 10.0 + 1 / 30, INTRINSICS).objects["fragile_block"]
    assert missing.pose is None and missing.state == "missing"
    lost = estimator.process(empty, 10.0 + config.filter.lost_after_s + 0.05, INTRINSICS).objects["fragile_block"]
    assert lost.pose is None and lost.state == "lost"
    # Seen again: a fresh estimate, not blended with the pose from before it was lost.
    back = estimator.process(block_view(config, T_base_camera, (0.50, 0.05, 0.025)), 11.0, INTRINSICS)
    assert np.linalg.norm(back.objects["fragile_block"].pose[:3, 3] - (0.50, 0.05, 0.025)) < 0.008


def test_a_one_frame_jump_is_refused_and_a_confirmed_move_accepted():
    config = FilterConfig(max_jump_m=0.02, max_speed_mps=0.5, confirm_frames=3, time_constant_s=0.0, lost_after_s=0.5)
    tracker = ObjectTracker(config)
    here, there = transform(np.eye(3), (0.5, 0.0, 0.0)), transform(np.eye(3), (0.6, 0.0, 0.0))
    assert tracker.update(0.0, here).state == "seen"
    outlier = tracker.update(0.033, there)
    assert outlier.pose is None and outlier.state == "rejected" and "jump" in outlier.reason
    assert tracker.update(0.066, here).state == "seen"  # the outlier did not move the estimate
    results = [tracker.update(0.1 + 0.033 * i, there) for i in range(3)]
    assert [r.state for r in results] == ["rejected", "rejected", "seen"]
    assert np.allclose(results[-1].pose[:3, 3], (0.6, 0.0, 0.0))


def test_a_pose_with_a_large_reprojection_error_is_refused():
    tracker = ObjectTracker(FilterConfig(max_reprojection_px=2.0))
    result = tracker.update(0.0, np.eye(4), reprojection_px=3.5)
    assert result.pose is None and result.state == "rejected" and "reprojection" in result.reason


def test_the_filter_smooths_noise_but_follows_a_moving_object():
    rng = np.random.default_rng(0)
    tracker = ObjectTracker(FilterConfig(time_constant_s=0.02, max_jump_m=0.03))
    errors_raw, errors_filtered = [], []
    for i in range(120):
        t = i / 30.0
        truth = np.array([0.5, -0.1 + 0.1 * t, 0.025])  # pushed at 0.1 m/s
        measured = truth + rng.normal(0, 0.002, 3)
        pose = tracker.update(t, transform(np.eye(3), measured)).pose
        errors_raw.append(np.linalg.norm(measured - truth))
        errors_filtered.append(np.linalg.norm(pose[:3, 3] - truth))
    assert np.median(errors_filtered[10:]) < np.median(errors_raw[10:])
    assert max(errors_filtered[10:]) < 0.008


def test_a_tipped_block_is_rejected_and_the_upright_ippe_solution_is_chosen(estimator_setup):
    task, config, T_base_camera = estimator_setup
    estimator = ObjectPoseEstimator(config, task, T_base_camera)
    obj = config.markers[0]
    assert obj.up == obj.face  # the block's marker faces `up` when the block stands as it should
    # Tipped face down, away from the camera's line of sight. (Tipped toward it, a marker seen nearly
    # face-on has a mirrored IPPE solution that looks upright and reprojects as well: one marker cannot
    # tell the two apart, and the upright one is chosen.)
    T_base_block = transform(axis_angle_matrix((1, 0, 0), -np.radians(obj.max_tilt_deg + 15)), (0.55, -0.05, 0.04))
    view = synthetic_view([(obj.marker_id, obj.marker_size,
                            invert(T_base_camera) @ T_base_block @ invert(marker_to_object(obj)))])
    track = estimator.process(view, 0.0, INTRINSICS).objects["fragile_block"]
    assert track.pose is None and track.state == "rejected" and "tilted" in track.reason
    # Of two solutions that reproject alike, the one whose marker faces up wins.
    from farl_perception.markers import MarkerPose

    facing = face_rotation(obj.face)
    upright = invert(T_base_camera) @ transform(facing, (0.55, 0.0, 0.05))
    mirrored = invert(T_base_camera) @ transform(axis_angle_matrix((1, 1, 0), np.radians(40)) @ facing,
                                                 (0.55, 0.0, 0.05))
    chosen, tilt = estimator._choose(obj, [MarkerPose(7, mirrored, 0.10, np.zeros((4, 2))),
                                           MarkerPose(7, upright, 0.12, np.zeros((4, 2)))])
    assert chosen.T_camera_marker is upright and tilt < 1e-6

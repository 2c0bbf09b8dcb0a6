"""Eye-to-hand calibration math and its output file, on synthetic poses (no arm, no camera).

The solver must recover a known camera->base transform from the arm's poses and
noisy marker observations, report a residual that grows with the noise, and the
result must round-trip through the extrinsic file object_pose reads.
"""
from __future__ import annotations

import numpy as np
import pytest

from farl_perception.calibration.extrinsic_file import write_extrinsic
from farl_perception.calibration.handeye import solve_eye_to_hand
from farl_perception.calibration.poses import calibration_poses
from farl_perception.config import Extrinsic, load_extrinsic, load_perception_config
from farl_perception.geometry import axis_angle_matrix, invert, look_at_rotation, rotation_angle_deg, transform

T_BASE_CAMERA = transform(look_at_rotation((0.78, 0.2, 0.5), (0.57, -0.05, 0.02)), (0.78, 0.2, 0.5))
T_GRIPPER_MARKER = transform(axis_angle_matrix((0.3, -0.8, 0.2), 1.1), (0.01, -0.115, 0.03))


def observations(noise_m: float, noise_deg: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    arm = calibration_poses(load_perception_config("fragile_push_wall").calibration)
    seen = []
    for T in arm:
        T_camera_marker = invert(T_BASE_CAMERA) @ T @ T_GRIPPER_MARKER
        wobble = axis_angle_matrix(rng.normal(size=3), np.radians(noise_deg) * abs(rng.normal()))
        seen.append(transform(T_camera_marker[:3, :3] @ wobble, T_camera_marker[:3, 3] + rng.normal(0, noise_m, 3)))
    return arm, seen


def test_exact_observations_give_the_true_extrinsic_and_a_zero_residual():
    result = solve_eye_to_hand(*observations(0.0, 0.0))
    assert np.linalg.norm(result.T_base_camera[:3, 3] - T_BASE_CAMERA[:3, 3]) < 1e-4
    assert rotation_angle_deg(result.T_base_camera[:3, :3], T_BASE_CAMERA[:3, :3]) < 0.01
    assert np.allclose(result.T_gripper_marker, T_GRIPPER_MARKER, atol=1e-4)
    assert result.residual_mm < 0.1 and result.residual_deg < 0.01


def test_millimetre_noise_stays_within_the_calibration_tolerance_and_shows_in_the_residual():
    result = solve_eye_to_hand(*observations(0.001, 0.3))
    assert np.linalg.norm(result.T_base_camera[:3, 3] - T_BASE_CAMERA[:3, 3]) < 0.005
    assert rotation_angle_deg(result.T_base_camera[:3, :3], T_BASE_CAMERA[:3, :3]) < 1.0
    assert 0.5 < result.residual_mm < 5.0


def test_the_calibration_poses_turn_about_several_axes():
    poses = calibration_poses(load_perception_config("fragile_push_wall").calibration)
    assert len(poses) == 12
    relative = [poses[i][:3, :3] @ poses[0][:3, :3].T for i in range(1, len(poses))]
    axes = []
    for R in relative:
        w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
        axes.append(w / np.linalg.norm(w))
    # The rotation axes span 3-D: no direction is unobservable.
    assert np.linalg.svd(np.array(axes), compute_uv=False)[-1] > 0.2


def test_fewer_than_three_poses_are_refused():
    arm, seen = observations(0.0, 0.0)
    with pytest.raises(ValueError, match=">= 3 poses"):
        solve_eye_to_hand(arm[:2], seen[:2])


def test_the_result_round_trips_through_the_extrinsic_file(tmp_path):
    path = tmp_path / "camera.yaml"
    write_extrinsic(path, Extrinsic.from_matrix(T_BASE_CAMERA, residual_mm=1.25, residual_deg=0.2, poses=12,
                                                source="farl calibrate camera"))
    loaded = load_extrinsic(path)
    assert np.allclose(loaded.matrix, T_BASE_CAMERA, atol=1e-6)
    assert (loaded.residual_mm, loaded.poses, loaded.source) == (1.25, 12, "farl calibrate camera")
    assert not list(tmp_path.glob(".*.tmp"))

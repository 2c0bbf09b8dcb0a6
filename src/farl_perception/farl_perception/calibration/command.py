"""`farl calibrate camera [TASK]`: eye-to-hand calibration of the scene camera, written to config.

Needs the robot side running with its camera (`farl launch TASK autonomy:=false
perception:=aruco`, real arm or sim) and the calibration marker held by the
gripper (in sim: add `calibration_marker:=true`, which renders it on the hand). Sends the arm home (in sim
that also resets the scene), then moves the TCP through
`calibration.poses` poses (farl_perception.calibration.poses), samples the
marker at each, solves camera->base with cv2.calibrateHandEye and writes it,
with its residual and this command line, to the perception config's
extrinsic_file (or --out). In simulation it also prints the error against the
rendered camera's true pose.

Exit codes: 0 written; 1 the calibration failed (too few poses saw the marker,
or the residual exceeds --max-residual-mm: nothing written); 2 bad input.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from farl_common.errors import FarlInputError
from farl_common.paths import resolve_config_path
from farl_common.task_config import load_task_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("camera",), help="what to calibrate: the scene camera's extrinsic")
    parser.add_argument("task", nargs="?", default="fragile_push_wall", help="task whose perception config to use")
    parser.add_argument("--perception-config", default=None,
                        help="perception YAML relative to config/ (default: perception/<task>.yaml)")
    parser.add_argument("--out", type=Path, default=None,
                        help="extrinsic file to write (default: the perception config's extrinsic_file)")
    parser.add_argument("--poses", type=int, default=None, help="number of poses (default: calibration.poses)")
    parser.add_argument("--method", default="park", choices=("park", "tsai", "horaud", "andreff", "daniilidis"),
                        help="cv2.calibrateHandEye method")
    parser.add_argument("--max-residual-mm", type=float, default=5.0,
                        help="refuse to write a result whose residual exceeds this")
    parser.add_argument("--ready-timeout-s", type=float, default=60.0,
                        help="how long to wait for the arm and the camera")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from farl_perception.calibration.extrinsic_file import write_extrinsic
    from farl_perception.calibration.handeye import solve_eye_to_hand
    from farl_perception.calibration.poses import DOWN, calibration_poses
    from farl_perception.calibration.session import CalibrationSession, pose_error
    from farl_perception.config import Extrinsic, load_perception_config

    task = load_task_config(args.task)
    config = load_perception_config(args.perception_config or args.task, task)
    if args.poses is not None:
        if args.poses < 3:
            raise FarlInputError(None, f"needs >= 3 poses, got {args.poses}", key="--poses")
        config = dataclasses.replace(config, calibration=dataclasses.replace(config.calibration, poses=args.poses))
    out = args.out if args.out is not None else resolve_config_path(config.extrinsic_file)
    command = "farl " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "farl calibrate camera"
    c = config.calibration
    print(f"[calibrate] {c.poses} poses around {list(c.center)}, marker {c.marker_id} ({c.marker_size * 1000:.0f} mm); "
          f"result -> {out}", flush=True)
    session = CalibrationSession(config)
    try:
        problem = session.wait_ready(args.ready_timeout_s)
        if problem is not None:
            raise FarlInputError(None, problem)
        ok, message = session.client.reset(timeout_s=90.0)  # from home: the poses tilt away from its orientation
        if not ok:
            raise FarlInputError(None, f"the arm did not go home ({message}): fix that first (farl doctor)")
        start = session.tcp()
        arm, marker = [], []
        for i, target in enumerate(calibration_poses(c, down=start[:3, :3] if start is not None else DOWN)):
            reached = session.move_to(target, timeout_s=15.0)
            session.client.wait_for(lambda: False, c.settle_s)
            sample = session.sample(c.samples)
            if sample is None:
                print(f"[calibrate] pose {i + 1}/{c.poses}: marker {c.marker_id} not seen, skipped", flush=True)
                continue
            arm.append(sample.T_base_gripper)
            marker.append(sample.T_camera_marker)
            at = sample.T_base_gripper[:3, 3]
            print(f"[calibrate] pose {i + 1}/{c.poses}: TCP [{at[0]:.3f}, {at[1]:.3f}, {at[2]:.3f}]"
                  f"{'' if reached else ' (not reached: sampled where it stopped)'}, "
                  f"reprojection {sample.reprojection_px:.2f} px", flush=True)
        if start is not None:
            session.move_to(start, timeout_s=15.0)
        simulated = bool(session.client.scene)  # a simulator publishes its scene state: the true pose is known
    finally:
        session.close()
    if len(arm) < 3:
        print(f"[calibrate] error: only {len(arm)} poses saw marker {c.marker_id} (need >= 3): check that the camera "
              "sees the gripper's marker around calibration.center (in sim: launch with calibration_marker:=true); "
              "nothing written", file=sys.stderr)
        return 1
    result = solve_eye_to_hand(arm, marker, args.method)
    print(f"[calibrate] {len(arm)} poses: residual {result.residual_mm:.2f} mm / {result.residual_deg:.3f} deg "
          f"(worst pose {max(result.per_pose_mm):.2f} mm)", flush=True)
    if simulated:
        dp, dr = pose_error(result.T_base_camera, config.sim_camera.camera_to_base())
        print(f"[calibrate] sim: against the rendered camera's true pose: {dp:.2f} mm, {dr:.3f} deg", flush=True)
    if result.residual_mm > args.max_residual_mm:
        print(f"[calibrate] error: residual {result.residual_mm:.2f} mm > --max-residual-mm {args.max_residual_mm:g}: "
              "nothing written (is the marker rigid on the gripper? more poses?)", file=sys.stderr)
        return 1
    write_extrinsic(out, Extrinsic.from_matrix(result.T_base_camera, residual_mm=result.residual_mm,
                                               residual_deg=result.residual_deg, poses=len(arm), source=command))
    t = result.T_base_camera[:3, 3]
    print(f"[calibrate] wrote {out}: camera at [{t[0]:.4f}, {t[1]:.4f}, {t[2]:.4f}] in base", flush=True)
    return 0

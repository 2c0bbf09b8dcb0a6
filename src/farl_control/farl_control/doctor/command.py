"""`farl doctor [TASK] [--robot sim|real] [--robot-ip IP]`: one PASS/WARN/FAIL line per check, with the fix.

Exit code 1 when any check fails, so a bring-up script can stop on it. Reads
the environment the `farl` command was started with (the CLI itself forces
ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST for its own ROS traffic).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from farl_control.doctor.checks import FAIL, WARN, run_checks
from farl_control.doctor.facts import DoctorOptions, gather_facts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", nargs="?", default="fragile_push_wall", help="task whose config and models to check")
    parser.add_argument("--robot", choices=("sim", "real"), default=None,
                        help="what to check for (default: real when --robot-ip is given, else sim)")
    parser.add_argument("--robot-ip", default=None, help="FCI address of the arm (checked only with robot real)")
    parser.add_argument("--models-dir", default=None, help="model folder (default: the stack's models_dir)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"),
                        help="where recordings and run folders go (free disk is measured there)")


def options_from(args: argparse.Namespace) -> DoctorOptions:
    robot = args.robot or ("real" if args.robot_ip else "sim")
    return DoctorOptions(task=args.task, robot=robot, robot_ip=args.robot_ip, models_dir=args.models_dir,
                         runs_dir=args.runs_dir)


def run(args: argparse.Namespace) -> int:
    options = options_from(args)
    environ = getattr(args, "inherited_environ", None) or dict(os.environ)
    print(f"farl doctor: task {options.task}, robot {options.robot}"
          + (f" at {options.robot_ip}" if options.robot_ip else ""), flush=True)
    results = run_checks(gather_facts(options, environ), options)
    for result in results:
        print(result.line(), flush=True)
    counts = {status: sum(r.status == status for r in results) for status in ("PASS", WARN, FAIL)}
    print(f"farl doctor: {counts['PASS']} pass, {counts[WARN]} warn, {counts[FAIL]} fail")
    return 1 if counts[FAIL] else 0

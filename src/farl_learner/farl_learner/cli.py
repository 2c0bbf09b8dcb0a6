"""The `farl` command: one entry point for operators and researchers.

Each subcommand lives in its own module and registers itself here; heavy
imports (torch, MuJoCo, rclpy) happen inside the subcommand, so `farl --help`
and `farl launch` stay fast and work on a robot PC without the learning stack.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# module: (subcommand, one-line help). Each module has add_arguments(parser) and run(args) -> int.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "launch": ("farl_control.launching.launcher", "start a task's ROS 2 stack until Ctrl-C (like ros2 launch)"),
    "run": ("farl_learner.main_job", "the main job: run a task's stack in simulation and write a report"),
    "record": ("farl_teleop.record_command", "record teleoperated demos: robot side, teleop device and recorder, "
                                             "one MCAP file per episode"),
    "demos": ("farl_learner.commands.demos", "recorded demos: list | inspect | convert DIR; or <task> --out DIR: "
                                             "generate (or reuse cached) FailureBench demos"),
    "pretrain": ("farl_learner.commands.pretrain", "offline: task policy, failure data, recovery policy, "
                                                   "world model, eps_safe"),
    "pretrain-twin": ("farl_learner.commands.pretrain_twin", "offline pretraining in a real-robot task's training "
                                                             "twin, exported as the stack's model folder"),
    "pretrain-demos": ("farl_learner.commands.pretrain_demos", "pretrain a real-robot task's model folder from "
                                                               "recorded demos only (task, recovery, failure)"),
    "finetune": ("farl_learner.commands.finetune", "online fine-tuning in simulation: FARL, Uni-O4, a safe-RL "
                 "baseline or an ablation"),
    "evaluate": ("farl_learner.commands.evaluate", "deterministic episodes of a task policy: return, failures"),
    "export": ("farl_learner.commands.export", "ONNX model folder for the shield, with a torch-vs-ONNX parity check"),
    "calibrate": ("farl_perception.calibration.command", "calibrate camera: eye-to-hand calibration of the scene camera "
                                                         "(a marker on the gripper), written to config with its residual"),
    "doctor": ("farl_control.doctor.command", "check this PC for the stack (sim) or the real arm: PASS/WARN/FAIL "
                                              "with the fix for each"),
    "bench": ("farl_learner.commands.bench", "benchmark Uni-O4 vs FARL on FailureBench (same checkpoints, seeds, "
                                             "budget)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="farl", description="Failure-Aware RL on ROS 2.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> None:
    from farl_control.launching import interrupts

    interrupts.defer()  # Ctrl-C during the imports below: a stop request, not a traceback
    inherited_environ = dict(os.environ)  # what the operator set (farl doctor reports on it)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    from farl_common.errors import exit_on_input_error

    parser = build_parser()
    # Launch arguments (key:=value) may follow options (`farl run task --episodes 2 shield:=false`);
    # argparse stops collecting positionals at the first option, so pick the rest up here.
    args, extra = parser.parse_known_args(argv)
    unknown = [token for token in extra if ":=" not in token]
    if unknown or (extra and not hasattr(args, "arguments")):
        parser.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
    if extra:
        args.arguments = list(args.arguments) + extra
    args.inherited_environ = inherited_environ
    module = importlib.import_module(args._module)
    with exit_on_input_error(f"farl {args.command}"):
        sys.exit(module.run(args) or 0)


if __name__ == "__main__":
    main()

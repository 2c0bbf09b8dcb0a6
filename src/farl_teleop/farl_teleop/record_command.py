"""`farl record <task> --kind K --device D [--episodes N] --out DIR`: collect labelled demonstrations.

Starts the task's stack robot-side only (autonomy:=false) with the teleop node
and the recorder (record:=true), exactly as `farl launch <task> autonomy:=false
record:=true kind:=K device:=D demos_dir:=DIR demo_episodes:=N` would, and as
`ros2 launch farl_teleop collect_demos.launch.py` does on a ROS 2 install. The
keyboard device reads this terminal. With --episodes the session ends by itself
after N recorded episodes (exit 0); otherwise Ctrl-C ends it (an episode still
running is kept, marked interrupted).
"""
from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from farl_common.errors import FarlInputError
from farl_common.interface import DEMO_KINDS

DEVICES = ("spacemouse", "keyboard", "scripted")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="task whose stack to start (config/stacks/<task>.yaml)")
    parser.add_argument("arguments", nargs="*", metavar="key:=value",
                        help="further launch arguments, e.g. robot:=real robot_ip:=172.16.0.2")
    parser.add_argument("--kind", choices=DEMO_KINDS, default="task",
                        help="what the episodes demonstrate (changeable between episodes on the device) [task]")
    parser.add_argument("--device", choices=DEVICES, default="keyboard", help="input device [keyboard]")
    parser.add_argument("--episodes", type=int, default=0,
                        help="stop after this many recorded episodes (0 = until Ctrl-C) [0]")
    parser.add_argument("--out", required=True, help="folder of the episode files (one MCAP per episode)")
    parser.add_argument("--operator", default=None, help="who operates (episode metadata) [login name]")
    parser.add_argument("--camera", action="store_true", help="also record /farl/camera/image/compressed")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="task config override for every node, e.g. --set teleop.max_linear_speed=0.05")
    parser.add_argument("--dry-run", action="store_true", help="print the nodes and parameters, start nothing")


def launch_arguments(args: argparse.Namespace) -> list[str]:
    if args.episodes < 0:
        raise FarlInputError(None, f"must be >= 0, got {args.episodes}", key="--episodes")
    if args.device == "scripted" and args.episodes == 0:
        raise FarlInputError(None, "the scripted operator needs --episodes N (it records N and stops)",
                             key="--episodes")
    for token in args.arguments:
        if token.split(":=")[0] in ("autonomy", "record", "kind", "device", "demos_dir", "demo_episodes"):
            raise FarlInputError(None, f"{token}: set by farl record itself (use its options)", key="arguments")
    operator = args.operator or getpass.getuser()
    return ["autonomy:=false", "record:=true", f"kind:={args.kind}", f"device:={args.device}",
            f"demos_dir:={Path(args.out).expanduser().resolve()}", f"demo_episodes:={args.episodes}",
            f"operator:={operator}", f"record_camera:={'true' if args.camera else 'false'}", *args.arguments]


def run(args: argparse.Namespace) -> int:
    from farl_control.launching.launcher import launch

    tokens = launch_arguments(args)
    if not args.dry_run:
        Path(args.out).expanduser().mkdir(parents=True, exist_ok=True)
        print(f"[record] {args.kind} demos with the {args.device} into {Path(args.out).resolve()}"
              + (f", {args.episodes} episodes" if args.episodes else ", until Ctrl-C"), flush=True)
    saved = _terminal_settings()
    try:
        return launch(args.task, tokens, args.dry_run, args.settings)
    finally:
        if saved is not None:  # the keyboard teleop node shares this terminal: never leave it in cbreak mode
            import sys
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSANOW, saved)


def _terminal_settings():
    import os
    import sys

    try:
        import termios

        return termios.tcgetattr(sys.stdin.fileno()) if os.isatty(sys.stdin.fileno()) else None
    except (ImportError, OSError, ValueError):
        return None

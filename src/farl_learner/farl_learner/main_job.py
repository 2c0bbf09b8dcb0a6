"""`farl run <task>`: the main job, a finite run of a task's stack with a report.

Starts the stack from config/stacks/<task>.yaml in simulation, waits for the
arm, resets it and drives it, printing what it does, then shuts every node
down (the arm is stopped first) and writes summary.json and report.md into
the run folder.

Today the driving is the scripted operator (config: scripted_operator); the
FARL loop (shield + learner) takes its place once those nodes exist.
"""
from __future__ import annotations

import argparse
import json
import signal
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from farl_control.errors import FarlInputError
from farl_control.launcher import StackLauncher
from farl_control.paths import repo_root
from farl_control.stack import load_stack, parse_launch_arguments
from farl_control.task_config import load_task_config
from farl_control.yaml_loading import Section
from farl_teleop.scripted_operator import ScriptedOperator, ScriptedOperatorConfig

STARTUP_TIMEOUT_S = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", nargs="?", default="fragile_push_wall", help="task to run (default: fragile_push_wall)")
    parser.add_argument("arguments", nargs="*", metavar="key:=value", help="launch arguments (robot:=sim is the default)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<task>-<time>)")


def _fmt(v) -> str:
    return "(" + ", ".join(f"{x:+.3f}" for x in v) + ")" if v is not None else "(none)"


class MainJob:
    def __init__(self, task: str, launch_tokens: list[str], out: Path | None):
        self.config = load_task_config(task)
        if "scripted_operator" not in self.config.raw:
            raise FarlInputError(self.config.path, "missing the scripted_operator section the main job drives",
                                 key="scripted_operator")
        self.operator_config = ScriptedOperatorConfig.from_section(
            Section(self.config.raw, self.config.path).section("scripted_operator"))
        self.stack = load_stack(task)
        overrides = {"autonomy": "false", **parse_launch_arguments(launch_tokens)}
        self.nodes = self.stack.resolve(overrides)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        base = repo_root() or Path.cwd()
        self.out = out or base / "runs" / f"{task}-{stamp}"
        self.interrupted = False

    def _interrupt(self, *_):
        self.interrupted = True

    def run(self) -> int:
        self.out.mkdir(parents=True, exist_ok=True)
        print(f"[farl run] task {self.config.task}: {self.config.description}")
        print(f"[farl run] nodes: {', '.join(n.name for n in self.nodes)}; output in {self.out}")
        launcher = StackLauncher(self.nodes)
        signal.signal(signal.SIGINT, self._interrupt)
        signal.signal(signal.SIGTERM, self._interrupt)
        client = None
        summary: dict = {"task": self.config.task, "started": time.time(), "waypoints": []}
        try:
            launcher.start()
            from farl_control.robot_client import RobotClient

            tracked = tuple(o.name for o in self.config.scene.tracked)
            client = RobotClient("farl_main_job", objects=tracked)
            if not client.wait_for_state(STARTUP_TIMEOUT_S):
                raise RuntimeError(f"no /farl/robot/ee_pose within {STARTUP_TIMEOUT_S:.0f} s: "
                                   "see the [franka] and [sim_robot] lines above")
            ok, message = client.reset()
            print(f"[farl run] reset: {'ok' if ok else 'FAILED'} {message}")
            summary["block_start"] = _list(client.object_position(self.config.success.object))
            self._drive(client, summary)
            summary["block_end"] = _list(client.object_position(self.config.success.object))
            summary["status"] = dict(client.status)
        finally:
            if client is not None:
                client.close()
            launcher.shutdown()
        summary["finished"] = time.time()
        summary["interrupted"] = self.interrupted
        self._write(summary)
        return 130 if self.interrupted else 0

    def _drive(self, client, summary: dict) -> None:
        operator = ScriptedOperator(self.operator_config)
        period = 1.0 / self.config.control.rate_hz
        total = len(self.operator_config.waypoints)
        while not operator.done and not self.interrupted:
            started = time.monotonic()
            target = operator.target
            reached = False
            while time.monotonic() - started < self.operator_config.waypoint_timeout_s and not self.interrupted:
                tcp = client.tcp()
                if tcp is not None and operator.reached(tcp):
                    reached = True
                    break
                client.send(operator.command(tcp) if tcp is not None else np.zeros(3))
                time.sleep(period)
            client.send(np.zeros(3))
            elapsed = time.monotonic() - started
            tcp = client.tcp()
            block = client.object_position(self.config.success.object)
            print(f"[farl run] waypoint {operator.index + 1}/{total} {_fmt(target)}: "
                  f"{'reached' if reached else 'NOT reached'} in {elapsed:.1f} s, tcp {_fmt(tcp)}, "
                  f"{self.config.success.object} {_fmt(block)}")
            summary["waypoints"].append({"target": _list(target), "reached": reached, "seconds": elapsed,
                                         "tcp": _list(tcp)})
            operator.advance()

    def _write(self, summary: dict) -> None:
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
        reached = sum(w["reached"] for w in summary["waypoints"])
        lines = [f"# Run report: {self.config.task}", "",
                 f"- waypoints reached: {reached}/{len(summary['waypoints'])}",
                 f"- block start: {summary.get('block_start')}", f"- block end: {summary.get('block_end')}",
                 f"- interrupted: {summary['interrupted']}", "", "| # | target | reached | seconds |",
                 "|---|---|---|---|"]
        for i, w in enumerate(summary["waypoints"], 1):
            lines.append(f"| {i} | {w['target']} | {w['reached']} | {w['seconds']:.1f} |")
        (self.out / "report.md").write_text("\n".join(lines) + "\n")
        print(f"[farl run] {reached}/{len(summary['waypoints'])} waypoints reached; "
              f"report: {self.out / 'report.md'}")


def _list(v):
    return None if v is None else [round(float(x), 4) for x in v]


def run(args: argparse.Namespace) -> int:
    return MainJob(args.task, args.arguments, args.out).run()

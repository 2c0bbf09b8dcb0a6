"""`farl run <task>`: the main job, a finite run of a task's stack with a report.

Default: safe online fine-tuning in simulation. Starts the whole stack of
config/stacks/<task>.yaml (simulated FR3, control node, episode monitor,
shield, learner) for `--episodes` episodes, prints one line per episode
(verdict, return, failures, shield triggers, policy version), waits (bounded)
for the learner's update on the last episodes, then shuts every node down (the arm is stopped first) and writes report.md with plots and
summary.json into the run folder. `shield:=false` runs the same stack as the
Uni-O4 baseline.

`--scripted`: no learning; the robot side only, driven through the task's
scripted operator waypoints (a quick check that arm, scene and control work).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from farl_common.errors import FarlInputError
from farl_control.launching import interrupts
from farl_common.config import parse_overrides
from farl_control.launching.launcher import StackLauncher, add_set_argument, with_task_overrides
from farl_common.paths import repo_root
from farl_control.launching.stack import load_stack, parse_launch_arguments
from farl_common.task_config import load_task_config
from farl_teleop.scripted_operator import ScriptedOperator

STARTUP_TIMEOUT_S = 60.0


DEFAULT_EPISODES = 12
EPISODE_TIMEOUT_S = 120.0  # no verdict for this long: something is stuck, stop and report
LEARNER_DRAIN_S = 90.0  # after the last episode, wait this long at most for the learner's last update


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", nargs="?", default="fragile_push_wall", help="task to run (default: fragile_push_wall)")
    parser.add_argument("arguments", nargs="*", metavar="key:=value",
                        help="launch arguments (robot:=sim is the default; shield:=false = Uni-O4 baseline)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<task>-<time>)")
    parser.add_argument("--episodes", type=int, default=DEFAULT_EPISODES,
                        help=f"episodes of online fine-tuning (default {DEFAULT_EPISODES}, a few minutes)")
    parser.add_argument("--ros-domain", type=int, default=None,
                        help="ROS_DOMAIN_ID for this run's stack (default: a private random one whose DDS ports "
                             "avoid the ephemeral range, so two runs on one machine never exchange commands or policies; give the same to rviz2)")
    add_set_argument(parser)
    parser.add_argument("--scripted", action="store_true",
                        help="drive the scripted operator waypoints instead of learning")


def _fmt(v) -> str:
    return "(" + ", ".join(f"{x:+.3f}" for x in v) + ")" if v is not None else "(none)"


def default_run_dir(task: str, suffix: str = "") -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return (repo_root() or Path.cwd()) / "runs" / f"{task}-{stamp}{suffix}"


def isolate_run(stack, overrides: dict[str, str], ros_domain: int | None) -> int:
    """A finite run in simulation gets its own ROS domain and franky-sim address.

    Another stack on the machine (a second run, a benchmark, `farl launch`) would
    otherwise share domain and 127.0.0.1:1337: its learner's announcements would
    reach this run's shield, its arm this run's commands.
    """
    from farl_control.launching.processes import free_loopback_ip, private_ros_domain

    domain = ros_domain if ros_domain is not None else private_ros_domain()
    if not 0 <= domain <= 232:
        raise FarlInputError(None, f"--ros-domain must be in 0..232, got {domain}")
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    if stack.argument_values(overrides)["robot"] == "sim" and "robot_ip" not in overrides:
        overrides["robot_ip"] = free_loopback_ip()
    return domain


class ScriptedDemo:
    def __init__(self, task: str, launch_tokens: list[str], out: Path | None, settings: list[str] | None = None):
        self.config = load_task_config(task, parse_overrides(settings or []))
        if self.config.scripted_operator is None:
            raise FarlInputError(self.config.path, "missing the scripted_operator section the main job drives",
                                 key="scripted_operator")
        self.operator_config = self.config.scripted_operator
        self.stack = load_stack(task)
        overrides = {"autonomy": "false", **parse_launch_arguments(launch_tokens)}
        isolate_run(self.stack, overrides, None)
        self.out = out or default_run_dir(task, "-scripted")
        self.nodes = with_task_overrides(self.stack.resolve(overrides), settings or [], self.out)
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
        self.interrupted = interrupts.received()
        client = None
        summary: dict = {"task": self.config.task, "started": time.time(), "waypoints": []}
        try:
            launcher.start()
            from farl_control.ros.client import RobotClient

            tracked = tuple(o.name for o in self.config.scene.tracked)
            client = RobotClient("farl_main_job", objects=tracked)
            if not client.wait_until_active(STARTUP_TIMEOUT_S):
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


class FarlRun:
    """The full online loop for a fixed number of episodes, recorded and reported."""

    def __init__(self, task: str, launch_tokens: list[str], out: Path | None, episodes: int,
                 ros_domain: int | None = None, settings: list[str] | None = None):
        if episodes < 1:
            raise FarlInputError(None, f"--episodes must be >= 1, got {episodes}")
        self.config = load_task_config(task, parse_overrides(settings or []))
        self.stack = load_stack(task)
        self.out = (out or default_run_dir(task)).resolve()
        overrides = parse_launch_arguments(launch_tokens)
        for key in ("episodes", "run_dir"):
            if key in overrides:
                raise FarlInputError(None, f"{key}:= is set by farl run (use --episodes / --out)")
        self.overrides = {"autonomy": "true", **overrides, "episodes": str(episodes),
                          "run_dir": str(self.out / "learner")}
        self.ros_domain = isolate_run(self.stack, self.overrides, ros_domain)
        self.values = self.stack.argument_values(self.overrides)
        # With --set, every node reads the run's effective task file (written into the run folder).
        self.nodes = with_task_overrides(self.stack.resolve(self.overrides), settings or [], self.out)
        self.episodes = episodes
        self.interrupted = False
        self.policy_version = 0
        self.last_event = time.monotonic()

    def _interrupt(self, *_):
        self.interrupted = True

    def _on_policy(self, policy: dict) -> None:
        self.policy_version = int(policy.get("version", 0))
        print(f"[farl run] learner: policy v{self.policy_version} announced")

    def _on_event(self, event: dict) -> None:
        self.last_event = time.monotonic()
        kind = event.get("type")
        counts = event.get("counts", {})
        if kind in ("success", "failure", "timeout", "aborted"):
            print(f"[farl run] episode {event.get('episode')}/{self.episodes} {kind:<8} "
                  f"return {event.get('return', 0.0):8.2f} | steps {event.get('steps', 0):3d} | "
                  f"failures {counts.get('failure_episodes', 0)} ep / {counts.get('failure_pairs', 0)} pairs | "
                  f"shield triggers {counts.get('shield_triggers', 0)} | policy v{event.get('policy_version', 0)}",
                  flush=True)

    def _drain_learner(self, recorder, learner) -> None:
        """The last episodes' PPO update is still running when the monitor finishes: let it land."""
        finished = time.monotonic()
        deadline = finished + LEARNER_DRAIN_S
        print("[farl run] waiting for the learner to finish its update on the last episodes", flush=True)
        while not self.interrupted and time.monotonic() < deadline and learner is not None and learner.alive():
            # The last episode reached the learner before the monitor's "finished"; a status sent more
            # than a status period (1 s) later that says "not busy" means its update (if any) is done.
            status = recorder.learner_status
            if status and recorder.learner_status_time > finished + 1.2 and not status.get("busy"):
                return
            time.sleep(0.2)
        if learner is None or not learner.alive():
            print("[farl run] the learner is not running: no last update", flush=True)
        elif not self.interrupted:
            print(f"[farl run] learner still busy after {LEARNER_DRAIN_S:.0f} s (status {recorder.learner_status}); "
                  "stopping anyway", flush=True)

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._interrupt)
        signal.signal(signal.SIGTERM, self._interrupt)
        self.interrupted = interrupts.received()
        from .report import write_report
        from .run_recorder import RunRecorder

        self.out.mkdir(parents=True, exist_ok=True)
        shield_on = self.values["shield"] == "true"
        print(f"[farl run] {self.config.task}: {self.episodes} episodes of online fine-tuning in "
              f"{'simulation' if self.values['robot'] == 'sim' else 'the real robot'}, shield "
              f"{'ON (FARL)' if shield_on else 'OFF (Uni-O4 baseline)'}; output in {self.out}")
        print(f"[farl run] ROS domain {self.ros_domain} (to watch: ROS_DOMAIN_ID={self.ros_domain} rviz2 -d "
              "config/rviz/farl.rviz); simulated arm at " + self.values["robot_ip"], flush=True)
        launcher = StackLauncher(self.nodes)
        recorder = RunRecorder(self.out, on_event=self._on_event, on_policy=self._on_policy)
        started = time.monotonic()
        stuck = False
        failed = None
        try:
            launcher.start()
            self.last_event = time.monotonic()
            while not recorder.finished.is_set() and not self.interrupted:
                # A crashed node with restarts left (the control node in sim) is started again; any other dead
                # required node (arm driver, simulator, monitor, shield, learner) ends the run at once.
                failed = launcher.check()
                if failed is not None:
                    print(f"[farl run] error: {failed.describe()}; stopping the run", flush=True)
                    break
                if time.monotonic() - self.last_event > EPISODE_TIMEOUT_S:
                    stuck = True
                    print(f"[farl run] no episode event for {EPISODE_TIMEOUT_S:.0f} s: stopping "
                          "(see the node output above)", flush=True)
                    break
                recorder.finished.wait(0.5)
            if recorder.finished.is_set() and failed is None and not self.interrupted \
                    and self.values["learn"] == "true":
                learner = next((p for n, p in launcher.processes if n.name == "learner"), None)
                self._drain_learner(recorder, learner)
        finally:
            launcher.shutdown()
            recorder.close()
        settings = {"task": self.config.task, "episodes": self.episodes, "launch": self.values,
                    "wall_seconds": round(time.monotonic() - started, 1),
                    "decisions_dropped": recorder.decisions_dropped, "payloads_rejected": recorder.rejected,
                    "failed_node": None if failed is None else failed.describe()}
        summary = write_report(self.out, f"FARL run: {self.config.task}", settings)
        print(f"[farl run] {summary['episodes']} episodes, {summary['successes']} successes, "
              f"{summary['failure_episodes']} failure episodes ({summary['failure_pairs']} failure pairs), "
              f"{summary['shield_triggers']} shield triggers, {len(summary['policy_versions'])} policy updates; "
              f"report: {self.out / 'report.md'}", flush=True)
        if recorder.decisions_dropped or recorder.rejected:
            print(f"[farl run] warning: {recorder.decisions_dropped} shield decision(s) lost, "
                  f"{recorder.rejected} payload(s) rejected on the way to the recorder", flush=True)
        if failed is not None:
            print(f"[farl run] error: {failed.describe()}", flush=True)
            return 1
        if self.interrupted:
            return 130
        return 1 if stuck or summary["episodes"] < self.episodes else 0


def run(args: argparse.Namespace) -> int:
    if args.scripted:
        return ScriptedDemo(args.task, args.arguments, args.out, args.settings).run()
    return FarlRun(args.task, args.arguments, args.out, args.episodes, args.ros_domain, args.settings).run()

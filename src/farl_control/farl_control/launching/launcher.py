"""`farl launch <task> key:=value …`: the pip-side stand-in for `ros2 launch`.

ROS 2's launch system is not available from PyPI, so this starts the very same
node table (config/stacks/<task>.yaml) as launch/<task>.launch.py: one process
per node, parameters passed as a --params-file, output prefixed with the node
name. A node with `restarts` left that exits with an error is started again (a
managed one is brought up again), its error line repeated. It runs until Ctrl-C /
SIGTERM, or until a node marked `required` exits for good (its error line is
repeated and the launcher exits non-zero); then every node is
shut down in reverse start order (the simulated arm last), so the control node's
own shutdown stops the arm before the simulator goes. If the launcher itself is
killed, its nodes get SIGTERM from the kernel and shut down the same way
(`processes`).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import yaml

from farl_common.errors import exit_on_input_error
from farl_common.config import parse_overrides
from farl_common.task_config import load_task_config
from farl_control.launching import interrupts
from farl_control.launching.processes import ManagedProcess
from farl_control.launching.stack import ResolvedNode, load_stack, parse_launch_arguments

# DDS discovery stays on loopback whatever the caller's shell says.
ROS_ENVIRONMENT = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "PYTHONUNBUFFERED": "1"}
# What a node exits with on bad input (farl_common.errors.exit_on_input_error).
INPUT_ERROR_EXIT = 2
# How long a node gets to exit after SIGTERM before SIGKILL: the learner, stopped while still starting on
# a loaded 2-core machine, needs seconds to finish building and to unload torch.
STOP_GRACE_S = 10.0


def node_command(node: ResolvedNode, params_file: Path) -> list[str]:
    """argv that runs one node with this interpreter (no reliance on PATH)."""
    return [sys.executable, "-m", node.module, "--ros-args", "-r", f"__node:={node.name}",
            "--params-file", str(params_file)]


def write_params_file(node: ResolvedNode, folder: Path) -> Path:
    path = folder / f"{node.name}.params.yaml"
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": node.parameters}}, sort_keys=True))
    return path


@dataclass(frozen=True)
class RequiredExit:
    """A required node that exited, or a managed one that could not be brought up: the stack cannot go on."""

    name: str
    code: int
    error: str | None  # the node's own error line, if it printed one
    what: str = ""  # how it failed, when it did not exit ("configure failed")

    def describe(self) -> str:
        how = self.what or f"exited with code {self.code}"
        return f"required node {self.name} {how}" + (f": {self.error}" if self.error else " (see its lines above)")


class StackLauncher:
    """Starts the resolved nodes and supervises them until asked to stop."""

    def __init__(self, nodes: Sequence[ResolvedNode], env: dict[str, str] | None = None):
        self.nodes = list(nodes)
        self.env = {**os.environ, **ROS_ENVIRONMENT, **(env or {})}
        self.processes: list[tuple[ResolvedNode, ManagedProcess]] = []
        self._reported: set[str] = set()
        self._stop = threading.Event()
        self._folder = Path(tempfile.mkdtemp(prefix="farl-launch-"))
        self._bring_ups: list[threading.Thread] = []
        self._lifecycle_failure: RequiredExit | None = None
        self.active: set[str] = set()  # managed nodes brought up to active
        self.completing = {node.name for node in self.nodes if node.completes}
        self.restarts_used: dict[str, int] = {node.name: 0 for node in self.nodes}

    def _spawn(self, node: ResolvedNode) -> ManagedProcess:
        params = write_params_file(node, self._folder)
        proc = ManagedProcess(node.name, node_command(node, params), env=self.env, prefix_output=True,
                              terminal=node.terminal and sys.stdin.isatty())
        print(f"[launch] started {node.name} (pid {proc.pid}): {node.package}/{node.executable}", flush=True)
        return proc

    def _bring_up_in_background(self, managed: list[tuple[ResolvedNode, ManagedProcess]]) -> None:
        """configure -> activate in the background: supervision goes on meanwhile."""
        thread = threading.Thread(target=self._drive_lifecycle, args=(managed,), daemon=True, name="lifecycle")
        self._bring_ups.append(thread)
        thread.start()

    def start(self) -> None:
        for node in self.nodes:
            self.processes.append((node, self._spawn(node)))
        managed = [(node, proc) for node, proc in self.processes if node.lifecycle]
        if managed:
            self._bring_up_in_background(managed)

    def restart_crashed(self) -> None:
        """Start again every node that exited with an error and has restarts left (e.g. the control node in sim,
        whose exit closed its connection, which stopped the arm: the new one connects, and the episode monitor's
        next reset brings the arm home)."""
        for index, (node, proc) in enumerate(self.processes):
            code = proc.popen.poll()
            # Not after a clean exit, nor after exit code 2 (bad input: a new process would fail the same way).
            if code in (None, 0, INPUT_ERROR_EXIT) or self.restarts_used[node.name] >= node.restarts \
                    or self._stop.is_set():
                continue
            self.restarts_used[node.name] += 1
            error = proc.error_line()
            self.active.discard(node.name)
            print(f"[launch] {node.name} exited with code {code}" + (f": {error}" if error else "")
                  + f"; restarting it (restart {self.restarts_used[node.name]} of {node.restarts})", flush=True)
            fresh = self._spawn(node)
            self.processes[index] = (node, fresh)
            if node.lifecycle:
                self._bring_up_in_background([(node, fresh)])

    def _drive_lifecycle(self, managed: list[tuple[ResolvedNode, ManagedProcess]]) -> None:
        from farl_control.launching.lifecycle import LifecycleClient

        client = LifecycleClient("farl_launch_lifecycle")
        try:
            for node, proc in managed:
                error = client.bring_up(node.name, keep_waiting=lambda: proc.alive() and not self._stop.is_set())
                if error is not None:
                    time.sleep(0.3)  # the node's own error line may still be on its way through the pipe
                    self._lifecycle_failure = RequiredExit(node.name, 1, proc.error_line(),
                                                           f"could not be brought up ({error})")
                    return
                if proc.alive() and not self._stop.is_set():
                    self.active.add(node.name)
                    print(f"[launch] {node.name} configured and active", flush=True)
        finally:
            client.close()

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def required_exit(self) -> RequiredExit | None:
        """The first required node found exited (whatever its exit code), else None.

        Every node that has exited is reported once, required or not.
        """
        found = None
        for node, proc in self.processes:
            code = proc.popen.poll()
            if code is None:
                continue
            if node.name not in self._reported:
                self._reported.add(node.name)
                print(f"[launch] {node.name} exited with code {code}", flush=True)
            if node.required and found is None:
                found = RequiredExit(node.name, code, proc.error_line())
        return found or self._lifecycle_failure

    def check(self) -> RequiredExit | None:
        """One supervision step: restart what may be restarted, then the required node that ended the stack."""
        self.restart_crashed()
        return self.required_exit()

    def supervise(self, poll_s: float = 0.2) -> int:
        """Block until stop is requested or a required node exits; returns the exit code."""
        while not self._stop.is_set():
            failed = self.check()
            if failed is not None and failed.code == 0 and failed.name in self.completing:
                print(f"[launch] {failed.name} finished; shutting the stack down", flush=True)
                return 0
            if failed is not None:
                print(f"[launch] error: {failed.describe()}; shutting the stack down", flush=True)
                return failed.code or 1
            self._stop.wait(poll_s)
        return 0

    def shutdown(self) -> dict[str, int | None]:
        """Stop every node still running, in reverse start order; returns each node's exit code.

        A managed node runs its own lifecycle shutdown on SIGTERM (the control node: stop, disconnect).
        """
        self._stop.set()
        for thread in self._bring_ups:
            thread.join(timeout=5.0)
        codes: dict[str, int | None] = {}
        for node, proc in reversed(self.processes):
            running = proc.alive()
            if running:
                print(f"[launch] stopping {node.name}", flush=True)
            codes[node.name] = proc.stop(grace_s=STOP_GRACE_S)
            if running:
                print(f"[launch] {node.name} stopped (exit code {codes[node.name]})", flush=True)
        return codes


def with_task_overrides(nodes: Sequence[ResolvedNode], settings: Sequence[str], folder: Path) -> list[ResolvedNode]:
    """Nodes whose task_config is the task file with `--set KEY=VALUE` applied (validated here, once).

    The effective file is written into `folder` and every node reads that one, so the whole stack
    runs on the same, checked settings (e.g. --set control.max_linear_speed=0.1).
    """
    if not settings:
        return list(nodes)
    overrides = parse_overrides(settings)
    written: dict[str, str] = {}
    out = []
    for node in nodes:
        source = node.parameters.get("task_config")
        if isinstance(source, str) and source:
            if source not in written:
                config = load_task_config(source, overrides)
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"{config.task}.effective.yaml"
                path.write_text(f"# {config.path} with --set {' '.join(settings)}\n"
                                + yaml.safe_dump(config.raw, sort_keys=False))
                written[source] = str(path)
            node = dataclasses.replace(node, parameters={**node.parameters, "task_config": written[source]})
        out.append(node)
    return out


def launch(task: str, argument_tokens: list[str], dry_run: bool = False, settings: Sequence[str] = ()) -> int:
    stack = load_stack(task)
    nodes = stack.resolve(parse_launch_arguments(argument_tokens))
    nodes = with_task_overrides(nodes, settings, Path(tempfile.mkdtemp(prefix="farl-task-")))
    if dry_run:
        for node in nodes:
            parameters = yaml.safe_dump(node.parameters, default_flow_style=True, width=1 << 30).strip()
            print(f"{node.name}: {node.package}/{node.executable} {parameters}")
        return 0
    launcher = StackLauncher(nodes)
    signal.signal(signal.SIGINT, launcher.request_stop)
    signal.signal(signal.SIGTERM, launcher.request_stop)
    if interrupts.received():
        launcher.request_stop()
    try:
        launcher.start()
        code = launcher.supervise()
    finally:
        launcher.shutdown()
    return code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help="task whose stack to launch (config/stacks/<task>.yaml)")
    parser.add_argument("arguments", nargs="*", metavar="key:=value",
                        help="launch arguments, as for ros2 launch (e.g. robot:=sim autonomy:=false)")
    parser.add_argument("--dry-run", action="store_true", help="print the nodes and parameters, start nothing")
    add_set_argument(parser)


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="override one key of the task config for every node, e.g. "
                             "--set control.max_linear_speed=0.1 (repeatable)")


def run(args: argparse.Namespace) -> int:
    return launch(args.task, args.arguments, args.dry_run, args.settings)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="farl launch", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    with exit_on_input_error("farl launch"):
        sys.exit(run(args))


if __name__ == "__main__":
    main()

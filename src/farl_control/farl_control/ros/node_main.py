"""`main()` of the online nodes (shield, episode monitor, learner): spin until a signal, exit cleanly.

With rclpy's own signal handler, SIGINT shuts the context down under a
spinning executor, which then raises ExternalShutdownException (not
KeyboardInterrupt) — a traceback, and with a worker thread still inside
torch or rcl at interpreter exit, "terminate called without an active
exception" (an abort). As franka_node does: our own handler sets an event, the
executor spins in a thread, and shutdown goes node.shutdown() → executor →
join → destroy → rclpy shutdown, exit code 0 (1 after a failure, reported on one
`error:` line: a callback that raised, or a worker thread that set `node.fatal`).
"""
from __future__ import annotations

import sys
import threading
from typing import Callable

import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from farl_common.errors import exit_on_input_error
from farl_control.ros.stop_signals import route_stop_signals
from farl_control.ros.spin_thread import SpinThread, tear_down


def run_node(program: str, make_node: Callable[[], Node], args: list[str] | None = None, threads: int = 3,
             on_start: Callable[[Node], None] | None = None,
             exit_when: Callable[[Node], bool] | None = None) -> None:
    """Build the node (a FarlInputError → one error line, exit 2), spin it until SIGINT/SIGTERM, tear down.

    The node's optional `shutdown()` runs first on the way out (e.g. the monitor's "aborted" event).
    `exit_when(node)` true ends the node normally (exit 0), e.g. after its last episode.
    """
    done = threading.Event()
    route_stop_signals(done.set)
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node: Node | None = None
    executor = MultiThreadedExecutor(num_threads=threads)
    spin: SpinThread | None = None
    code = 0
    try:
        with exit_on_input_error(program):
            node = make_node()
        if on_start is not None:
            on_start(node)
        executor.add_node(node)
        spin = SpinThread(executor, name=f"{program}-spin")
        spin.start()
        while not done.wait(0.1):
            if not spin.is_alive():  # a callback raised, or the executor died: nothing is served any more
                reason = f": {type(spin.error).__name__}: {spin.error}" if spin.error is not None else ""
                print(f"{program}: error: executor stopped{reason}", file=sys.stderr, flush=True)
                code = 1
                break
            if getattr(node, "fatal", None):  # a worker thread of the node failed
                print(f"{program}: error: {node.fatal}", file=sys.stderr, flush=True)
                code = 1
                break
            if exit_when is not None and exit_when(node):
                break
    finally:
        tear_down(node, spin, executor, program)
    sys.exit(code)

"""An executor spinning in a thread that can be stopped without racing rclpy.

`executor.spin()` in one thread and `executor.shutdown()` in another race:
shutdown destroys the executor's guard condition while the spinning thread may
be about to wait on it ("'NoneType' object has no attribute 'handle'" and a
traceback at every exit under CPU load). Here the thread spins in short
`spin_once` slices and checks a flag; `stop()` sets the flag and joins it, and
only then is the executor shut down and the node destroyed.

A callback that raises ends the spinning (the owner reports `error` and exits
non-zero). One that raises while the executor is being shut down would only
surface as "The following exception was never retrieved" when rclpy's task is
garbage-collected; `stop()` collects it into `late_errors` instead, and
`tear_down` reports it as one line.
"""
from __future__ import annotations

import sys
import threading
import time

import rclpy
from rclpy.executors import Executor
from rclpy.node import Node

SLICE_S = 0.1


class SpinThread:
    def __init__(self, executor: Executor, name: str = "spin"):
        self.executor = executor
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self.late_errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.executor.spin_once(timeout_sec=SLICE_S)
        except BaseException as error:  # noqa: BLE001 - reported by the owner, which then shuts down
            if not self._stop.is_set():
                self.error = error

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop spinning, join, let running callbacks finish; then shut the executor down.

        True when nothing runs any more, so the node may be destroyed.
        """
        deadline = time.monotonic() + timeout_s
        self._stop.set()
        self._thread.join(timeout=timeout_s)
        if self._thread.is_alive():
            return False
        # MultiThreadedExecutor.shutdown() does not wait for the callbacks still running in its
        # pool (rclpy 7.1): a node destroyed under one makes it fail ("cannot use Destroyable").
        running = [task for task in getattr(self.executor, "_futures", ()) if not task.done()]
        while running and time.monotonic() < deadline:
            time.sleep(0.01)
            running = [task for task in running if not task.done()]
        self.executor.shutdown(timeout_sec=1.0)
        self._collect_late_errors()
        return not running

    def _collect_late_errors(self) -> None:
        """Fetch the exceptions of callbacks that finished after the last spin (MultiThreadedExecutor)."""
        for task in list(getattr(self.executor, "_futures", ())):
            if task.done() and not task.cancelled():
                error = task.exception()  # fetching it is what keeps rclpy from printing it at exit
                if error is not None:
                    self.late_errors.append(error)


def tear_down(node: Node | None, spin: SpinThread | None, executor: Executor, program: str = "") -> None:
    """The one shutdown order of every node's main(): node.shutdown() (stops the arm, ends
    episodes) → stop spinning → executor → destroy the node (never under a thread still
    spinning it: rcl raises InvalidHandle) → rclpy."""
    if node is not None and hasattr(node, "shutdown"):
        node.shutdown()
    stopped = spin.stop() if spin is not None else True
    for error in (spin.late_errors if spin is not None else ()):
        print(f"{program or 'node'}: error: a callback failed while stopping: {type(error).__name__}: {error}",
              file=sys.stderr, flush=True)
    if spin is None:
        executor.shutdown(timeout_sec=1.0)
    if node is not None and stopped:
        node.destroy_node()
    rclpy.try_shutdown()

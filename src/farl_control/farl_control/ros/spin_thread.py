"""An executor spinning in a thread that can be stopped without racing rclpy.

`executor.spin()` in one thread and `executor.shutdown()` in another race:
shutdown destroys the executor's guard condition while the spinning thread may
be about to wait on it ("'NoneType' object has no attribute 'handle'" and a
traceback at every exit under CPU load). Here the thread spins in short
`spin_once` slices and checks a flag; `stop()` sets the flag and joins it, and
only then is the executor shut down and the node destroyed.
"""
from __future__ import annotations

import threading

import rclpy
from rclpy.executors import Executor
from rclpy.node import Node

SLICE_S = 0.1


class SpinThread:
    def __init__(self, executor: Executor, name: str = "spin"):
        self.executor = executor
        self._stop = threading.Event()
        self.error: BaseException | None = None
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
        """Stop spinning and join; then shut the executor down. True if the thread ended."""
        self._stop.set()
        self._thread.join(timeout=timeout_s)
        ended = not self._thread.is_alive()
        if ended:
            self.executor.shutdown(timeout_sec=1.0)
        return ended


def tear_down(node: Node | None, spin: SpinThread | None, executor: Executor) -> None:
    """The one shutdown order of every node's main(): node.shutdown() (stops the arm, ends
    episodes) → stop spinning → executor → destroy the node (never under a thread still
    spinning it: rcl raises InvalidHandle) → rclpy."""
    if node is not None and hasattr(node, "shutdown"):
        node.shutdown()
    stopped = spin.stop() if spin is not None else True
    if spin is None:
        executor.shutdown(timeout_sec=1.0)
    if node is not None and stopped:
        node.destroy_node()
    rclpy.try_shutdown()

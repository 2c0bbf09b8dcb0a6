"""SIGINT/SIGTERM reach a node through one waiting thread, never through a thread doing I/O.

A process-directed signal is delivered to any thread that does not block it.
With Python's handlers installed (no SA_RESTART), the thread that takes it sees
its system call fail with EINTR. For libfranka that is fatal at the worst
moment: a state read interrupted mid-packet raises "incorrect object size", and
franky's motion thread interrupted the same way ends in std::terminate (an
abort, exit -6) while the node is stopping the arm. So the signals are blocked
in the main thread before it starts anything, and every thread started later
(executor, state and control loops, DDS, libfranka) inherits that mask. One
thread takes them synchronously with sigwait and calls the node's stop
callback. Importing rclpy already started a few threads of its own that do not
block them; a signal that lands there runs the same callback through Python's
handler, so whichever thread the kernel picks, the node stops the same way.
"""
from __future__ import annotations

import signal
import threading
from typing import Callable

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def route_stop_signals(on_stop: Callable[[], None]) -> threading.Thread:
    """Block SIGINT/SIGTERM in this and every later thread; call `on_stop()` on each one received.

    Call it first in main(), before rclpy.init() and before anything that starts a thread.
    """
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: on_stop())
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def wait_forever() -> None:
        while True:
            signal.sigwait(STOP_SIGNALS)
            on_stop()

    thread = threading.Thread(target=wait_forever, name="stop-signals", daemon=True)
    thread.start()
    return thread

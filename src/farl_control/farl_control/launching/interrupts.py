"""Ctrl-C / SIGTERM while a command is still starting: remembered, never a traceback.

Python turns SIGINT into KeyboardInterrupt wherever the main thread happens to
be, which during start-up is inside some import (rclpy, torch take seconds):
the user sees a traceback wall for pressing Ctrl-C. `defer()` is the first thing
a command line does; the command later installs its real handlers and asks
`received()` whether a stop was already requested.
"""
from __future__ import annotations

import signal
import threading

_received = threading.Event()


def defer() -> None:
    """Until the command installs its own handlers, SIGINT and SIGTERM only record a stop request."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: _received.set())


def received() -> bool:
    """A stop was requested before the command's own handlers were in place."""
    return _received.is_set()

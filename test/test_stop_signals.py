"""Stop signals reach a node through its callback, and never interrupt a thread it started.

libfranka's I/O fails on EINTR (a state read raises "incorrect object size",
franky's motion thread aborts the process), so the nodes route SIGINT/SIGTERM
to one waiting thread. These tests run that set-up in a child process.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

CHILD = textwrap.dedent("""
    import os, sys, threading, time
    from farl_control.ros.stop_signals import route_stop_signals
    stopped = threading.Event()
    route_stop_signals(stopped.set)
    worker_tid = []
    def worker():
        worker_tid.append(threading.get_native_id())
        stopped.wait(30)
    t = threading.Thread(target=worker); t.start()
    while not worker_tid: time.sleep(0.01)
    status = open(f"/proc/self/task/{worker_tid[0]}/status").read()
    blocked = int(next(l for l in status.splitlines() if l.startswith("SigBlk:")).split()[1], 16)
    print("blocked", blocked, flush=True)
    print("ready", flush=True)
    t.join()
    print("stopped", stopped.is_set(), flush=True)
""")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_calls_back_once_and_later_threads_never_take_it(sig):
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in child.stdout:
            lines.append(line.strip())
            if line.startswith("ready"):
                break
        blocked = int(lines[-2].split()[1])
        for s in (signal.SIGINT, signal.SIGTERM):
            assert blocked & (1 << (s - 1)), f"signal {s} not blocked in a thread started after the routing: {lines}"
        time.sleep(0.1)
        child.send_signal(sig)
        out, _ = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, out
    assert "stopped True" in out

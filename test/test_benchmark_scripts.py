"""The benchmark scripts share one start-up (benchmarks/common.py) and still start.

Their runs take minutes and are not part of the suite; this only checks that each
script goes through the shared start-up (private ROS domain, loopback only) and
parses its command line, so a refactoring elsewhere cannot silently break one.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from farl_control.launching.processes import ephemeral_port_range, ros_domain_ports

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if p.name != "common.py")


def test_every_benchmark_uses_the_shared_start_up():
    assert SCRIPTS
    for script in SCRIPTS:
        assert "from common import" in script.read_text(), f"{script.name} does its own start-up"


def test_every_benchmark_starts_and_explains_itself():
    runs = {s.name: subprocess.Popen([sys.executable, str(s), "--help"], cwd=BENCHMARKS.parent, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE) for s in SCRIPTS}
    for name, proc in runs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "usage:" in out, f"{name}: {err[-2000:]}"


def test_the_shared_start_up_isolates_the_ros_graph():
    code = ("import os, sys; sys.path.insert(0, 'benchmarks'); os.environ['ROS_DOMAIN_ID'] = '42'; import common; "
            "print(os.environ['ROS_DOMAIN_ID'], os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'])")
    result = subprocess.run([sys.executable, "-c", code], cwd=BENCHMARKS.parent, capture_output=True, text=True,
                            timeout=60)
    domain, scope = result.stdout.split()
    ports = ros_domain_ports(int(domain))
    low, high = ephemeral_port_range()
    assert domain != "42" and (ports.stop <= low or ports.start > high) and scope == "LOCALHOST"

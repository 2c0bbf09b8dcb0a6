"""`farl run` end to end: the main job on franky-sim for two episodes with an untrained model folder.

Runs the real command line (`farl run fragile_push_wall --episodes 2
models_dir:=… episodes_per_update:=1`) as a child process and checks what an
operator gets: per-episode lines, a policy update, a clean shutdown (exit 0)
and the report (report.md, summary.json, PNG plots, the recorded JSON lines).
A probe on the same ROS domain also sees the episode monitor's transitions.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time

import pytest
from std_msgs.msg import String

from farl_common import interface as api
from farl_control.launching.processes import free_loopback_ip as free_ip
from farl_control.ros.client import RobotClient
from farl_control.ros.endpoints import subscription
from model_folders import untrained_folder

pytestmark = [pytest.mark.ros, pytest.mark.sim, pytest.mark.slow]


@pytest.mark.timeout(240)
def test_farl_run_two_episodes_learns_and_reports(processes, tmp_path):
    models = untrained_folder(tmp_path / "models")
    out = tmp_path / "run"
    probe = RobotClient("farl_run_probe")
    transitions: list[dict] = []
    lock = threading.Lock()

    def on_transitions(msg: String) -> None:
        with lock:
            transitions.append(api.TRANSITIONS_PAYLOAD.from_json(msg.data))

    subscription(probe.node, api.LEARNER_TRANSITIONS, on_transitions)
    try:
        t0 = time.monotonic()
        job = processes.start("farl_run", [sys.executable, "-m", "farl_learner.cli", "run", "fragile_push_wall",
                                           "--episodes", "2", "--out", str(out), f"models_dir:={models}",
                                           "episodes_per_update:=1", f"robot_ip:={free_ip()}",
                                           # the probe listens on this session's domain; farl run would
                                           # otherwise pick a private one
                                           "--ros-domain", os.environ["ROS_DOMAIN_ID"]])
        code = job.popen.wait(timeout=200)
        elapsed = time.monotonic() - t0
    finally:
        probe.close()
    log = job.log_text()
    assert code == 0, log[-6000:]
    lines = [line for line in log.splitlines() if line.startswith("[farl run] episode ")]
    assert len(lines) == 2, log[-6000:]
    assert "learner: policy v1 announced" in log
    assert "Traceback" not in log and "terminate called" not in log and "never retrieved" not in log, log[-6000:]
    for name in ("report.md", "summary.json", "episodes.png", "shield.png", "events.jsonl", "decisions.jsonl",
                 "policies.jsonl"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 2 and summary["decisions"] >= 2
    assert summary["policy_versions"] and summary["policy_versions"][0] == 1
    assert (out / "learner" / "policies" / "v0001" / "manifest.json").is_file()
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events if e["type"] in ("start", "finished")] == ["start", "start", "finished"]
    with lock:
        got = list(transitions)
    assert len(got) == 2 and [t["episode"] for t in got] == [1, 2]
    print(f"\nfarl run: 2 episodes in {elapsed:.0f} s wall (incl. start-up and shutdown), "
          f"{summary['decisions']} decisions, policy versions {summary['policy_versions']}, "
          f"shield latency {summary['shield_latency_ms']}")


@pytest.mark.timeout(600)
def test_the_default_main_job_shows_successes_and_the_shield_at_work(processes, tmp_path):
    """What an operator sees from `scripts/run.sh`: the shipped models, 12 episodes, at least one
    success, the shield firing at least once, and C_H crossing eps_safe in the recorded risk trace."""
    out = tmp_path / "main"
    job = processes.start("farl_run", [sys.executable, "-m", "farl_learner.cli", "run", "fragile_push_wall",
                                       "--out", str(out), f"robot_ip:={free_ip()}"])
    code = job.popen.wait(timeout=560)
    log = job.log_text()
    assert code == 0, log[-6000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 12, log[-4000:]
    assert summary["successes"] >= 1, f"no success in 12 episodes: {summary}"
    assert summary["shield_triggers"] >= 1, f"the shield never fired: {summary}"
    decisions = [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines() if line.strip()]
    crossed = [d for d in decisions if float(d["risk"]) > float(d["epsilon"])]
    assert crossed, "C_H never crossed eps_safe in the recorded decisions"
    assert (out / "shield.png").stat().st_size > 0
    print(f"\nmain job: {summary['successes']} successes, {summary['failure_episodes']} failure episodes, "
          f"{summary['shield_triggers']} triggers, {len(crossed)} ticks with C_H > eps_safe")

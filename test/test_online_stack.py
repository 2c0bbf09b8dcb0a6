"""The whole online stack (config/stacks/fragile_push_wall.yaml) on franky-sim, and a learner crash.

The node table is resolved from the stack YAML exactly as `farl launch` does
(same parameters files, same command lines), with an untrained model folder
(test/model_folders.py) and one episode per PPO update. One stack per module:
first the loop is checked end to end (episodes start and end, whole episodes
reach the learner, a PPO update is exported, announced and swapped into the
shield), then the learner is SIGKILLed and control and shield must carry on.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus

from conftest import ProcessPool
from farl_common import interface as api
from farl_common.interface import Qos, SequenceGaps
from farl_control.launching.launcher import node_command, write_params_file
from farl_control.launching.lifecycle import LifecycleClient
from farl_control.launching.processes import free_loopback_ip as free_ip
from farl_control.launching.stack import load_stack
from farl_control.ros.client import RobotClient
from farl_control.ros.endpoints import subscription
from model_folders import untrained_folder
from test_franka_node_sim import STARTUP_TIMEOUT_S

pytestmark = [pytest.mark.ros, pytest.mark.sim, pytest.mark.slow]

VERDICTS = set(api.VERDICTS)


class StackRecorder:
    """Everything the online nodes publish, with receive times."""

    def __init__(self, probe: RobotClient):
        self.lock = threading.Lock()
        self.rows: dict[str, list[tuple[float, object]]] = {k: [] for k in
                                                             ("decision", "command", "event", "transitions", "policy")}
        self.decision_gaps = SequenceGaps()
        n = probe.node
        subscription(n, api.SHIELD_DECISION, self._on_decision)
        subscription(n, api.ROBOT_COMMAND,
                     lambda m: self._add("command", (m.twist.linear.x, m.twist.linear.y, m.twist.linear.z)),
                     Qos(depth=200))
        # Every payload is decoded with the interface's schema: one that does not validate fails the test.
        subscription(n, api.EPISODE_EVENTS, lambda m: self._add("event", api.EVENT_PAYLOAD.from_json(m.data)))
        subscription(n, api.LEARNER_TRANSITIONS,
                     lambda m: self._add("transitions", api.TRANSITIONS_PAYLOAD.from_json(m.data)))
        subscription(n, api.LEARNER_POLICY, lambda m: self._add("policy", api.POLICY_PAYLOAD.from_json(m.data)))

    def _on_decision(self, msg: DiagnosticStatus) -> None:
        decision = api.DECISION_PAYLOAD.from_pairs((kv.key, kv.value) for kv in msg.values)
        with self.lock:
            self.decision_gaps.note(decision["tick"])
        self._add("decision", decision)

    def _add(self, kind: str, row) -> None:
        with self.lock:
            self.rows[kind].append((time.monotonic(), row))

    def since(self, kind: str, t0: float = 0.0) -> list:
        with self.lock:
            return [r for t, r in self.rows[kind] if t >= t0]


@pytest.fixture(scope="module")
def online_stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("online_stack")
    models = untrained_folder(base / "models")
    ip = free_ip()
    nodes = load_stack("fragile_push_wall").resolve({
        "robot_ip": ip, "models_dir": str(models), "run_dir": str(base / "learner"), "episodes_per_update": "1"})
    assert [n.name for n in nodes] == ["sim_robot", "franka", "episode_monitor", "shield", "learner"]
    pool = ProcessPool(base / "logs")
    probe = None
    try:
        for node in nodes:
            pool.start(node.name, node_command(node, write_params_file(node, base)))
        probe = RobotClient("online_stack_probe")
        recorder = StackRecorder(probe)
        lifecycle = LifecycleClient("online_stack_manager")  # the launcher's part: the control node is managed
        try:
            assert [n.name for n in nodes if n.lifecycle] == ["franka"]
            error = lifecycle.bring_up("franka")
        finally:
            lifecycle.close()
        if error is not None or not probe.wait_for(lambda: probe.wait_until_active(0.0), STARTUP_TIMEOUT_S):
            pytest.fail(f"stack did not come up ({error}):\n" + pool.logs())
        yield pool, probe, recorder, base
    finally:
        if probe is not None:
            probe.close()
        pool.stop_all()
        for proc in pool.started:
            if proc.name != "learner":  # the learner is SIGKILLed by a test
                assert proc.popen.returncode == 0, f"{proc.name} exited with {proc.popen.returncode}:\n{pool.logs()}"


@pytest.fixture
def stack(online_stack, request):
    yield online_stack
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print(online_stack[0].logs())


@pytest.mark.timeout(200)  # includes the module stack start-up
def test_episodes_reach_the_learner_and_a_new_policy_comes_back(stack):
    pool, probe, rec, base = stack
    t0 = time.monotonic()

    def updated() -> bool:
        return any(d["policy_version"] > 0 for d in rec.since("decision"))

    assert probe.wait_for(updated, 120.0), "no decision with an updated policy:\n" + pool.logs()
    elapsed = time.monotonic() - t0
    events = rec.since("event")
    starts = [e for e in events if e["type"] == "start"]
    verdicts = [e for e in events if e["type"] in VERDICTS]
    assert starts and verdicts, events
    episodes = rec.since("transitions")
    assert episodes, "no /farl/learner/transitions message"
    ep = episodes[0]
    n = len(ep["obs"])
    assert ep["task"] == "fragile_push_wall" and n == verdicts[0]["steps"] > 0
    assert np.asarray(ep["obs"]).shape == (n, 7) and np.asarray(ep["next_obs"]).shape == (n, 7)
    assert np.asarray(ep["action"]).shape == (n, 3)
    assert all(len(ep[k]) == n for k in ("reward", "cost", "done", "log_prob", "source", "risk", "action_task"))
    assert ep["episode_return"] == pytest.approx(sum(ep["reward"]))
    policies = rec.since("policy")
    assert policies and policies[0]["version"] == 1
    folder = base / "learner" / "policies" / "v0001"
    assert (folder / "manifest.json").is_file() and (base / "learner" / "learner_state.pt").is_file()
    assert policies[0]["path"] == str(folder.resolve())
    # The decision topic is reliable with a deep queue: neither the monitor nor this probe lost one.
    assert events[-1]["decisions_dropped"] == 0 and rec.decision_gaps.dropped == 0
    print(f"\n{len(starts)} episode(s) started, verdicts {[e['type'] for e in verdicts]} "
          f"({verdicts[0]['steps']} steps), {len(episodes)} transitions message(s), policy v1 in use "
          f"{elapsed:.1f} s after the stack was up")


@pytest.mark.timeout(120)
def test_control_and_shield_carry_on_when_learner_is_killed(stack):
    pool, probe, rec, _ = stack
    learner = next(p for p in pool.started if p.name == "learner")
    assert learner.alive()
    assert probe.wait_for(lambda: len(rec.since("decision", time.monotonic() - 1.0)) >= 3, 30.0), \
        "shield not acting before the kill"
    t_kill = time.monotonic()
    learner.kill_hard()

    def episode_ended_and_another_began() -> bool:
        events = rec.since("event", t_kill)
        ends = [i for i, e in enumerate(events) if e["type"] in VERDICTS]
        return bool(ends) and any(e["type"] == "start" for e in events[ends[0]:])

    # At most one episode (100 ticks = 10 s) plus a reset: the window ends once the loop went round.
    assert probe.wait_for(episode_ended_and_another_began, 30.0, interval_s=0.02), \
        "episodes stopped without the learner"
    t_new = time.monotonic()
    time.sleep(2.0)  # two seconds of the new episode's ticks
    window_s = time.monotonic() - t_kill
    new_episode = rec.since("decision", t_new)
    decisions = rec.since("decision", t_kill)
    commands = rec.since("command", t_kill)
    events = rec.since("event", t_kill)
    starts = [e for e in events if e["type"] == "start"]
    verdicts = [e for e in events if e["type"] in VERDICTS]
    for name in ("sim_robot", "franka", "episode_monitor", "shield"):
        assert next(p for p in pool.started if p.name == name).alive(), f"{name} died"
    status = dict(probe.status)
    print(f"\nlearner SIGKILLed; in the next {window_s:.0f} s: {len(decisions)} decisions, {len(commands)} commands, "
          f"{len(verdicts)} verdict(s), {len(starts)} new episode(s) ({len(new_episode)} decisions in its first "
          f"2 s); franka mode {status.get('mode')}, "
          f"errors {status.get('error_count')}")
    # The new episode runs at the control rate (10 Hz): well over half its ticks in those two seconds.
    assert len(new_episode) >= 0.5 * 2.0 * 10, len(new_episode)
    assert len(commands) >= len(decisions) - 2
    assert verdicts and starts, "episodes must go on without the learner"
    assert status.get("mode") in ("autonomous", "idle", "resetting")  # not "error" / "stopped"

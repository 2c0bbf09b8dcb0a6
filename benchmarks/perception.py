"""Perception in simulation: per-frame cost, latency, pose error, and the perceived failure predicate.

Phases (--phase, default all):
  frame     in this process, pinned to one core: the sim camera's render and object_pose's
            per-frame work (ArUco + IPPE_SQUARE + filter) at 640x480, CPU ms per frame p50/p99
            over --frames rendered frames of the block at random poses along the push path.
  stack     franky-sim (perception:=aruco) + franka + sim_camera + object_pose, and the scripted
            operator's episodes (task push along the wall, failure push into it, recovery near it):
            - capture -> pose latency: the perceived pose's arrival minus its stamp (the stamp of
              the ground truth the image shows) p50/p99;
            - pose rate (Hz) and the sim's real-time factor;
            - pose error against the ground truth of the same stamp, median/p95 (mm, deg), with
              the block static and while it is pushed (ground-truth speed > 1 cm/s);
            - the task's failure.perceived predicate on the perceived poses (and, to separate
              predicate from perception, on the ground-truth poses) against MuJoCo's contact
              flag, tick by tick at 10 Hz and per episode: agreement and disagreement counts.
  decisions the whole autonomous stack (`farl launch`, learn:=false) for --decision-s seconds with
            perception:=ground_truth, then perception:=aruco: shield decisions per second and the
            sim's real-time factor, side by side.

Writes benchmarks/results/perception.{json,md} with the command (a phase run alone updates its part).

    python benchmarks/perception.py [--phase frame|stack|decisions|all] [--frames 200] [--episodes 6]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

from common import REPO, RESULTS, SimulatedArm, command_line, machine  # first: private ROS domain

import numpy as np  # noqa: E402

from farl_common import interface as api  # noqa: E402
from farl_common.failure_predicates import PerceivedFailure  # noqa: E402
from farl_common.task_config import load_task_config  # noqa: E402
from farl_perception.config import load_perception_config  # noqa: E402
from farl_perception.geometry import quat_xyzw_to_matrix, rotation_angle_deg  # noqa: E402

TASK = load_task_config("fragile_push_wall")
PERCEPTION = load_perception_config("fragile_push_wall", TASK)
BLOCK = "fragile_block"


def pct(values, q: float) -> float | None:
    return None if len(values) == 0 else round(float(np.percentile(np.asarray(values), q)), 3)


# ---------------------------------------------------------------- frame
def phase_frame(frames: int) -> dict:
    from farl_perception.object_poses import ObjectPoseEstimator
    from farl_perception.sim_render import SceneRenderer

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    renderer = SceneRenderer(TASK, PERCEPTION, calibration_marker=False)
    estimator = ObjectPoseEstimator(PERCEPTION, TASK, PERCEPTION.sim_camera.camera_to_base())
    rng = np.random.default_rng(0)
    render_ms, process_ms, process_wall_ms = [], [], []
    try:
        for i in range(frames + 10):
            position = (0.57 + rng.uniform(-0.04, 0.02), rng.uniform(-0.16, 0.10), 0.025)
            yaw = rng.uniform(-0.5, 0.5)
            renderer.set_state(TASK.robot.home_joints, {BLOCK: (position, (0, 0, np.sin(yaw / 2), np.cos(yaw / 2)))})
            c0 = time.process_time()
            image = renderer.render()
            c1, w1 = time.process_time(), time.perf_counter()
            estimator.process(image, float(i), renderer.intrinsics)
            c2, w2 = time.process_time(), time.perf_counter()
            if i >= 10:
                render_ms.append((c1 - c0) * 1000)
                process_ms.append((c2 - c1) * 1000)
                process_wall_ms.append((w2 - w1) * 1000)
    finally:
        renderer.close()
    return {"frames": frames, "resolution": f"{PERCEPTION.camera.width}x{PERCEPTION.camera.height}",
            "render_cpu_ms": {"p50": pct(render_ms, 50), "p99": pct(render_ms, 99)},
            "object_pose_cpu_ms": {"p50": pct(process_ms, 50), "p99": pct(process_ms, 99)},
            "object_pose_wall_ms": {"p50": pct(process_wall_ms, 50), "p99": pct(process_wall_ms, 99)},
            "mujoco_gl": os.environ.get("MUJOCO_GL", "")}


# ---------------------------------------------------------------- stack
class Recorder:
    """Ground truth by stamp, perceived poses with arrival times, contact flags per tick."""

    def __init__(self, client):
        from farl_control.ros.endpoints import subscription
        from farl_common.interface import Qos

        self.lock = threading.Lock()
        self.truth: dict[str, dict[float, np.ndarray]] = {name: {} for name in (BLOCK, "wall")}
        self.truth_order: deque[float] = deque(maxlen=20000)
        self.perceived: list[tuple[float, float, np.ndarray]] = []  # (stamp, latency_s, 4x4)
        self.latest_perceived: dict[str, np.ndarray] = {}
        self.latest_perceived_quat: dict[str, tuple] = {}
        self.contact = False
        self.rtf: list[float] = []
        keep = Qos(depth=200)
        n = client.node
        for name in (BLOCK, "wall"):
            subscription(n, api.sim_object_topic(name), lambda m, k=name: self._truth(k, m), keep)
            subscription(n, api.object_topic(name), lambda m, k=name: self._perceived(k, m), keep)
        self.node = n
        subscription(n, api.SCENE_STATE, self._scene, keep)

    @staticmethod
    def _matrix(msg) -> np.ndarray:
        p, q = msg.pose.position, msg.pose.orientation
        T = np.eye(4)
        T[:3, :3] = quat_xyzw_to_matrix((q.x, q.y, q.z, q.w))
        T[:3, 3] = (p.x, p.y, p.z)
        return T

    @staticmethod
    def _stamp(msg) -> float:
        return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9

    def _truth(self, name, msg) -> None:
        with self.lock:
            self.truth[name][round(self._stamp(msg), 6)] = self._matrix(msg)

    def _perceived(self, name, msg) -> None:
        now = self.node.get_clock().now().nanoseconds * 1e-9
        stamp = self._stamp(msg)
        T = self._matrix(msg)
        q = msg.pose.orientation
        with self.lock:
            self.latest_perceived[name] = T[:3, 3].copy()
            self.latest_perceived_quat[name] = (q.x, q.y, q.z, q.w)
            if name == BLOCK:
                self.perceived.append((round(stamp, 6), now - stamp, T))

    def _scene(self, msg) -> None:
        scene = api.SCENE_STATE_PAYLOAD.from_json(msg.data)
        with self.lock:
            self.contact = bool(scene["failure"])
            if scene["real_time_factor"] is not None:
                self.rtf.append(scene["real_time_factor"])

    def tick(self):
        """(contact now, latest perceived (positions, orientations), latest true (positions, orientations))."""
        from farl_perception.geometry import matrix_to_quat_xyzw

        with self.lock:
            latest = {name: poses[max(poses)] for name, poses in self.truth.items() if poses}
            truth = ({name: T[:3, 3].copy() for name, T in latest.items()},
                     {name: tuple(matrix_to_quat_xyzw(T[:3, :3])) for name, T in latest.items()})
            return self.contact, (dict(self.latest_perceived), dict(self.latest_perceived_quat)), truth


def run_episode(arm, recorder: Recorder, kind: str, predicate: PerceivedFailure, ticks: list) -> dict:
    from farl_teleop.scripted_operator import ScriptedOperator

    ok, message = arm.client.reset(60.0)
    if not ok:
        raise RuntimeError(f"reset failed: {message}")
    time.sleep(1.0)
    operator = ScriptedOperator(TASK.scripted_operator, kind)
    started = time.monotonic()
    episode = {"kind": kind, "contact": False, "perceived": False, "perceived_truth": False}
    waypoint_started = started
    while not operator.done and time.monotonic() - waypoint_started < TASK.scripted_operator.waypoint_timeout_s:
        tcp = arm.client.tcp()
        if tcp is None:
            time.sleep(0.1)
            continue
        if operator.reached(tcp):
            operator.advance()
            waypoint_started = time.monotonic()
            continue
        arm.client.send(operator.command(tcp))
        contact, perceived, truth = recorder.tick()
        p_fail, t_fail = predicate(*perceived), predicate(*truth)
        ticks.append((contact, p_fail, t_fail))
        episode["contact"] |= contact
        episode["perceived"] |= p_fail
        episode["perceived_truth"] |= t_fail
        time.sleep(0.1)
    arm.client.send((0.0, 0.0, 0.0))
    episode["seconds"] = round(time.monotonic() - started, 1)
    return episode


def agreement(pairs) -> dict:
    pairs = [(bool(a), bool(b)) for a, b in pairs]
    return {"both_failure": sum(a and b for a, b in pairs), "both_no_failure": sum((not a) and (not b) for a, b in pairs),
            "contact_only_missed": sum(a and not b for a, b in pairs),
            "perceived_only_false_alarm": sum(b and not a for a, b in pairs), "n": len(pairs)}


def phase_stack(episodes: int) -> dict:
    predicate = PerceivedFailure(TASK)
    kinds = (["task", "failure", "recovery"] * episodes)[:episodes]
    with SimulatedArm("perception", sim_parameters={"perception": "aruco"}) as arm:
        arm.add("sim_camera", ["sim_camera_node"])
        arm.add("object_pose", ["object_pose_node"])
        recorder = Recorder(arm.client)
        arm.start_franka()
        if not arm.client.wait_for(lambda: len(recorder.perceived) > 30, 90.0):
            raise RuntimeError("no perceived poses: " + " ".join(p.log_text()[-1500:] for p in arm.processes))
        ticks: list = []
        results = [run_episode(arm, recorder, kind, predicate, ticks) for kind in kinds]
        with recorder.lock:
            perceived = list(recorder.perceived)
            truth = dict(recorder.truth[BLOCK])
            rtf = list(recorder.rtf)
    latencies = [lat * 1000 for _, lat, _ in perceived]
    stamps = sorted(truth)
    static_mm, moving_mm, static_deg, moving_deg = [], [], [], []
    for stamp, _, T in perceived:
        if stamp not in truth:
            continue
        i = stamps.index(stamp)
        if i == 0:
            continue
        dt = stamps[i] - stamps[i - 1]
        speed = np.linalg.norm(truth[stamps[i]][:3, 3] - truth[stamps[i - 1]][:3, 3]) / dt if dt > 0 else 0.0
        err_mm = float(np.linalg.norm(T[:3, 3] - truth[stamp][:3, 3]) * 1000)
        err_deg = rotation_angle_deg(T[:3, :3], truth[stamp][:3, :3])
        (moving_mm if speed > 0.01 else static_mm).append(err_mm)
        (moving_deg if speed > 0.01 else static_deg).append(err_deg)
    span = (perceived[-1][0] - perceived[0][0]) if len(perceived) > 1 else 0.0
    return {
        "episodes": results,
        "capture_to_pose_ms": {"p50": pct(latencies, 50), "p99": pct(latencies, 99), "n": len(latencies)},
        "pose_rate_hz": round(len(perceived) / span, 1) if span else None,
        "sim_real_time_factor": {"median": pct(rtf, 50), "p5": pct(rtf, 5)},
        "pose_error_static": {"median_mm": pct(static_mm, 50), "p95_mm": pct(static_mm, 95),
                              "median_deg": pct(static_deg, 50), "p95_deg": pct(static_deg, 95), "n": len(static_mm)},
        "pose_error_moving": {"median_mm": pct(moving_mm, 50), "p95_mm": pct(moving_mm, 95),
                              "median_deg": pct(moving_deg, 50), "p95_deg": pct(moving_deg, 95), "n": len(moving_mm)},
        "failure_ticks_perceived_vs_contact": agreement((c, p) for c, p, _ in ticks),
        "failure_ticks_groundtruth_predicate_vs_contact": agreement((c, t) for c, _, t in ticks),
        "failure_episodes_perceived_vs_contact": agreement((e["contact"], e["perceived"]) for e in results),
        "predicate": {"objects": list(predicate.objects), "margin_m": predicate.predicate.margin},
    }


# ---------------------------------------------------------------- decisions
def phase_decisions(seconds: float) -> dict:
    from farl_control.ros.client import RobotClient
    from farl_control.ros.endpoints import subscription

    out = {}
    for perception in ("ground_truth", "aruco"):
        from farl_control.launching.processes import free_loopback_ip

        cmd = [sys.executable, "-m", "farl_learner.cli", "launch", "fragile_push_wall", f"perception:={perception}",
               "learn:=false", f"robot_ip:={free_loopback_ip()}"]
        log = Path(tempfile.mkdtemp(prefix="farl_perception_")) / f"launch_{perception}.log"
        with log.open("w") as stream:
            proc = subprocess.Popen(cmd, cwd=REPO, stdout=stream, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True)
        client = RobotClient(f"decisions_{perception}")
        times: list[float] = []
        subscription(client.node, api.SHIELD_DECISION, lambda m: times.append(time.monotonic()))
        try:
            if not client.wait_for(lambda: len(times) > 10, 240.0):
                raise RuntimeError(f"perception:={perception}: no shield decisions within 240 s; launch log "
                                   f"{log}:\n{log.read_text()[-3000:]}")
            t0 = time.monotonic()
            rtf = []
            while time.monotonic() - t0 < seconds:
                time.sleep(1.0)
                if client.scene.get("real_time_factor") is not None:
                    rtf.append(client.scene["real_time_factor"])
            n = sum(t >= t0 for t in times)
            out[perception] = {"decisions_per_s": round(n / seconds, 2), "sim_real_time_factor_median": pct(rtf, 50),
                               "seconds": seconds}
        finally:
            client.close()
            os.killpg(proc.pid, 2)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
    return out


# ---------------------------------------------------------------- report
def render_md(results: dict) -> str:
    lines = ["# Perception in simulation (ArUco on the rendered scene camera)", "",
             f"Command: `{results['command']}`", f"Machine: {results['machine']}", ""]
    if "frame" in results:
        f = results["frame"]
        lines += ["## Per frame, one core", "", "| what | p50 ms | p99 ms |", "|---|---|---|",
                  f"| sim render {f['resolution']} (CPU) | {f['render_cpu_ms']['p50']} | {f['render_cpu_ms']['p99']} |",
                  f"| object_pose: ArUco + IPPE_SQUARE + filter (CPU) | {f['object_pose_cpu_ms']['p50']} | "
                  f"{f['object_pose_cpu_ms']['p99']} |",
                  f"| object_pose (wall) | {f['object_pose_wall_ms']['p50']} | {f['object_pose_wall_ms']['p99']} |", ""]
    if "stack" in results:
        s = results["stack"]
        lines += ["## Stack (franky-sim + franka + sim_camera + object_pose, scripted operator)", "",
                  f"- capture -> pose latency: p50 {s['capture_to_pose_ms']['p50']} ms, p99 {s['capture_to_pose_ms']['p99']} ms "
                  f"(n = {s['capture_to_pose_ms']['n']})",
                  f"- pose rate {s['pose_rate_hz']} Hz; sim real-time factor median {s['sim_real_time_factor']['median']}",
                  "", "| block | median mm | p95 mm | median deg | p95 deg | n |", "|---|---|---|---|---|---|"]
        for key in ("pose_error_static", "pose_error_moving"):
            e = s[key]
            lines.append(f"| {key.split('_')[-1]} | {e['median_mm']} | {e['p95_mm']} | {e['median_deg']} | "
                         f"{e['p95_deg']} | {e['n']} |")
        lines += ["", "### Perceived failure predicate vs MuJoCo contact", "",
                  f"Predicate: gap between {' and '.join(s['predicate']['objects'])} <= {s['predicate']['margin_m']} m.", "",
                  "| compared | both failure | both none | contact only (missed) | predicate only (false alarm) | n |",
                  "|---|---|---|---|---|---|"]
        for key, label in (("failure_ticks_perceived_vs_contact", "ticks: perceived poses"),
                           ("failure_ticks_groundtruth_predicate_vs_contact", "ticks: ground-truth poses"),
                           ("failure_episodes_perceived_vs_contact", "episodes: perceived poses")):
            a = s[key]
            lines.append(f"| {label} | {a['both_failure']} | {a['both_no_failure']} | {a['contact_only_missed']} | "
                         f"{a['perceived_only_false_alarm']} | {a['n']} |")
        lines.append("")
    if "decisions" in results:
        lines += ["## Stack decision rate, side by side", "", "| perception | decisions/s | sim RTF |", "|---|---|---|"]
        for name, d in results["decisions"].items():
            lines.append(f"| {name} | {d['decisions_per_s']} | {d['sim_real_time_factor_median']} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=("frame", "stack", "decisions", "all"), default="all")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--decision-s", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    path = args.out / "perception.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    results.update({"command": command_line(), "machine": machine()})

    def save() -> None:  # after every phase: a later phase that fails loses nothing measured
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1))
        (args.out / "perception.md").write_text(render_md(results))

    if args.phase in ("frame", "all"):
        results["frame"] = phase_frame(args.frames)
        print(json.dumps(results["frame"]), flush=True)
        save()
    if args.phase in ("stack", "all"):
        results["stack"] = phase_stack(args.episodes)
        print(json.dumps({k: v for k, v in results["stack"].items() if k != "episodes"}), flush=True)
        save()
    if args.phase in ("decisions", "all"):
        results["decisions"] = phase_decisions(args.decision_s)
        print(json.dumps(results["decisions"]), flush=True)
        save()
    print(render_md(results))


if __name__ == "__main__":
    main()

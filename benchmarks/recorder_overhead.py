"""Demo recorder overhead: its CPU, dropped messages and MB per minute, with 100 Hz state and a 30 Hz camera.

The recorder node (farl_teleop.recorder_node) runs as its own process, as in
`farl record`; this script plays the robot side with synthetic messages at the
stack's rates: /farl/robot/ee_pose and /farl/robot/joint_states at 100 Hz,
/farl/objects/{fragile_block,wall,target} and /farl/sim/scene_state at 30 Hz,
/farl/teleop/command and /farl/robot/executed at 30 Hz, and (second run) a
640x480 JPEG on /farl/camera/image/compressed at 30 Hz. It starts one episode
(a /farl/teleop/operator start), publishes for --seconds, stops it, and reads
the file back. Measured: the recorder's CPU (utime + stime from /proc over the
episode, in % of one core), messages published vs. recorded per topic
(dropped), file MB per minute.

Prints a table and writes benchmarks/results/recorder_overhead.{json,md}.

    python benchmarks/recorder_overhead.py [--seconds 60] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import RESULTS, command_line, machine, relative  # first: private ROS domain, loopback only

import numpy as np  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def jpeg(width: int = 640, height: int = 480) -> bytes:
    """A camera-like frame (smooth gradient plus noise) as JPEG, quality 80."""
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1)
    frame = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(frame).save(out, format="JPEG", quality=80)
    return out.getvalue()


def run_once(seconds: float, camera: bool, work: Path) -> dict:
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import PoseStamped, TwistStamped
    from sensor_msgs.msg import CompressedImage, JointState
    from std_msgs.msg import String

    from farl_common import interface as api
    from farl_control.launching.processes import ManagedProcess
    from farl_control.ros.client import RobotClient
    from farl_control.ros.endpoints import publisher
    from farl_teleop.recording.episode_reader import episode_files, read_episode

    out_dir = work / ("camera" if camera else "state")
    recorder = ManagedProcess("recorder", [sys.executable, "-m", "farl_teleop.recorder_node", "--ros-args",
                                           "-p", f"out_dir:={out_dir}", "-p", f"record_camera:={str(camera).lower()}"],
                              log_path=work / f"recorder-{camera}.log")
    client = RobotClient("recorder_bench")
    node = client.node
    objects = ("fragile_block", "wall", "target")
    streams = [(api.EE_POSE, 100.0), (api.JOINT_STATES, 100.0), (api.SCENE_STATE, 30.0),
               (api.TELEOP_COMMAND, 30.0), (api.EXECUTED_COMMAND, 30.0),
               *[(api.object_topic(o), 30.0) for o in objects]]
    if camera:
        streams.append((api.CAMERA_COMPRESSED, 30.0))
    pubs = {topic.name: publisher(node, topic) for topic, _ in streams}
    operator = publisher(node, api.TELEOP_OPERATOR)
    frame = jpeg() if camera else b""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (all(p.get_subscription_count() for p in pubs.values())
                                                    and operator.get_subscription_count()):
            time.sleep(0.1)
        time.sleep(1.0)
        published = {name: 0 for name in pubs}
        recording = threading.Event()
        stop = threading.Event()

        def stamp():
            now = time.time_ns()
            return Time(sec=now // 1_000_000_000, nanosec=now % 1_000_000_000)

        def make(topic):
            if topic.type.endswith("PoseStamped"):
                msg = PoseStamped()
                msg.header.frame_id = "base"
                msg.pose.position.x, msg.pose.orientation.w = 0.5, 1.0
            elif topic.type.endswith("JointState"):
                msg = JointState(name=[f"fr3_joint{i}" for i in range(1, 8)], position=[0.1] * 7, velocity=[0.0] * 7,
                                 effort=[0.0] * 7)
            elif topic.type.endswith("TwistStamped"):
                msg = TwistStamped()
                msg.header.frame_id = "base"
                msg.twist.linear.y = 0.05
            elif topic.type.endswith("CompressedImage"):
                msg = CompressedImage(format="jpeg", data=frame)
                msg.header.frame_id = "camera"
            else:
                msg = String(data=api.SCENE_STATE_PAYLOAD.to_json({
                    "sim_time": 1.0, "failure": False, "success": False, "contacts": [],
                    "real_time_factor": 1.0, "resets": 0}))
            return msg

        def publish(topic, rate):
            msg, pub, period = make(topic), pubs[topic.name], 1.0 / rate
            next_t = time.monotonic()
            while not stop.is_set():
                if hasattr(msg, "header"):
                    msg.header.stamp = stamp()
                pub.publish(msg)
                if recording.is_set():
                    published[topic.name] += 1
                next_t += period
                time.sleep(max(0.0, next_t - time.monotonic()))

        threads = [threading.Thread(target=publish, args=s, daemon=True) for s in streams]
        for t in threads:
            t.start()
        time.sleep(1.0)

        def event(action: str, **extra) -> None:
            operator.publish(String(data=api.OPERATOR_PAYLOAD.to_json({
                "action": action, "episode": 1, "kind": "task", "operator": "bench", "device": "scripted",
                "time": time.time(), "elapsed": 0.0, **extra})))

        event("start")
        time.sleep(0.3)  # the file is open before counting starts
        cpu0, wall0 = cpu_seconds(recorder.pid), time.monotonic()
        recording.set()
        time.sleep(seconds)
        recording.clear()
        cpu1, wall1 = cpu_seconds(recorder.pid), time.monotonic()
        time.sleep(0.3)  # what was published before `clear` has arrived
        event("stop", outcome="unlabelled")
        time.sleep(2.0)
        stop.set()
        for t in threads:
            t.join(timeout=2)
    finally:
        client.close()
        recorder.stop(grace_s=10)
    [path] = episode_files(out_dir)
    episode = read_episode(path, decode=False)
    recorded = episode.metadata["message_counts"]
    duration = episode.metadata["duration_s"]
    topics = {}
    for name, sent in published.items():
        got = recorded.get(name, 0)
        # `got` includes the ~0.6 s published around the counted window (before/after): dropped = shortfall only.
        topics[name] = {"published": sent, "recorded": got, "dropped": max(0, sent - got)}
    size = path.stat().st_size
    return {"camera": camera, "seconds": seconds, "recorder_cpu_percent": 100 * (cpu1 - cpu0) / (wall1 - wall0),
            "topics": topics, "dropped_total": sum(t["dropped"] for t in topics.values()),
            "published_total": sum(t["published"] for t in topics.values()),
            "file_bytes": size, "episode_duration_s": duration, "mb_per_minute": size / 1e6 / duration * 60,
            "jpeg_bytes": len(frame), "file": relative(str(path))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the recorded episode [60]")
    parser.add_argument("--out", default=str(RESULTS), help="results folder [benchmarks/results]")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="farl_recorder_bench_"))
    rows = []
    for camera in (False, True):
        r = run_once(args.seconds, camera, work)
        rows.append(r)
        print(f"recorder | camera {'on ' if camera else 'off'} | CPU {r['recorder_cpu_percent']:.1f} % of a core | "
              f"dropped {r['dropped_total']}/{r['published_total']} | {r['mb_per_minute']:.1f} MB/min", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = {"command": command_line(), "machine": machine(), "runs": rows}
    (out / "recorder_overhead.json").write_text(json.dumps(info, indent=2) + "\n")
    m = info["machine"]
    lines = ["# Demo recorder overhead", "",
             f"Command: `{info['command']}`  ",
             f"Machine: {m['cpus']} cores, {m['platform']}; {m['date_utc']} UTC; load average {m['load_avg_1min']} "
             "at start (a shared machine).", "",
             "Synthetic robot side at the stack's rates: ee_pose and joint_states 100 Hz; 3 object poses, "
             "scene state, teleop and executed commands 30 Hz; camera 640x480 JPEG 30 Hz in the second run. "
             "Dropped = published during the counted window minus recorded.", "",
             "| camera | recorder CPU (% of one core) | dropped / published | MB per minute | JPEG frame |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {'on' if r['camera'] else 'off'} | {r['recorder_cpu_percent']:.1f} | "
                     f"{r['dropped_total']} / {r['published_total']} | {r['mb_per_minute']:.1f} | "
                     f"{r['jpeg_bytes'] / 1e3:.0f} kB |" if r["camera"] else
                     f"| off | {r['recorder_cpu_percent']:.1f} | {r['dropped_total']} / {r['published_total']} | "
                     f"{r['mb_per_minute']:.1f} | - |")
    (out / "recorder_overhead.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'recorder_overhead.md'}")


if __name__ == "__main__":
    main()

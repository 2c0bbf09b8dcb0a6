"""A client of the robot-side ROS interface, for tests and benchmarks.

Publishes commands and records what the franka and sim_robot nodes publish
(EE pose history with receive times, status, scene state), and calls their
services — everything an operator tool or the shield would see, in-process so
tests can assert on it directly.
"""
from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Sequence

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from farl_control.ros.messages import make_twist, status_values
from farl_control.sim.sim_robot_node import SCENE_STATE_TOPIC

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class Sample:
    t: float  # time.monotonic() at receipt
    pos: Vec3


class RosProbe:
    """Owns an rclpy context of its own and spins it in a background thread."""

    def __init__(self, name: str = "farl_probe", history: int = 5000):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node(name, context=self.context)
        self.lock = threading.Lock()
        self.ee: deque[Sample] = deque(maxlen=history)
        self.joint_times: deque[float] = deque(maxlen=history)
        self.status: dict[str, str] = {}
        self.status_level: int | None = None
        self.scene: dict = {}
        self.scene_times: deque[tuple[float, float]] = deque(maxlen=history)  # (monotonic, sim_time)
        self.objects: dict[str, Vec3] = {}
        n = self.node
        n.create_subscription(PoseStamped, "/farl/robot/ee_pose", self._on_ee, 50)
        n.create_subscription(JointState, "/farl/robot/joint_states", self._on_joints, 50)
        n.create_subscription(DiagnosticArray, "/farl/robot/status", self._on_status, 10)
        n.create_subscription(String, SCENE_STATE_TOPIC, self._on_scene, 10)
        self.command_pub = n.create_publisher(TwistStamped, "/farl/robot/command", 10)
        self.teleop_pub = n.create_publisher(TwistStamped, "/farl/teleop/command", 10)
        self.clients = {name: n.create_client(Trigger, f"/farl/robot/{name}") for name in ("reset", "stop")}
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(n)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def track_object(self, name: str) -> None:
        def cb(msg: PoseStamped) -> None:
            p = msg.pose.position
            self.objects[name] = (p.x, p.y, p.z)
        self.node.create_subscription(PoseStamped, f"/farl/objects/{name}", cb, 10)

    # ---- callbacks -------------------------------------------------------------
    def _on_ee(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        with self.lock:
            self.ee.append(Sample(time.monotonic(), (p.x, p.y, p.z)))

    def _on_joints(self, msg: JointState) -> None:
        with self.lock:
            self.joint_times.append(time.monotonic())

    def _on_status(self, msg: DiagnosticArray) -> None:
        with self.lock:
            self.status = status_values(msg)
            self.status_level = msg.status[0].level if msg.status else None

    def _on_scene(self, msg: String) -> None:
        data = json.loads(msg.data)
        with self.lock:
            self.scene = data
            self.scene_times.append((time.monotonic(), float(data["sim_time"])))

    # ---- commands and services -----------------------------------------------------
    def send(self, linear: Sequence[float], angular: Sequence[float] = (0.0, 0.0, 0.0), frame: str = "base",
             teleop: bool = False) -> None:
        msg = make_twist(linear, angular, stamp=self.node.get_clock().now().to_msg(), frame_id=frame)
        (self.teleop_pub if teleop else self.command_pub).publish(msg)

    def stream(self, linear: Sequence[float], duration_s: float, rate_hz: float = 10.0, **kw) -> None:
        """Publish the same command at `rate_hz` for `duration_s` (what a shield does)."""
        period = 1.0 / rate_hz
        end = time.monotonic() + duration_s
        next_t = time.monotonic()
        while time.monotonic() < end:
            self.send(linear, **kw)
            next_t += period
            time.sleep(max(0.0, next_t - time.monotonic()))

    def call(self, service: str, timeout_s: float = 30.0) -> Trigger.Response:
        client = self.clients[service]
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise TimeoutError(f"/farl/robot/{service} not available")
        done = threading.Event()
        future = client.call_async(Trigger.Request())
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout_s):
            raise TimeoutError(f"/farl/robot/{service} did not answer within {timeout_s} s")
        return future.result()

    # ---- reading ---------------------------------------------------------------
    def pos(self) -> Vec3 | None:
        with self.lock:
            return self.ee[-1].pos if self.ee else None

    def samples_since(self, t0: float) -> list[Sample]:
        with self.lock:
            return [s for s in self.ee if s.t >= t0]

    def wait_for(self, predicate, timeout_s: float, interval_s: float = 0.02) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(interval_s)
        return bool(predicate())

    def real_time_factor(self, t0: float, t1: float) -> float | None:
        """Sim seconds per wall second between monotonic times t0 and t1 (from scene_state)."""
        with self.lock:
            pts = [p for p in self.scene_times if t0 <= p[0] <= t1]
        if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
            return None
        return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])

    def time_until_still(self, t0: float, timeout_s: float, window_s: float = 0.1, tol_m: float = 0.0005) -> float | None:
        """Seconds from `t0` until the EE moved less than `tol_m` over `window_s` (None: never)."""
        end = t0 + timeout_s
        while time.monotonic() < end:
            time.sleep(0.02)
            samples = self.samples_since(t0)
            for i, s in enumerate(samples):
                later = [x for x in samples[i:] if x.t <= s.t + window_s]
                if later and later[-1].t - s.t >= window_s * 0.8 and dist(s.pos, later[-1].pos) < tol_m:
                    return s.t - t0
        return None

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)  # spin() returns
        self.thread.join(timeout=2.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def dist(a: Sequence[float], b: Sequence[float]) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))

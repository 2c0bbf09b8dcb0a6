"""The one rclpy client of the robot-side interface, for tools that drive or watch the stack.

`farl run --scripted`, the benchmarks and the tests all need the same things:
the TCP pose (with a history of receive times, to measure latency and speed),
object poses, the control node's status, the simulator's scene state, a way to
send velocity commands (autonomous or teleop) and to call reset / stop. Names,
types and QoS come from `farl_common.interface`.

The client owns an rclpy context of its own and spins it in a background
thread, so callers simply poll, and it never disturbs another rclpy user in the
same process (the run recorder, a test's own nodes).
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from farl_common import interface as api
from farl_common.interface import PayloadReader, Qos
from farl_control.ros.endpoints import client, publisher, subscription
from farl_control.ros.messages import make_twist, status_values
from farl_control.ros.spin_thread import SpinThread

Vec3 = tuple[float, float, float]
# Lifecycle states of the control node in which it refuses commands and resets (its status "mode").
INACTIVE_MODES = ("unconfigured", "inactive", "finalized")
# Keep every state message for latency and speed measurements (the publisher's 10 would drop some).
HISTORY_QOS = Qos(depth=50)


@dataclass(frozen=True)
class Sample:
    t: float  # time.monotonic() at receipt
    pos: Vec3


class RobotClient:
    """A node in its own context, spun in a background thread; everything it reads is kept for polling."""

    def __init__(self, name: str = "farl_robot_client", objects: Sequence[str] = (), history: int = 5000):
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context)  # not sys.argv: launch arguments are not ROS remaps
        self.node = Node(name, context=self.context)
        self.lock = threading.Lock()
        self.ee: deque[Sample] = deque(maxlen=history)
        self.joint_times: deque[float] = deque(maxlen=history)
        self.status: dict[str, str] = {}
        self.status_level: int | None = None
        self.status_message = ""
        self.scene: dict = {}
        self.scene_times: deque[tuple[float, float]] = deque(maxlen=history)  # (monotonic, sim_time)
        self.objects: dict[str, Vec3] = {}
        self.scene_reader = PayloadReader(api.SCENE_STATE_PAYLOAD)
        n = self.node
        subscription(n, api.EE_POSE, self._on_ee, HISTORY_QOS)
        subscription(n, api.JOINT_STATES, self._on_joints, HISTORY_QOS)
        subscription(n, api.ROBOT_STATUS, self._on_status)
        subscription(n, api.SCENE_STATE, self._on_scene)
        self.command_pub = publisher(n, api.ROBOT_COMMAND)
        self.teleop_pub = publisher(n, api.TELEOP_COMMAND)
        self.clients = {"reset": client(n, api.ROBOT_RESET), "stop": client(n, api.ROBOT_STOP)}
        for obj in objects:
            self.track_object(obj)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(n)
        self.spin = SpinThread(self.executor, name=f"{name}-spin")
        self.spin.start()

    def track_object(self, name: str) -> None:
        """Also record /farl/objects/<name>."""
        def on_pose(msg: PoseStamped) -> None:
            p = msg.pose.position
            with self.lock:
                self.objects[name] = (p.x, p.y, p.z)
        subscription(self.node, api.object_topic(name), on_pose)

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
            if msg.status:
                level = msg.status[0].level
                self.status_level = int.from_bytes(level, "little") if isinstance(level, bytes) else int(level)
                self.status_message = msg.status[0].message

    def _on_scene(self, msg: String) -> None:
        scene = self.scene_reader.json(msg.data)
        if scene is None:
            return
        with self.lock:
            self.scene = scene
            self.scene_times.append((time.monotonic(), float(scene["sim_time"])))

    # ---- commands and services -----------------------------------------------------
    def send(self, linear: Sequence[float], angular: Sequence[float] = (0.0, 0.0, 0.0), frame: str = api.BASE_FRAME,
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
        """Call /farl/robot/<service> (reset | stop); TimeoutError if it is absent or does not answer."""
        srv = self.clients[service]
        if not srv.wait_for_service(timeout_sec=timeout_s):
            raise TimeoutError(f"{srv.srv_name} not available")
        done = threading.Event()
        future = srv.call_async(Trigger.Request())
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout_s):
            raise TimeoutError(f"{srv.srv_name} did not answer within {timeout_s:g} s")
        return future.result()

    def _outcome(self, service: str, timeout_s: float) -> tuple[bool, str]:
        try:
            response = self.call(service, timeout_s)
        except TimeoutError as error:
            return False, str(error)
        return bool(response.success), str(response.message)

    def reset(self, timeout_s: float = 60.0) -> tuple[bool, str]:
        """Go home (and in sim reset the scene): (success, the control node's message)."""
        return self._outcome("reset", timeout_s)

    def stop(self, timeout_s: float = 10.0) -> tuple[bool, str]:
        return self._outcome("stop", timeout_s)

    # ---- reading ---------------------------------------------------------------
    def pos(self) -> Vec3 | None:
        with self.lock:
            return self.ee[-1].pos if self.ee else None

    def tcp(self) -> np.ndarray | None:
        position = self.pos()
        return None if position is None else np.array(position)

    def object_position(self, name: str) -> np.ndarray | None:
        with self.lock:
            position = self.objects.get(name)
        return None if position is None else np.array(position)

    def samples_since(self, t0: float) -> list[Sample]:
        with self.lock:
            return [s for s in self.ee if s.t >= t0]

    def wait_for(self, predicate: Callable[[], object], timeout_s: float, interval_s: float = 0.02) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(interval_s)
        return bool(predicate())

    def wait_for_state(self, timeout_s: float) -> bool:
        """True once a TCP pose has arrived (the control node is configured: connected to the arm)."""
        return self.wait_for(lambda: self.pos() is not None, timeout_s, 0.05)

    def active(self) -> bool:
        """The control node is active (accepts commands and resets), as its status says."""
        with self.lock:
            return self.status.get("mode") not in (None, *INACTIVE_MODES)

    def wait_until_active(self, timeout_s: float) -> bool:
        """True once the arm's state flows and the control node is active."""
        return self.wait_for(lambda: self.pos() is not None and self.active(), timeout_s, 0.05)

    def real_time_factor(self, t0: float, t1: float) -> float | None:
        """Sim seconds per wall second between monotonic times t0 and t1 (from the scene state)."""
        with self.lock:
            pts = [p for p in self.scene_times if t0 <= p[0] <= t1]
        if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
            return None
        return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])

    def time_until_still(self, t0: float, timeout_s: float, window_s: float = 0.1,
                         tol_m: float = 0.0005) -> float | None:
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
        stopped = self.spin.stop()
        if stopped:
            self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def dist(a: Sequence[float], b: Sequence[float]) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))

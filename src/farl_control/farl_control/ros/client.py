"""A small rclpy client of the robot-side interface, for tools that drive the stack.

The main job, benchmarks and tests all need the same things: the latest TCP
pose and object poses, the status, a way to command velocities and to call
reset/stop. This keeps those topic names in one place (the DESIGN interface
table) and spins its own executor thread so callers can simply poll.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from std_srvs.srv import Trigger

ROBOT_COMMAND = "/farl/robot/command"
TELEOP_COMMAND = "/farl/teleop/command"
EE_POSE = "/farl/robot/ee_pose"
STATUS = "/farl/robot/status"
RESET = "/farl/robot/reset"
STOP = "/farl/robot/stop"
OBJECTS_PREFIX = "/farl/objects/"


@dataclass
class Stamped:
    value: np.ndarray
    received: float


class RobotClient:
    """Owns a node and an executor thread; everything it reads is the latest message."""

    def __init__(self, name: str = "farl_robot_client", objects: tuple[str, ...] = ()):
        if not rclpy.ok():
            rclpy.init()
        self.node = Node(name)
        self._lock = threading.Lock()
        self.ee_pose: Stamped | None = None
        self.objects: dict[str, Stamped] = {}
        self.status: dict[str, str] = {}
        self.node.create_subscription(PoseStamped, EE_POSE, self._on_ee_pose, qos_profile_sensor_data)
        self.node.create_subscription(DiagnosticArray, STATUS, self._on_status, 10)
        for name_ in objects:
            self.node.create_subscription(
                PoseStamped, OBJECTS_PREFIX + name_, lambda msg, n=name_: self._on_object(n, msg), 10)
        self.command_pub = self.node.create_publisher(TwistStamped, ROBOT_COMMAND, 10)
        self.teleop_pub = self.node.create_publisher(TwistStamped, TELEOP_COMMAND, 10)
        self._reset = self.node.create_client(Trigger, RESET)
        self._stop = self.node.create_client(Trigger, STOP)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    @staticmethod
    def _position(msg: PoseStamped) -> np.ndarray:
        p = msg.pose.position
        return np.array([p.x, p.y, p.z])

    def _on_ee_pose(self, msg: PoseStamped) -> None:
        with self._lock:
            self.ee_pose = Stamped(self._position(msg), time.monotonic())

    def _on_object(self, name: str, msg: PoseStamped) -> None:
        with self._lock:
            self.objects[name] = Stamped(self._position(msg), time.monotonic())

    def _on_status(self, msg: DiagnosticArray) -> None:
        with self._lock:
            for status in msg.status:
                self.status.update({kv.key: kv.value for kv in status.values})
                self.status["level"] = str(int.from_bytes(status.level, "little")
                                           if isinstance(status.level, bytes) else status.level)
                self.status["message"] = status.message

    def tcp(self) -> np.ndarray | None:
        with self._lock:
            return None if self.ee_pose is None else self.ee_pose.value.copy()

    def object_position(self, name: str) -> np.ndarray | None:
        with self._lock:
            stamped = self.objects.get(name)
            return None if stamped is None else stamped.value.copy()

    def wait_for_state(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.tcp() is not None:
                return True
            time.sleep(0.05)
        return False

    def send(self, linear, angular=(0.0, 0.0, 0.0), teleop: bool = False, frame: str = "base") -> None:
        msg = TwistStamped()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = frame
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in linear)
        msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = (float(v) for v in angular)
        (self.teleop_pub if teleop else self.command_pub).publish(msg)

    def _call(self, client, timeout_s: float) -> tuple[bool, str]:
        if not client.wait_for_service(timeout_sec=timeout_s):
            return False, f"service {client.srv_name} not available"
        future = client.call_async(Trigger.Request())
        deadline = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not future.done():
            return False, f"service {client.srv_name} did not answer within {timeout_s} s"
        result = future.result()
        return bool(result.success), str(result.message)

    def reset(self, timeout_s: float = 60.0) -> tuple[bool, str]:
        return self._call(self._reset, timeout_s)

    def stop(self, timeout_s: float = 10.0) -> tuple[bool, str]:
        return self._call(self._stop, timeout_s)

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()

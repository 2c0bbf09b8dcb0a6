"""Plain values ⇄ ROS messages for the robot-side nodes (one place for frames and field order).

Quaternions: ROS and franky use (x, y, z, w); MuJoCo uses (w, x, y, z).
"""
from __future__ import annotations

from typing import Sequence

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, TwistStamped
from sensor_msgs.msg import JointState

from farl_control.robot.safety import Command

BASE_FRAME = "base"
FR3_JOINT_NAMES = tuple(f"fr3_joint{i}" for i in range(1, 8))


def twist_to_command(msg: TwistStamped, source: str, received_at: float) -> Command:
    lin, ang = msg.twist.linear, msg.twist.angular
    return Command((lin.x, lin.y, lin.z), (ang.x, ang.y, ang.z), msg.header.frame_id, source, received_at)


def make_twist(linear: Sequence[float], angular: Sequence[float] = (0.0, 0.0, 0.0), stamp: Time | None = None,
               frame_id: str = BASE_FRAME) -> TwistStamped:
    msg = TwistStamped()
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in linear)
    msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = (float(v) for v in angular)
    return msg


def make_pose(pos: Sequence[float], quat_xyzw: Sequence[float], stamp: Time, frame_id: str = BASE_FRAME) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    p, q = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z = (float(v) for v in pos)
    q.x, q.y, q.z, q.w = (float(v) for v in quat_xyzw)
    return msg


def wxyz_to_xyzw(q: Sequence[float]) -> tuple[float, float, float, float]:
    return (q[1], q[2], q[3], q[0])


def make_joint_state(position: Sequence[float], velocity: Sequence[float], effort: Sequence[float],
                     stamp: Time) -> JointState:
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(FR3_JOINT_NAMES)
    msg.position = [float(v) for v in position]
    msg.velocity = [float(v) for v in velocity]
    msg.effort = [float(v) for v in effort]
    return msg


def make_status(name: str, level: int, message: str, values: dict[str, object], stamp: Time,
                hardware_id: str = "") -> DiagnosticArray:
    status = DiagnosticStatus()
    status.name = name
    status.level = level
    status.message = message
    status.hardware_id = hardware_id
    status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = [status]
    return array


def status_values(msg: DiagnosticArray) -> dict[str, str]:
    """The key/value pairs of the first status in a DiagnosticArray (for clients and tests)."""
    return {kv.key: kv.value for kv in msg.status[0].values} if msg.status else {}

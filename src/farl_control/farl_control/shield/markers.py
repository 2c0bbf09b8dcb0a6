"""rviz markers of the shield: what an operator watches to see the shield work.

- `trigger`: a sphere at the TCP, green while pi_task acts, red (and larger)
  when the recovery policy took over this tick.
- `risk`: text above the TCP, "C_H 0.42 > eps 0.30 RECOVERY".
- `predicted_path`: the world model's predicted TCP path for the next H steps,
  each point coloured from green (P(fail)=0) to red (P(fail)=1).
- `workspace`: the control node's workspace box (line list).
- `scene/<name>`: the task's static objects (wall, target, table) from config.
All in the `base` frame; namespaces are stable so rviz displays can filter them.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from farl_control.ros.messages import BASE_FRAME
from farl_common.task_config import TaskConfig


def _color(r: float, g: float, b: float, a: float = 1.0) -> ColorRGBA:
    return ColorRGBA(r=float(r), g=float(g), b=float(b), a=float(a))


def _risk_color(p: float) -> ColorRGBA:
    p = float(np.clip(p, 0.0, 1.0))
    return _color(p, 1.0 - p, 0.1)


def _marker(ns: str, marker_id: int, kind: int, stamp) -> Marker:
    m = Marker()
    m.header.frame_id = BASE_FRAME
    m.header.stamp = stamp
    m.ns, m.id, m.type, m.action = ns, marker_id, kind, Marker.ADD
    m.pose.orientation.w = 1.0
    return m


def static_markers(config: TaskConfig, stamp) -> list[Marker]:
    """Workspace box and static scene objects: published with every tick (cheap, survives rviz restarts)."""
    markers = []
    lo, hi = np.array(config.control.workspace_min), np.array(config.control.workspace_max)
    box = _marker("workspace", 0, Marker.LINE_LIST, stamp)
    box.scale.x = 0.004
    box.color = _color(0.3, 0.6, 1.0, 0.8)
    corners = [np.array([x, y, z]) for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    for i, a in enumerate(corners):
        for b in corners[i + 1:]:
            if np.count_nonzero(np.abs(a - b) > 1e-9) == 1:
                box.points += [Point(x=float(a[0]), y=float(a[1]), z=float(a[2])),
                               Point(x=float(b[0]), y=float(b[1]), z=float(b[2]))]
    markers.append(box)
    for i, obj in enumerate(o for o in config.scene.objects if not o.free):
        kind = {"box": Marker.CUBE, "cylinder": Marker.CYLINDER, "sphere": Marker.SPHERE}[obj.shape]
        m = _marker(f"scene/{obj.name}", i, kind, stamp)
        m.pose.position.x, m.pose.position.y, m.pose.position.z = obj.pos
        if obj.shape == "box":
            m.scale.x, m.scale.y, m.scale.z = (2 * s for s in obj.size)
        elif obj.shape == "cylinder":
            m.scale.x = m.scale.y = 2 * obj.size[0]
            m.scale.z = max(2 * obj.size[1], 0.002)
        else:
            m.scale.x = m.scale.y = m.scale.z = 2 * obj.size[0]
        m.color = _color(*obj.rgba)
        markers.append(m)
    return markers


def decision_markers(tcp: Sequence[float], source: str, risk: float, epsilon: float,
                     hand_path: np.ndarray, step_prob: np.ndarray, stamp) -> list[Marker]:
    fired = source == "recovery"
    flash = _marker("trigger", 0, Marker.SPHERE, stamp)
    flash.pose.position.x, flash.pose.position.y, flash.pose.position.z = (float(v) for v in tcp)
    size = 0.08 if fired else 0.03
    flash.scale.x = flash.scale.y = flash.scale.z = size
    flash.color = _color(1.0, 0.1, 0.1, 0.8) if fired else _color(0.1, 0.9, 0.2, 0.6)

    text = _marker("risk", 0, Marker.TEXT_VIEW_FACING, stamp)
    text.pose.position.x, text.pose.position.y = float(tcp[0]), float(tcp[1])
    text.pose.position.z = float(tcp[2]) + 0.12
    text.scale.z = 0.035
    relation = ">" if risk > epsilon else "<="
    text.text = f"C_H {risk:.2f} {relation} eps {epsilon:.2f}" + (" RECOVERY" if fired else "")
    text.color = _color(1.0, 0.2, 0.2) if fired else _color(1.0, 1.0, 1.0)

    path = _marker("predicted_path", 0, Marker.LINE_STRIP, stamp)
    path.scale.x = 0.006
    for point, p in zip(np.asarray(hand_path), np.asarray(step_prob)):
        path.points.append(Point(x=float(point[0]), y=float(point[1]), z=float(point[2])))
        path.colors.append(_risk_color(float(p)))
    return [flash, text, path]


def marker_array(markers: list[Marker]) -> MarkerArray:
    array = MarkerArray()
    array.markers = markers
    return array

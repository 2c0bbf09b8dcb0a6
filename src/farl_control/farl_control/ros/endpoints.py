"""Publishers, subscriptions, services and clients made from the interface table.

Nodes never spell a topic name, message type or QoS themselves: they pass the
`farl_common.interface` entry, so both ends of every topic agree by construction.
"""
from __future__ import annotations

from typing import Any, Callable

from rclpy.node import Node

from farl_common.interface import Qos, Service, Topic


def publisher(node: Node, topic: Topic, qos: Qos | None = None, **kwargs: Any):
    return node.create_publisher(topic.msg_class(), topic.name, (qos or topic.qos).profile(), **kwargs)


def subscription(node: Node, topic: Topic, callback: Callable, qos: Qos | None = None, **kwargs: Any):
    """`qos` overrides the topic's contract on the subscriber side only where it stays compatible
    (e.g. `NEWEST`, best effort, for a subscriber that acts on the latest state)."""
    return node.create_subscription(topic.msg_class(), topic.name, callback, (qos or topic.qos).profile(), **kwargs)


def service(node: Node, svc: Service, callback: Callable, **kwargs: Any):
    return node.create_service(svc.srv_class(), svc.name, callback, **kwargs)


def client(node: Node, svc: Service, **kwargs: Any):
    return node.create_client(svc.srv_class(), svc.name, **kwargs)

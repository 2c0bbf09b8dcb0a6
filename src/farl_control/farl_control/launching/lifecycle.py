"""Driving managed (lifecycle) nodes from the pip-side launcher: configure, then activate.

`ros2 launch` does this with launch_ros' LifecycleNode and ChangeState events
(launch/<task>.launch.py); `farl launch`, `farl run` and the tests use this
client of the standard lifecycle services (/<node>/change_state, /<node>/get_state).
The client owns an rclpy context of its own, so it never disturbs another
rclpy user in the launcher's process.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from farl_control.ros.spin_thread import SpinThread

# The node's own connect timeout (robot.connect_timeout_s) ends a configure that cannot reach the arm;
# this only bounds a node that stops answering altogether.
CONFIGURE_TIMEOUT_S = 90.0
TRANSITION_TIMEOUT_S = 15.0
SERVICE_TIMEOUT_S = 60.0  # the node's process starting (imports, rclpy) on a loaded machine
# A service is "ready" once its request topic has matched; its response writer may match our reader a
# moment later. A response sent in that gap is dropped (the node logs "failed to send response
# (timeout)"), and the call would wait for ever. get_state changes nothing, so it is re-sent after this long.
GET_STATE_RETRY_S = 2.0


class LifecycleClient:
    """Calls the lifecycle services of other nodes."""

    def __init__(self, name: str = "farl_lifecycle_client"):
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context)
        self.node = Node(name, context=self.context)
        self._clients: dict[str, tuple] = {}
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.spin = SpinThread(self.executor, name=f"{name}-spin")
        self.spin.start()

    def _services(self, node_name: str):
        if node_name not in self._clients:
            self._clients[node_name] = (self.node.create_client(ChangeState, f"/{node_name}/change_state"),
                                        self.node.create_client(GetState, f"/{node_name}/get_state"))
        return self._clients[node_name]

    @staticmethod
    def _call(client, request, timeout_s: float, keep_waiting: Callable[[], bool], resend_after_s: float | None = None):
        """The response, or None if the service did not appear or answer in time (or keep_waiting turned false).

        `resend_after_s` (idempotent requests only): a call unanswered for that long is sent again.
        """
        deadline = time.monotonic() + timeout_s
        while not client.service_is_ready():
            if time.monotonic() > deadline or not keep_waiting():
                return None
            time.sleep(0.05)
        while True:
            done = threading.Event()
            future = client.call_async(request)
            future.add_done_callback(lambda _: done.set())
            resend_at = time.monotonic() + resend_after_s if resend_after_s else float("inf")
            while not done.wait(0.05):
                if time.monotonic() > deadline or not keep_waiting():
                    future.cancel()
                    return None
                if time.monotonic() > resend_at:
                    future.cancel()
                    break
            else:
                return future.result()

    def state(self, node_name: str, timeout_s: float = TRANSITION_TIMEOUT_S,
              keep_waiting: Callable[[], bool] = lambda: True) -> str | None:
        """The node's lifecycle state label (unconfigured, inactive, active, finalized), None if unknown."""
        response = self._call(self._services(node_name)[1], GetState.Request(), timeout_s, keep_waiting,
                              resend_after_s=GET_STATE_RETRY_S)
        return None if response is None else response.current_state.label

    def change(self, node_name: str, transition: int, timeout_s: float = TRANSITION_TIMEOUT_S,
               keep_waiting: Callable[[], bool] = lambda: True) -> bool | None:
        """Request a transition (lifecycle_msgs/Transition id): True/False as the node answered, None if it did not."""
        request = ChangeState.Request()
        request.transition.id = transition
        response = self._call(self._services(node_name)[0], request, timeout_s, keep_waiting)
        return None if response is None else bool(response.success)

    def bring_up(self, node_name: str, keep_waiting: Callable[[], bool] = lambda: True) -> str | None:
        """configure, then activate; None when the node is active, else what went wrong (one line).

        The get_state round trip first also proves the response path matched, so the transitions (which
        cannot be re-sent safely) are not lost to the discovery gap.
        """
        if self.state(node_name, SERVICE_TIMEOUT_S, keep_waiting) is None:
            return "its lifecycle services did not appear" if keep_waiting() else None
        for transition, label, timeout_s in ((Transition.TRANSITION_CONFIGURE, "configure", CONFIGURE_TIMEOUT_S),
                                             (Transition.TRANSITION_ACTIVATE, "activate", TRANSITION_TIMEOUT_S)):
            outcome = self.change(node_name, transition, timeout_s, keep_waiting)
            if not keep_waiting():
                return None
            if outcome is None:
                return f"{label} did not answer within {timeout_s:g} s"
            if not outcome:
                return f"{label} failed"
        return None

    def close(self) -> None:
        if self.spin.stop():
            self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

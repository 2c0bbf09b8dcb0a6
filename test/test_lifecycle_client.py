"""The launcher's lifecycle client survives a lost get_state response.

A service counts as ready once its request topic matches; the response may
still be dropped while the reverse path matches ("failed to send response
(timeout)" in the node's log). Then the launcher waited its whole 60 s and
reported that the node's lifecycle services "did not appear". get_state is
idempotent, so the client re-sends it. Here a get_state server keeps its first
request unanswered for longer than the whole test allows; the label still
comes back, through the re-sent request.
"""
from __future__ import annotations

import threading
import time

import pytest
import rclpy
from lifecycle_msgs.srv import GetState
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node

from farl_control.launching.lifecycle import GET_STATE_RETRY_S, LifecycleClient

pytestmark = [pytest.mark.ros]


@pytest.mark.timeout(60)
def test_a_get_state_left_unanswered_is_sent_again_and_answered():
    context = rclpy.Context()
    rclpy.init(args=[], context=context)
    server = Node("lifecycle_client_probe_server", context=context)
    calls: list[float] = []
    release = threading.Event()

    def get_state(request, response):
        calls.append(time.monotonic())
        if len(calls) == 1:
            release.wait(30.0)  # the first request is as good as lost
        response.current_state.label = "unconfigured"
        return response

    server.create_service(GetState, "/lost_response_node/get_state", get_state,
                          callback_group=ReentrantCallbackGroup())
    executor = MultiThreadedExecutor(num_threads=2, context=context)
    executor.add_node(server)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    client = LifecycleClient("lifecycle_client_probe")
    try:
        start = time.monotonic()
        label = client.state("lost_response_node", timeout_s=20.0)
        elapsed = time.monotonic() - start
    finally:
        release.set()
        client.close()
        executor.shutdown(timeout_sec=2.0)
        server.destroy_node()
        rclpy.try_shutdown(context=context)
    assert label == "unconfigured"
    assert len(calls) >= 2 and elapsed < 20.0
    assert calls[1] - calls[0] >= GET_STATE_RETRY_S * 0.9  # re-sent only after the retry interval

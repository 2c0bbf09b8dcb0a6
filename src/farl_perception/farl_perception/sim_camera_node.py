"""sim_camera node: the scene camera in simulation, a MuJoCo render of the sim_robot node's scene.

Publishes what realsense_camera_node publishes on the real arm (same topics,
encoding, frame_id and CameraInfo), so object_pose and everything downstream
run unchanged in simulation.

Where the state comes from: the simulation steps in the sim_robot process,
which must stay real time on a 2-core machine. Rendering there (a thread
reading its MjData) would share that process's interpreter lock with the
1 kHz stepping loop, and a 640x480 CPU render takes tens of milliseconds. So
the renderer is this separate process, at a lower priority (sim_camera.nice):
it builds its own copy of the scene (`SceneRenderer`) and poses it from the
ground truth sim_robot already publishes (/farl/sim/objects/<name>, 30 Hz) and
the arm's /farl/robot/joint_states. When the CPU is short, it is this process
that loses frames, never the simulation its steps. Each image carries the
stamp of the ground truth it shows, so a pose perceived from it compares with
the ground truth of that same instant.

Parameters
  task_config, perception_config (string)  task and perception YAML, relative to config/
  rate_hz (double)          render rate cap (<= 0: sim_camera.rate_hz of the config)
  hidden_markers (string[]) objects whose marker is taken off (a lost marker, for tests and demos);
                            settable while running
  calibration_marker (bool) render the calibration marker on the hand (`farl calibrate camera`);
                            off by default, as on the real arm, where it is mounted for calibrating
                            only: at the home pose it hides the block's marker from the camera
Subscribes
  /farl/sim/objects/<name>, /farl/robot/joint_states
Publishes
  /farl/camera/color/image_raw, /farl/camera/color/camera_info, /farl/perception/status
"""
from __future__ import annotations

import os
import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import JointState

from farl_common import interface as api
from farl_common.errors import FarlInputError
from farl_common.task_config import load_task_config
from farl_control.ros.endpoints import publisher, subscription
from farl_control.ros.messages import FR3_JOINT_NAMES, make_status
from farl_control.ros.node_main import run_node
from farl_perception.config import load_perception_config
from farl_perception.ros_images import camera_info_message, image_message

PROGRAM = "sim_camera_node"
STATUS_NAME = "farl/camera"


class SimCameraNode(Node):
    def __init__(self) -> None:
        super().__init__("scene_camera")
        describe = lambda text: ParameterDescriptor(description=text)  # noqa: E731
        self.declare_parameter("task_config", "tasks/fragile_push_wall.yaml",
                               describe("Task YAML: a task name or a path relative to config/"))
        self.declare_parameter("perception_config", "perception/fragile_push_wall.yaml",
                               describe("Perception YAML (camera, sim camera pose, markers), relative to config/"))
        self.declare_parameter("rate_hz", 0.0, describe("Render rate cap, Hz (<= 0: sim_camera.rate_hz)"))
        self.declare_parameter("calibration_marker", False, describe(
            "Render the calibration marker on the hand (for `farl calibrate camera`; off in operation, where "
            "it would hide the objects' markers)"))
        self.declare_parameter("hidden_markers", [""], describe(
            "Objects whose marker is taken off the rendered scene (a lost marker); may be set while running"))
        self.task = load_task_config(self.get_parameter("task_config").value)
        self.config = load_perception_config(self.get_parameter("perception_config").value, self.task)
        rate = float(self.get_parameter("rate_hz").value)
        self.period_s = 1.0 / (rate if rate > 0 else self.config.sim_camera.rate_hz)
        os.nice(self.config.sim_camera.nice)  # before any thread exists: they all inherit it
        self.renderer = None  # built in the render thread: an EGL context belongs to the thread that made it
        self.fatal: str | None = None  # a render thread failure; run_node exits with it
        self._lock = threading.Lock()
        self._fresh = threading.Event()
        self._stop = threading.Event()
        self._arm_q: list[float] | None = None
        self._poses: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {}
        self._stamp = None
        self._last_rendered_stamp: tuple[int, int] | None = None  # (sec, nanosec) of the last frame sent
        self._hidden: set[str] = set()
        self._hidden_applied: set[str] = set()
        self.frames = 0
        self.render_ms = 0.0
        self._apply_hidden(self.get_parameter("hidden_markers").value)
        self.add_on_set_parameters_callback(self._on_parameters)

        self.image_pub = publisher(self, api.CAMERA_IMAGE)
        self.info_pub = publisher(self, api.CAMERA_INFO)
        self.status_pub = publisher(self, api.PERCEPTION_STATUS)
        subscription(self, api.JOINT_STATES, self._on_joints, api.NEWEST)
        for obj in self.task.scene.tracked:
            subscription(self, api.sim_object_topic(obj.name), lambda m, n=obj.name: self._on_object(n, m))
        self.create_timer(1.0, self._publish_status)
        self._thread = threading.Thread(target=self._render_loop, name="render", daemon=True)

    def _apply_hidden(self, names) -> None:
        names = {str(n) for n in names if n}
        unknown = sorted(names - {o.name for o in self.config.markers})
        if unknown:
            raise FarlInputError(None, f"{', '.join(unknown)} carry no marker (markers: "
                                       f"{', '.join(o.name for o in self.config.markers)})", key="parameter hidden_markers")
        with self._lock:
            self._hidden = names

    def _on_parameters(self, parameters) -> SetParametersResult:
        for p in parameters:
            if p.name == "hidden_markers":
                try:
                    self._apply_hidden(p.value)
                except FarlInputError as error:
                    return SetParametersResult(successful=False, reason=str(error))
        return SetParametersResult(successful=True)

    def _on_joints(self, msg: JointState) -> None:
        positions = dict(zip(msg.name, msg.position))
        if all(name in positions for name in FR3_JOINT_NAMES):
            with self._lock:
                self._arm_q = [positions[name] for name in FR3_JOINT_NAMES]

    def _on_object(self, name: str, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        with self._lock:
            self._poses[name] = ((p.x, p.y, p.z), (q.x, q.y, q.z, q.w))
            self._stamp = msg.header.stamp
        self._fresh.set()

    def start(self) -> None:
        self._thread.start()

    def _render_loop(self) -> None:
        try:
            from farl_perception.sim_render import SceneRenderer  # MuJoCo: the sim camera only

            self.renderer = SceneRenderer(self.task, self.config,
                                          calibration_marker=bool(self.get_parameter("calibration_marker").value))
            self.get_logger().info(f"rendering {self.config.camera.width}x{self.config.camera.height} at up to "
                                   f"{1.0 / self.period_s:g} Hz (MUJOCO_GL={os.environ.get('MUJOCO_GL', 'default')})")
            self._render_frames()
        except Exception as error:  # noqa: BLE001 - one line through run_node, never a thread traceback
            self.fatal = f"sim camera failed: {type(error).__name__}: {error}"
        finally:
            if self.renderer is not None:
                self.renderer.close()

    def _render_frames(self) -> None:
        """Render the newest ground truth, at most once per period; frames that cannot keep up are skipped."""
        cam = self.config.camera
        assert self.renderer is not None
        next_due = time.monotonic()
        while not self._stop.is_set():
            if not self._fresh.wait(0.2):
                continue
            delay = next_due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            self._fresh.clear()
            with self._lock:
                arm_q, poses, stamp, hidden = self._arm_q, dict(self._poses), self._stamp, set(self._hidden)
            # The objects of one ground-truth instant arrive as several messages with one stamp: a late one
            # wakes the loop again, and a second frame with the same stamp would be a re-stamped pose.
            key = (stamp.sec, stamp.nanosec) if stamp is not None else None
            if key is not None and key == self._last_rendered_stamp:
                continue
            self._last_rendered_stamp = key
            for name in hidden ^ self._hidden_applied:
                self.renderer.hide_marker(name, name in hidden)
            self._hidden_applied = hidden
            started = time.monotonic()
            self.renderer.set_state(arm_q, poses)
            pixels = self.renderer.render()
            elapsed_ms = (time.monotonic() - started) * 1000.0
            self.render_ms = elapsed_ms if self.frames == 0 else 0.9 * self.render_ms + 0.1 * elapsed_ms
            self.image_pub.publish(image_message(pixels, stamp, cam.frame_id))
            self.info_pub.publish(camera_info_message(self.renderer.intrinsics, stamp, cam.frame_id))
            self.frames += 1
            next_due = max(next_due + self.period_s, started)

    def _publish_status(self) -> None:
        self.status_pub.publish(make_status(STATUS_NAME, DiagnosticStatus.OK if self.frames else DiagnosticStatus.WARN,
                                            "rendering" if self.frames else "waiting for /farl/sim/objects", {
                                                "frames": self.frames, "render_ms": round(self.render_ms, 1),
                                                "hidden_markers": ",".join(sorted(self._hidden))},
                                            self.get_clock().now().to_msg(), hardware_id="sim"))

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=3.0)


def main(args: list[str] | None = None) -> None:
    run_node(PROGRAM, SimCameraNode, args, on_start=lambda node: node.start())


if __name__ == "__main__":
    main(sys.argv)

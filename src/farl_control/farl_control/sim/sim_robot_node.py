"""sim_robot node: the simulated FR3 (franky-sim, MuJoCo) with the task's objects.

Serves the libfranka protocol on `robot_ip`:1337/1338 in real time, so the
franka control node drives it exactly as it drives the real arm, and publishes
the ground truth a real lab would get from cameras and an operator's eyes.

Parameters
  task_config (string)  task YAML (name, or path relative to config/)
  robot_ip    (string)  loopback address franky-sim listens on

  perception  (string)  ground_truth: the ground truth is also the pose the stack acts on
                        (/farl/objects/<name>); aruco: object_pose publishes those

Publishes
  /farl/sim/objects/<name>  geometry_msgs/PoseStamped, frame `base`, for each
                         `tracked: true` scene object (ground truth), at
                         scene.publish_rate_hz: what the sim camera renders and
                         what tests and benchmarks compare perception against
  /farl/objects/<name>   the same, with perception:=ground_truth only
  /farl/sim/scene_state  std_msgs/String, JSON object at the same rate:
                           {"sim_time": s, "failure": bool (the failure bodies touch),
                            "success": bool (object within tolerance of target, x-y),
                            "contacts": [[body, body], ...] (pairs with a task object),
                            "real_time_factor": sim s per wall s over the last 2 s (null at start),
                            "resets": number of scene resets so far}
Services
  /farl/sim/reset_scene  std_srvs/Trigger: free objects back to their start
                         pose (+ reset_jitter), at rest; arm joints to
                         robot.home_joints. Done between two simulation steps.

SIGINT/SIGTERM stop the stepping loop, close the server sockets and exit 0.
"""
from __future__ import annotations

import sys
import threading
import time

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time
from std_msgs.msg import String
from std_srvs.srv import Trigger

from farl_common import interface as api
from farl_common.errors import FarlInputError, exit_on_input_error
from farl_common.task_config import load_task_config
from farl_control.ros.endpoints import publisher, service
from farl_control.ros.messages import make_pose, wxyz_to_xyzw
from farl_control.ros.spin_thread import SpinThread, tear_down
from farl_control.ros.stop_signals import route_stop_signals
from farl_control.sim.scene import SimScene

PROGRAM = "sim_robot_node"
SIM_START_TIMEOUT_S = 30.0  # building the MuJoCo model and binding the sockets


class SimRobotNode(Node):
    def __init__(self) -> None:
        super().__init__("sim_robot")
        self.declare_parameter("task_config", "tasks/fragile_push_wall.yaml",
                               ParameterDescriptor(description="Task YAML: a task name or a path relative to config/"))
        self.declare_parameter("robot_ip", "127.0.0.1",
                               ParameterDescriptor(description="Loopback address franky-sim serves libfranka on (ports 1337/1338)"))
        self.declare_parameter("perception", "ground_truth", ParameterDescriptor(
            description="ground_truth: also publish the ground truth on /farl/objects/<name> (the poses the "
                        "stack acts on); aruco: only on /farl/sim/objects/<name> (object_pose publishes the others)"))
        self.config = load_task_config(self.get_parameter("task_config").value)
        perception = str(self.get_parameter("perception").value)
        if perception not in ("ground_truth", "aruco"):
            raise FarlInputError(None, f"{perception!r} is not one of ground_truth, aruco", key="parameter perception")
        self.robot_ip = str(self.get_parameter("robot_ip").value)
        self.scene = SimScene(self.config)
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self.loop_error: BaseException | None = None
        self.sim_thread = threading.Thread(target=self._serve, name="franky-sim", daemon=True)

        self.truth_pubs = {o.name: publisher(self, api.sim_object_topic(o.name)) for o in self.config.scene.tracked}
        self.object_pubs = ({o.name: publisher(self, api.object_topic(o.name)) for o in self.config.scene.tracked}
                            if perception == "ground_truth" else {})
        self.state_pub = publisher(self, api.SCENE_STATE)
        service(self, api.SIM_RESET_SCENE, self._on_reset)
        # ROS time minus the monotonic clock the scene's snapshots are taken on (see _publish).
        self._clock_offset_ns = self.get_clock().now().nanoseconds - time.monotonic_ns()
        self.create_timer(1.0 / self.config.scene.publish_rate_hz, self._publish)

    def start_sim(self) -> None:
        self.sim_thread.start()
        if not self.ready.wait(SIM_START_TIMEOUT_S) or self.loop_error is not None:
            raise RuntimeError(f"franky-sim did not start on {self.robot_ip}: {self.loop_error or 'timeout'}")
        self.get_logger().info(f"franky-sim (MuJoCo FR3, task {self.config.task}) serving on {self.robot_ip}:1337")

    def _serve(self) -> None:
        try:
            self.scene.serve(self.robot_ip, self.stop_event, on_ready=self.ready.set,
                             snapshot_period_s=1.0 / self.config.scene.publish_rate_hz)
        except BaseException as error:  # reported by start_sim / main; the node then exits
            self.loop_error = error
            self.ready.set()
            self.stop_event.set()

    def _publish(self) -> None:
        self._report_stalls()
        snap = self.scene.latest
        if snap is None:
            return
        # Stamped with when the snapshot was taken, not when this timer fired (up to one period later):
        # the shield differences two poses' stamps for an object's velocity. One fixed clock offset, so
        # a snapshot published twice carries exactly one stamp (the sim camera renders an instant once).
        stamp = Time(nanoseconds=int(snap.wall_time * 1e9) + self._clock_offset_ns).to_msg()
        for name, pub in self.truth_pubs.items():
            pose = snap.poses[name]
            msg = make_pose(pose.pos, wxyz_to_xyzw(pose.quat_wxyz), stamp)
            pub.publish(msg)
            if name in self.object_pubs:
                self.object_pubs[name].publish(msg)
        self.state_pub.publish(String(data=api.SCENE_STATE_PAYLOAD.to_json(snap.as_dict())))

    def _report_stalls(self) -> None:
        gaps = self.scene.stalls.take_new()
        if gaps:
            self.get_logger().warning(
                f"franky-sim's loop paused {len(gaps)}x for up to {max(gaps) * 1e3:.0f} ms (no robot state was "
                f"sent meanwhile; {self.scene.stalls.count} pauses >= {self.scene.stalls.threshold_s * 1e3:.0f} ms "
                "since start): a starved CPU; libfranka may report a network error or a motion may lag")

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        error = self.scene.request_reset()
        response.success = error is None
        response.message = error or f"scene reset ({self.scene.latest.resets} resets so far)"
        return response

    def shutdown(self) -> None:
        self.stop_event.set()
        if self.sim_thread.is_alive():
            self.sim_thread.join(timeout=5.0)


def main(args: list[str] | None = None) -> None:
    done = threading.Event()
    route_stop_signals(done.set)  # franky-sim's server threads never see EINTR
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node: SimRobotNode | None = None
    spin: threading.Thread | None = None
    # One executor thread is enough (a reset waits a few ms for the loop) and costs
    # far less CPU than a thread pool, CPU the simulation needs to stay real time.
    executor = SingleThreadedExecutor()
    code = 0
    try:
        with exit_on_input_error(PROGRAM):
            node = SimRobotNode()
        try:
            node.start_sim()
        except RuntimeError as error:
            raise FarlInputError(None, f"{error}; is another simulator using {node.robot_ip}:1337? "
                                       "pick another robot_ip") from None
        executor.add_node(node)
        spin = SpinThread(executor, name=PROGRAM)
        spin.start()
        while not done.wait(0.2):
            if node.stop_event.is_set():  # the simulation loop died
                print(f"{PROGRAM}: error: simulation loop stopped: {node.loop_error}", file=sys.stderr)
                code = 1
                break
    except FarlInputError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr, flush=True)
        code = 2
    finally:
        tear_down(node, spin, executor, PROGRAM)
    sys.exit(code)


if __name__ == "__main__":
    main()

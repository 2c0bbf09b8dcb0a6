"""FrankaTwinEnv: the served sim's franky-sim MuJoCo scene, stepped in-process.

The training twin of a real-robot task. It builds the very scene the
`sim_robot` node serves (`farl_control.sim.scene.SimScene`: franky-sim's MuJoCo
FR3 plus the task's objects), but instead of serving the libfranka protocol in
real time it steps the physics itself, as fast as the CPU allows:

    one env step = one control tick (1 / control.rate_hz s)
                 = N physics steps of 1 ms (N = 100 at 10 Hz)

Per tick, exactly as on the robot side:
1. action in [-1, 1]^3 → TCP linear velocity (`TaskSpec.action_to_velocity`);
2. the control node's command filter (`farl_control.robot.safety.filter_twist` with the
   task's `ControlConfig`: speed limit, workspace box with its look-ahead of one
   control period) turns it into the twist sent to the arm, given the TCP
   position at the start of the tick;
3. for each 1 ms physics step, franky-sim's Cartesian velocity controller
   (Jacobian pseudo-inverse → joint velocity D-controller with Coriolis and
   gravity compensation, torques clipped to the FR3 limits) computes joint
   torques and MuJoCo advances one step.

Observation, reward and episode rules come from `TaskSpec.from_config` (the
code the shield and episode monitor use); as on the robot side
(`farl_control.episodes.tracker`), an episode ends at a success, at a failure
when `episode.terminate_on_failure`, or after `episode.max_steps` ticks
(truncated). `info["cost"]` is 1 when the task's failure predicate
(`failure.predicates`, the code `SimScene.failure` runs) holds at any of the
tick's physics steps (contacts) or Jacobian periods (regions) — a bounce off
the wall inside a tick is not missed. The lab around the task (`SimScene.world_step`:
a disturber's obstacle, the turf's slope on a rolling ball) acts between
Jacobian periods, as the served sim applies it between its steps.

Fast path. franky-sim's `cartesian_velocity_control` + `sim.step()` also keep
libfranka's bookkeeping (desired poses, finite-difference trackers, ~15 state
components finalized every ms) that only feeds the robot-state *messages* and
never the torques, and it evaluates pinocchio's `computeAllTerms` twice per
step. `controller="fast"` (default) computes the same torques with the same
pinocchio model and formulas and skips the bookkeeping; `controller="franky"`
runs franky-sim's own calls. `test_twin_env.py` checks that both give the same
trajectory. Neither changes the physics timestep, the gains or the controller.

Differences from the served stack, on purpose: no network/libfranka client, so
the twist is applied as a step at each tick (franky's client-side motion
generator smooths it with the robot's acceleration limits over a few ms), and
no real-time jitter.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from franky_sim.constants import FRANKA_HAND_FORCE_LIMIT

from farl_control.robot.safety import AUTONOMOUS, Command, filter_twist
from farl_control.sim.scene import ROBOT_PREFIX, SimScene
from farl_common.task_config import ARM, TaskConfig, load_task_config
from farl_common.task_spec import TCP, TaskSpec

PHYSICS_DT = 0.001  # franky-sim's fixed MuJoCo timestep (1 kHz, like libfranka)
# What a rewind restores: the physics, the clock (the disturber's schedule runs on it), the
# moved obstacle and the slope's force on the ball.
_STATE = (mujoco.mjtState.mjSTATE_PHYSICS | mujoco.mjtState.mjSTATE_TIME | mujoco.mjtState.mjSTATE_MOCAP_POS
          | mujoco.mjtState.mjSTATE_MOCAP_QUAT | mujoco.mjtState.mjSTATE_XFRC_APPLIED)
_DAMP = 1e-4        # franky-sim's damped pseudo-inverse regulariser


@dataclass
class TwinState:
    """Everything needed to put the twin back where it was (for rewinding before a failure)."""

    mj_state: np.ndarray
    qfrc_applied: np.ndarray
    steps: int
    tcp: np.ndarray
    previous_twist: np.ndarray  # still driving the arm for command_delay_s into the next tick
    disturber: Any = None       # the obstacle mover's schedule and progress (Disturbed Push)
    observed_positions: dict | None = None  # what the last observation was built from ...
    previous_positions: dict | None = None  # ... and the tick before it (velocity fields)


class _FastCartesianVelocity:
    """franky-sim's `cartesian_velocity_control` torque law without its state bookkeeping.

    Mirrors franky_sim.base_simulator.BaseRobot (1.0.4):
      J      = computeFrameJacobian(q, 'tcp', LOCAL_WORLD_ALIGNED)
      dq_d   = J^T (J J^T + 1e-4 I)^-1 v
      tau    = clip(kv (dq_d - dq) + nle(q, dq) - g(q), tau_lim)     (joint_velocity_control)
      tau_mj = clip(tau + g(q), tau_lim)                              (torque_control + _torque_control)
    and the hand's finger PD (`FrankaMujocoRobot._pre_step`, run by `sim.step()`)
    elementwise as franky-sim does it, without its Python loops.
    """

    def __init__(self, robot) -> None:
        import pinocchio as pin

        self.pin = pin
        self.robot = robot
        self.model = robot._BaseRobot__model  # the robot's own pinocchio model (EE inertia, tcp frame)
        self.pdata = self.model.createData()
        self.tcp_id = self.model.getFrameId("tcp")
        self.kv = np.asarray(robot.kv, dtype=np.float64)
        self.lo = np.asarray(robot.torque_limit_low, dtype=np.float64)
        self.hi = np.asarray(robot.torque_limit_high, dtype=np.float64)
        self.qa = np.asarray(robot._qpos_addrs)
        self.da = np.asarray(robot._dof_addrs)
        self.fqa = np.asarray(robot._finger_qpos_addrs)
        self.fda = np.asarray(robot._finger_dof_addrs)
        self.eye6 = np.eye(6)
        self.frame = pin.ReferenceFrame.LOCAL_WORLD_ALIGNED

    def torques(self, data: mujoco.MjData, twist: np.ndarray) -> np.ndarray:
        pin = self.pin
        q = data.qpos[self.qa].copy()
        dq = data.qvel[self.da].copy()
        J = pin.computeFrameJacobian(self.model, self.pdata, q, self.tcp_id, self.frame)
        target_dq = J.T @ np.linalg.inv(J @ J.T + _DAMP * self.eye6) @ twist
        pin.computeAllTerms(self.model, self.pdata, q, dq)
        coriolis = self.pdata.nle - self.pdata.g
        tau = np.clip(self.kv * (target_dq - dq) + coriolis, self.lo, self.hi)
        pin.computeGeneralizedGravity(self.model, self.pdata, q)
        return np.clip(tau + self.pdata.g, self.lo, self.hi)

    def apply(self, data: mujoco.MjData, twist: np.ndarray) -> None:
        data.qfrc_applied[self.da] = self.torques(data, twist)
        self.robot._applied_torques = data.qfrc_applied[self.da].copy()

    def hand(self, data: mujoco.MjData) -> None:
        """franky-sim's FrankaMujocoRobot._pre_step (finger PD with velocity and force limits), vectorised."""
        r = self.robot
        q = data.qpos[self.fqa]
        dq = data.qvel[self.fda]
        tau = r._kp_hand * (r._hand_goal_width / 2 - q) - r._kv_hand * dq
        braking = (np.abs(dq) > r._hand_goal_velocity) & (np.sign(dq) == np.sign(tau))
        tau = np.where(braking, -r._kv_hand * dq, tau)
        tau = np.clip(tau, max(-FRANKA_HAND_FORCE_LIMIT, -r._hand_goal_force),
                      min(FRANKA_HAND_FORCE_LIMIT, r._hand_goal_force))
        data.qfrc_applied[self.fda] = tau

    def tcp_position(self, data: mujoco.MjData) -> np.ndarray:
        q = data.qpos[self.qa].copy()
        self.pin.forwardKinematics(self.model, self.pdata, q)
        self.pin.updateFramePlacement(self.model, self.pdata, self.tcp_id)
        return np.array(self.pdata.oMf[self.tcp_id].translation)


class _VelocityServos:
    """The same Cartesian velocity law run by MuJoCo itself, so a tick is a few C calls.

    franky-sim's law is a joint-space velocity servo plus gravity/Coriolis
    feed-forward: tau = clip(kv (J^+ v - dq) + nle(q, dq)). Both parts can live
    in the MuJoCo model of the twin (never in the served sim's, which keeps
    franky-sim's own law):

      * the arm's position actuators (zeroed by franky-sim) become velocity
        servos with franky-sim's gains: force = kv * (ctrl - dq), ctrl = J^+ v;
      * gravity is compensated by MuJoCo (`body_gravcomp` on the robot's
        bodies, routed through the actuators so the FR3 torque limits clip it
        as franky-sim clips its sum); Coriolis feed-forward is left out
        (below 1e-3 N·m at the twin's 0.1 m/s);
      * the finger PD becomes the hand tendon actuator as a position servo with
        franky-sim's per-finger gains (kp 1000, kv 50, force limit 70 N).

    J^+ v (the damped pseudo-inverse of the TCP Jacobian, franky-sim's formula)
    is recomputed every `jacobian_period` physics steps instead of every step;
    between updates MuJoCo runs `mj_step(nstep=...)` in C. `benchmarks/twin_speed.py`
    measures what this costs in tracking against the served franky-sim arm.
    """

    @staticmethod
    def prepare_scene(worldbody) -> None:
        """Before compiling: gravity compensation on the robot's bodies, through the arm's actuators.

        (MuJoCo sizes its gravity-compensation pass at compile time, so it cannot be switched on later.)
        """
        for body in worldbody.iter("body"):
            if body.get("name", "").startswith(ROBOT_PREFIX):
                body.set("gravcomp", "1")
        for joint in worldbody.iter("joint"):
            if joint.get("name", "").startswith(f"{ROBOT_PREFIX}fr3_joint"):
                joint.set("actuatorgravcomp", "true")

    def __init__(self, robot, model: mujoco.MjModel, jacobian_period: int) -> None:
        import pinocchio as pin

        self.pin = pin
        self.robot = robot
        self.pmodel = robot._BaseRobot__model  # franky-sim's own pinocchio model (tcp frame, EE inertia)
        self.pdata = self.pmodel.createData()
        self.tcp_id = self.pmodel.getFrameId("tcp")
        self.frame = pin.ReferenceFrame.LOCAL_WORLD_ALIGNED
        self.qa = np.asarray(robot._qpos_addrs)
        self.period = max(1, int(jacobian_period))
        self.eye6 = np.eye(6)
        kv = np.asarray(robot.kv, dtype=np.float64)
        prefix = ROBOT_PREFIX
        self.arm_actuators = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, f"{prefix}fr3_joint{j}")
                                       for j in range(1, 8)])
        if np.any(self.arm_actuators < 0):
            raise RuntimeError("franky-sim's FR3 model changed: arm actuators robot0_fr3_joint1..7 not found")
        for act, gain in zip(self.arm_actuators, kv):
            model.actuator_gaintype[act] = mujoco.mjtGain.mjGAIN_FIXED
            model.actuator_biastype[act] = mujoco.mjtBias.mjBIAS_AFFINE
            model.actuator_gainprm[act, :] = 0.0
            model.actuator_biasprm[act, :] = 0.0
            model.actuator_gainprm[act, 0] = gain
            model.actuator_biasprm[act, 2] = -gain
            model.actuator_ctrllimited[act] = 0
        hand = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, f"{prefix}hand")
        if hand < 0:
            raise RuntimeError("franky-sim's FR3 model changed: hand actuator robot0_hand not found")
        # The "split" tendon is (q1 + q2) / 2 and hands half its force to each finger:
        # per-finger kp (q_goal - q) - kv dq  <=>  tendon 2 kp (goal - L) - 2 kv dL.
        kp_f, kv_f = float(robot._kp_hand[0]), float(robot._kv_hand[0])
        limit = min(FRANKA_HAND_FORCE_LIMIT, robot._hand_goal_force)
        model.actuator_gaintype[hand] = mujoco.mjtGain.mjGAIN_FIXED
        model.actuator_biastype[hand] = mujoco.mjtBias.mjBIAS_AFFINE
        model.actuator_gainprm[hand, :] = 0.0
        model.actuator_biasprm[hand, :] = 0.0
        model.actuator_gainprm[hand, 0] = 2 * kp_f
        model.actuator_biasprm[hand, 1] = -2 * kp_f
        model.actuator_biasprm[hand, 2] = -2 * kv_f
        model.actuator_ctrllimited[hand] = 0
        model.actuator_forcelimited[hand] = 1
        model.actuator_forcerange[hand] = (-2 * limit, 2 * limit)
        self.hand_actuator = hand
        if model.ngravcomp == 0:
            raise RuntimeError("the twin's MuJoCo model has no gravity compensation: call prepare_scene() "
                               "before compiling it")
        self.hand_goal = robot._hand_goal_width / 2.0

    def joint_velocity(self, data: mujoco.MjData, twist: np.ndarray) -> np.ndarray:
        """franky-sim's J^T (J J^T + 1e-4 I)^-1 v at the current configuration."""
        q = data.qpos[self.qa]
        J = self.pin.computeFrameJacobian(self.pmodel, self.pdata, q, self.tcp_id, self.frame)
        # A 6x6 SPD solve in MuJoCo's C routines: numpy's LAPACK call costs ~10x more here
        # (threading overhead for a tiny matrix).
        A = np.ascontiguousarray(J @ J.T + _DAMP * self.eye6)
        mujoco.mju_cholFactor(A, 0.0)
        x = np.empty(6)
        mujoco.mju_cholSolve(x, A, np.ascontiguousarray(twist, dtype=np.float64))
        return J.T @ x

    def run(self, model: mujoco.MjModel, data: mujoco.MjData, twist: np.ndarray, steps: int,
            after_chunk) -> None:
        """`steps` physics steps tracking `twist`; `after_chunk()` runs after every Jacobian period."""
        data.ctrl[self.hand_actuator] = self.hand_goal
        done = 0
        while done < steps:
            n = min(self.period, steps - done)
            data.ctrl[self.arm_actuators] = self.joint_velocity(data, twist)
            mujoco.mj_step(model, data, nstep=n)
            done += n
            after_chunk()

    def tcp_position(self, data: mujoco.MjData) -> np.ndarray:
        q = data.qpos[self.qa]
        self.pin.forwardKinematics(self.pmodel, self.pdata, q)
        self.pin.updateFramePlacement(self.pmodel, self.pdata, self.tcp_id)
        return np.array(self.pdata.oMf[self.tcp_id].translation)


class FrankaTwinEnv(gym.Env):
    """Gymnasium env of a real-robot task on franky-sim's MuJoCo FR3 (see module doc).

    Args:
        task: task name (config/tasks/<task>.yaml), a path, or a loaded `TaskConfig`.
        controller: "servo" (the law run by MuJoCo's actuators, Jacobian every
            `jacobian_period_s`; default, fastest), "exact" (franky-sim's torques
            every physics step, bit-identical to "franky") or "franky" (franky-sim's calls).
        max_steps: override `episode.max_steps` (None: the task's).
        physics_dt: MuJoCo timestep (franky-sim's is 1 ms; "servo" only may take more).
        jacobian_period_s: how often "servo" recomputes J^+ v.
        command_delay_s: the previous tick's twist keeps driving the arm for this long
            into each tick before the new one takes over: the served stack's latency from
            the poses a decision is made on to the arm following it (see the twin config).
    """

    metadata = {"render_modes": []}
    CONTROLLERS = ("servo", "exact", "franky")

    def __init__(self, task: str | TaskConfig = "fragile_push_wall", controller: str = "servo",
                 max_steps: int | None = None, physics_dt: float = PHYSICS_DT,
                 jacobian_period_s: float = 0.01, command_delay_s: float = 0.0) -> None:
        super().__init__()
        if controller not in self.CONTROLLERS:
            raise ValueError(f"controller must be one of {', '.join(self.CONTROLLERS)}, got {controller!r}")
        if controller != "servo" and physics_dt != PHYSICS_DT:
            raise ValueError(f"controller {controller!r} runs franky-sim's law at its 1 ms step; "
                             f"only 'servo' takes physics_dt={physics_dt}")
        self.config = task if isinstance(task, TaskConfig) else load_task_config(task)
        self.spec_ = TaskSpec.from_config(self.config)
        self.limits = self.config.control
        self.control_dt = 1.0 / self.config.control.rate_hz
        self.physics_dt = float(physics_dt)
        self.substeps = max(1, int(round(self.control_dt / self.physics_dt)))
        self.step_dt = self.substeps * self.physics_dt  # simulated time of one step (velocity fields)
        if not 0.0 <= command_delay_s < self.control_dt:
            raise ValueError(f"command_delay_s must be in [0, {self.control_dt:g}) s (one control period), "
                             f"got {command_delay_s}")
        self.delay_steps = int(round(command_delay_s / self.physics_dt))
        self._previous_twist = np.zeros(6)
        # The positions the last observation was built from, and those of the tick before: a velocity
        # field differences the two (kept, not recomputed, so a rewound state steps on identically).
        self._observed_positions: dict[str, np.ndarray] = {}
        self._previous_positions: dict[str, np.ndarray] | None = None
        self.max_steps = int(max_steps or self.spec_.max_steps)
        self.controller = controller

        self.scene = SimScene(self.config)
        if controller == "servo":
            _VelocityServos.prepare_scene(self.scene.sim.worldbody)
        self.scene.start()
        self.robot = self.scene.robot
        self.model, self.data = self.scene.model, self.scene.data
        self.model.opt.timestep = self.physics_dt
        self._fast = _FastCartesianVelocity(self.robot)
        self._servo = None
        if controller == "servo":
            self._servo = _VelocityServos(self.robot, self.model,
                                          max(1, int(round(jacobian_period_s / self.physics_dt))))

        m = self.model
        self._object_bodies = {o.name: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, o.name)
                               for o in self.config.scene.objects}
        # Geom → its group in the contact pairs (1.. = a named body or `arm`, 0 = none): a contact is a
        # failure iff the pair table holds for its two geoms' groups.
        predicate = self.scene.predicate
        groups = predicate.groups
        self._geom_group = np.zeros(m.ngeom, dtype=np.int16)
        for g, name in enumerate(groups, start=1):
            if name == ARM:
                bodies = [b for b in range(m.nbody) if self.scene.body_name(b).startswith(ROBOT_PREFIX)]
            else:
                bodies = [self._object_bodies[name]]
            for body in bodies:
                self._geom_group[self._geoms_of(body)] = g
        self._pair_table = np.zeros((len(groups) + 1, len(groups) + 1), dtype=bool)
        for a, b in self.config.failure.contact_pairs:
            i, j = groups.index(a) + 1, groups.index(b) + 1
            self._pair_table[i, j] = self._pair_table[j, i] = True
        self._regions = [(self._object_bodies[name], region) for name, region in self.config.failure.regions]
        # Objects the reward/success need even if not in the observation.
        self._obj_sources = [s for s in self.spec_.required_sources if s != TCP]

        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(self.spec_.obs_dim,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(self.spec_.action_dim,), dtype=np.float32)
        self.steps = 0
        self._tcp = self._fast.tcp_position(self.data)
        self.physics_steps = 0  # total, for speed measurements

    # ---- geometry ---------------------------------------------------------
    def _geoms_of(self, body_id: int) -> np.ndarray:
        return np.flatnonzero(self.model.geom_bodyid == body_id)

    def tcp_position(self) -> np.ndarray:
        """TCP position (base frame): franky-sim's pinocchio 'tcp' frame, i.e. what O_T_EE reports."""
        return self._tcp.copy()

    def positions(self) -> dict[str, np.ndarray]:
        """Source name → xyz: 'tcp' and every object the observation/reward uses."""
        out = {TCP: self._tcp.copy()}
        for name in self._obj_sources:
            out[name] = self.data.xpos[self._object_bodies[name]].copy()
        return out

    def object_position(self, name: str) -> np.ndarray:
        return self.data.xpos[self._object_bodies[name]].copy()

    def failure_contact(self) -> bool:
        """The failure predicate (a listed body pair touches, an object is outside its region) now."""
        for body, region in self._regions:
            x, y = self.data.xpos[body, :2]
            if not region.contains(float(x), float(y)):
                return True
        n = self.data.ncon
        if n == 0:
            return False
        groups = self._geom_group[self.data.contact.geom[:n]]
        return bool(np.any(self._pair_table[groups[:, 0], groups[:, 1]]))

    def observation(self) -> np.ndarray:
        return self.spec_.build_observation(self.positions(), self._previous_positions, self.step_dt)

    # ---- gymnasium API ----------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(0, 2**31 - 1))
        self.data.time = 0.0  # the disturber's schedule counts from here
        self.scene.reset_now(seed)  # objects to start (+ jitter), arm to home, terrain, mj_forward
        d = self.data
        half = self.robot._initial_hand_width / 2.0  # fingers back to their start width, at rest
        for qa, da in zip(self.robot._finger_qpos_addrs, self.robot._finger_dof_addrs):
            d.qpos[qa], d.qvel[da] = half, 0.0
        d.qfrc_applied[:] = 0.0
        d.ctrl[:] = 0.0
        d.qacc_warmstart[:] = 0.0  # same seed, same trajectory
        d.time = 0.0
        mujoco.mj_forward(self.model, d)
        self.robot._applied_torques = np.zeros(7)
        self._previous_twist = np.zeros(6)
        self._previous_positions = None  # at rest after the reset: velocities read zero
        self.steps = 0
        self._tcp = self._fast.tcp_position(self.data)
        pos = self.positions()
        self._observed_positions = pos
        info = {"tcp": pos[TCP], "cost": 0.0, "failure": False,
                "success": self.spec_.success(pos)}
        return self.spec_.build_observation(pos), info

    def filtered_velocity(self, action: np.ndarray) -> tuple[np.ndarray, bool]:
        """The twist the control node would send for `action` now: (linear xyz, clipped?)."""
        v = self.spec_.action_to_velocity(np.asarray(action, dtype=np.float64).reshape(-1))
        cmd = Command(tuple(float(x) for x in v), (0.0, 0.0, 0.0), "base", AUTONOMOUS, 0.0)
        decision = filter_twist(cmd, tuple(float(x) for x in self._tcp), self.limits)
        return np.asarray(decision.linear, dtype=np.float64), decision.clipped

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (self.spec_.action_dim,) or not np.all(np.isfinite(action)):
            raise ValueError(f"action must be {self.spec_.action_dim} finite values, got {action}")
        linear, clipped = self.filtered_velocity(action)
        before = self._observed_positions
        twist = np.concatenate([linear, np.zeros(3)])
        phases = [(self._previous_twist, self.delay_steps), (twist, self.substeps - self.delay_steps)]
        self._previous_twist = twist
        contact = False
        for phase_twist, steps in phases:
            if steps > 0:
                contact = self._advance(phase_twist, steps) or contact
        self.physics_steps += self.substeps
        self.steps += 1
        self._tcp = self._fast.tcp_position(self.data)
        pos = self.positions()
        failure = contact
        success = self.spec_.success(pos)
        reward = self.spec_.reward(pos, success, failure)
        # The robot side's episode rules (farl_control.episodes.tracker): a success ends the
        # episode, a failure ends it when the task terminates on failure; else the time limit.
        terminated = bool(success or (failure and self.spec_.terminate_on_failure))
        truncated = (not terminated) and self.steps >= self.max_steps
        info = {"cost": float(failure), "failure": failure, "success": success, "tcp": pos[TCP],
                "velocity": linear, "clipped": clipped}
        self._previous_positions, self._observed_positions = before, pos
        return self.spec_.build_observation(pos, before, self.step_dt), float(reward), terminated, truncated, info

    def _advance(self, twist: np.ndarray, steps: int) -> bool:
        """`steps` physics steps tracking `twist`; True when the failure contact held at any of them."""
        if self._servo is not None:
            hits = []

            def after_chunk() -> None:
                hits.append(self.failure_contact())
                self.scene.world_step()

            self._servo.run(self.model, self.data, twist, steps, after_chunk)
            return any(hits)
        contact = False
        for _ in range(steps):
            if self.controller == "exact":
                self._fast.apply(self.data, twist)
                self._fast.hand(self.data)  # the finger PD that sim.step() runs before mj_step
                mujoco.mj_step(self.model, self.data)
            else:
                self.robot.cartesian_velocity_control(twist, None)
                self.scene.sim.step()
            contact = contact or self.failure_contact()
            self.scene.world_step()
        return contact

    # ---- save / restore (rewinding before a failure) ----------------------
    def get_state(self) -> TwinState:
        size = mujoco.mj_stateSize(self.model, _STATE)
        buf = np.empty(size)
        mujoco.mj_getState(self.model, self.data, buf, _STATE)
        return TwinState(buf, self.data.qfrc_applied.copy(), self.steps, self._tcp.copy(),
                         self._previous_twist.copy(), copy.deepcopy(self.scene.disturber),
                         copy.deepcopy(self._observed_positions), copy.deepcopy(self._previous_positions))

    def set_state(self, state: TwinState) -> None:
        mujoco.mj_setState(self.model, self.data, state.mj_state, _STATE)
        self.scene.disturber = copy.deepcopy(state.disturber)
        self.data.qfrc_applied[:] = state.qfrc_applied
        mujoco.mj_forward(self.model, self.data)
        self.steps = state.steps
        self._tcp = state.tcp.copy()
        self._previous_twist = state.previous_twist.copy()
        self._observed_positions = copy.deepcopy(state.observed_positions) or self.positions()
        self._previous_positions = copy.deepcopy(state.previous_positions)

    def set_object_position(self, name: str, xy: tuple[float, float], z: float | None = None) -> None:
        """Place a free object (at rest, upright) — for tests and near-failure sampling."""
        qa, da = self.scene._free_addrs[name]
        self.data.qpos[qa:qa + 2] = xy
        if z is not None:
            self.data.qpos[qa + 2] = z
        self.data.qpos[qa + 3:qa + 7] = (1.0, 0.0, 0.0, 0.0)
        self.data.qvel[da:da + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)
        self._observed_positions[name] = self.object_position(name)
        if self._previous_positions is not None:  # placed at rest: no jump in its velocity
            self._previous_positions[name] = self.object_position(name)

    def close(self) -> None:
        pass


def measure_steps_per_second(env: FrankaTwinEnv, steps: int, seed: int = 0) -> dict[str, Any]:
    """Env steps/s with uniformly random actions (resets included): per wall-clock second and
    per CPU second of this process (the latter does not drop when other jobs share the CPU)."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    t0, c0 = time.perf_counter(), time.process_time()
    resets = 0
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(rng.uniform(-1, 1, env.spec_.action_dim))
        if term or trunc:
            env.reset(seed=int(rng.integers(1 << 30)))
            resets += 1
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"steps": steps, "seconds": dt, "steps_per_s": steps / dt, "cpu_seconds": cpu,
            "steps_per_cpu_s": steps / cpu if cpu > 0 else float("nan"),
            "physics_steps_per_s": steps * env.substeps / dt, "resets": resets,
            "real_time_factor": steps * env.control_dt / dt}

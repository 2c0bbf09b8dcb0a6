"""The simulated FR3 and the task's objects in franky-sim's MuJoCo scene (no ROS).

franky-sim serves the libfranka protocol from a MuJoCo FR3, so the control node
runs its real franky code path against it. This module adds the task's objects
(`TaskConfig.scene`) to that MuJoCo scene and answers the questions the rest of
the stack asks of ground truth: where is each object, did the failure predicate
fire (`failure.predicates`: contact between listed bodies, an object outside its
region), is the task solved (`success`), and how fast does the simulation run
compared with the wall clock. It also plays the parts of the world the real lab
has and a bare scene lacks: the person who moves Disturbed Push's obstacle
(`scene.disturber`) and Bounded Soccer's uneven turf (`scene.terrain`).

Threading: MuJoCo's `data` belongs to the thread that steps it. `SimScene.serve`
runs that stepping loop in one thread; other threads never touch `data`, they
read the last `SceneSnapshot` and ask for a reset with `request_reset`, which
the loop performs between two steps.

franky-sim is always started with its MuJoCo simulator explicitly: its automatic
choice tries Genesis first, which is not installed here.
"""
from __future__ import annotations

import random
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import mujoco
import numpy as np

from farl_common.failure_predicate import FailurePredicate
from farl_common.task_config import SceneObject, TaskConfig
from farl_common.task_spec import TaskSpec

from .disturber import Disturber
from .terrain import TerrainDraw, draw_terrain

# Pacing of the served simulation: sleep only when sim time leads the wall clock by
# more than this; stop catching up when it lags by more than MAX_LAG_S.
SLEEP_GRANULARITY_S = 0.002
MAX_LAG_S = 0.05
# A pause of the served loop this long is reported (sim_robot_node logs it): no robot state reaches
# libfranka meanwhile (it expects one packet per ms), and a motion or the state stream may fail over it.
STALL_REPORT_S = 0.05
ROBOT_PREFIX = "robot0_"  # franky-sim names the first robot's bodies robot0_*
_MJ_SHAPES = {"box": "box", "cylinder": "cylinder", "sphere": "sphere"}


def _fmt(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def add_scene_objects(worldbody: ET.Element, objects: tuple[SceneObject, ...]) -> None:
    """Append one MuJoCo body per task object (a free joint for free ones)."""
    for obj in objects:
        body = ET.SubElement(worldbody, "body", name=obj.name, pos=_fmt(obj.pos))
        if obj.kinematic:
            body.set("mocap", "true")
        if obj.free:
            ET.SubElement(body, "freejoint", name=f"{obj.name}_free")
        geom = ET.SubElement(body, "geom", name=f"{obj.name}_geom", type=_MJ_SHAPES[obj.shape],
                             size=_fmt(obj.size), rgba=_fmt(obj.rgba))
        if obj.free and obj.mass is not None:
            geom.set("mass", f"{obj.mass:.6g}")
        if obj.friction is not None:
            geom.set("friction", _fmt(obj.friction))
        if obj.condim is not None:
            geom.set("condim", str(obj.condim))
        if obj.visual_only:
            geom.set("contype", "0")
            geom.set("conaffinity", "0")


@dataclass(frozen=True)
class ObjectPose:
    pos: tuple[float, float, float]
    quat_wxyz: tuple[float, float, float, float]  # MuJoCo's order


@dataclass(frozen=True)
class SceneSnapshot:
    """Ground truth at one instant, safe to hand to other threads."""

    sim_time: float
    wall_time: float
    poses: dict[str, ObjectPose]
    contacts: tuple[tuple[str, str], ...]  # body pairs in contact, at least one a task object
    failure: bool
    success: bool
    real_time_factor: float | None
    resets: int

    def as_dict(self) -> dict:
        return {
            "sim_time": round(self.sim_time, 4),
            "failure": self.failure,
            "success": self.success,
            "contacts": [list(c) for c in self.contacts],
            "real_time_factor": None if self.real_time_factor is None else round(self.real_time_factor, 3),
            "resets": self.resets,
        }


class RealTimeMeter:
    """Sim time advanced / wall time elapsed over a sliding window (franky-sim slows under CPU load)."""

    def __init__(self, window_s: float = 2.0):
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, wall: float, sim: float) -> None:
        self._samples.append((wall, sim))
        while len(self._samples) > 2 and wall - self._samples[0][0] > self.window_s:
            self._samples.popleft()

    def reset(self) -> None:
        self._samples.clear()

    @property
    def factor(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (w0, s0), (w1, s1) = self._samples[0], self._samples[-1]
        return (s1 - s0) / (w1 - w0) if w1 > w0 else None


class LoopStallWatch:
    """Pauses between two steps of the served loop long enough to starve libfranka of robot state.

    The loop thread records; another thread (the node's timer) takes what is new. When franka_node
    reports a lost connection or an arm slow to stop, these lines say whether the simulator had
    stopped serving at that moment (CPU starvation) or not (look at the client side).
    """

    def __init__(self, threshold_s: float = STALL_REPORT_S):
        self.threshold_s = threshold_s
        self.count = 0
        self.longest_s = 0.0
        self._last: float | None = None
        self._new: deque[float] = deque(maxlen=1000)  # appended by the loop, drained by take_new

    def step(self, now: float) -> None:
        """One step of the loop, at monotonic time `now`."""
        if self._last is not None:
            gap = now - self._last
            if gap >= self.threshold_s:
                self.count += 1
                self.longest_s = max(self.longest_s, gap)
                self._new.append(gap)
        self._last = now

    def restart(self) -> None:
        """After a deliberate pause (a scene reset runs inside the loop): the next gap is not a stall."""
        self._last = None

    def take_new(self) -> list[float]:
        """The stalls since the last call, in seconds (safe from any thread)."""
        taken = []
        while self._new:
            taken.append(self._new.popleft())
        return taken


@dataclass
class _ResetRequest:
    seed: int | None
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


class SimScene:
    """franky-sim's MuJoCo FR3 plus the task objects: build, read, reset, serve."""

    def __init__(self, config: TaskConfig):
        from franky_sim.mujoco_simulator import MujocoSimulator  # never franky-sim's auto choice

        self.config = config
        self.sim = MujocoSimulator()
        add_scene_objects(self.sim.worldbody, config.scene.objects)
        self.sim.init()
        self.robot = self.sim.add_robot(initial_q=config.robot.home_joints)
        self._started = False
        self._resets = 0
        self._pending: deque[_ResetRequest] = deque()
        self._lock = threading.Lock()
        self._snapshot: SceneSnapshot | None = None
        self.meter = RealTimeMeter()
        self.stalls = LoopStallWatch()
        self.predicate = FailurePredicate(config.failure, ROBOT_PREFIX)
        self.spec = TaskSpec.from_config(config)
        self.disturber = Disturber(config.scene.disturber) if config.scene.disturber is not None else None
        self.terrain: TerrainDraw | None = None
        self._reset_time = 0.0

    # ---- lifecycle -------------------------------------------------------
    def start(self) -> None:
        """Compile the MuJoCo model without a server (unit tests, in-process use)."""
        self.sim.start()
        self._after_start()

    def _after_start(self) -> None:
        m = self.model
        self._body_ids = {o.name: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, o.name) for o in self.config.scene.objects}
        self._object_body_ids = set(self._body_ids.values())
        self._free_addrs: dict[str, tuple[int, int]] = {}
        for obj in self.config.scene.objects:
            if obj.free:
                jid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"{obj.name}_free")
                self._free_addrs[obj.name] = (int(m.jnt_qposadr[jid]), int(m.jnt_dofadr[jid]))
        self._arm_addrs = list(self.robot._qpos_addrs), list(self.robot._dof_addrs)
        self._mocap_ids = {o.name: int(m.body_mocapid[self._body_ids[o.name]])
                           for o in self.config.scene.objects if o.kinematic}
        terrain = self.config.scene.terrain
        if terrain is not None:
            bid = self._body_ids[terrain.object]
            self._terrain_geom = int(np.flatnonzero(m.geom_bodyid == bid)[0])
            m.geom_priority[self._terrain_geom] = 1  # its friction, not the max with the table's, is the turf's
            self._terrain_friction = m.geom_friction[self._terrain_geom].copy()
            self._terrain_mass = float(m.body_mass[bid])
        self._started = True
        self._snapshot = self.snapshot()

    @property
    def model(self) -> mujoco.MjModel:
        return self.sim.model

    @property
    def data(self) -> mujoco.MjData:
        return self.sim.data

    # ---- ground truth (call from the stepping thread) --------------------
    def body_name(self, body_id: int) -> str:
        return mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_BODY, body_id) or f"body{body_id}"

    def object_pose(self, name: str) -> ObjectPose:
        bid = self._body_ids[name]
        return ObjectPose(tuple(float(v) for v in self.data.xpos[bid]), tuple(float(v) for v in self.data.xquat[bid]))

    def contacts(self) -> tuple[tuple[str, str], ...]:
        """Distinct body pairs in contact where at least one body is a task object."""
        m, d = self.model, self.data
        pairs: set[tuple[str, str]] = set()
        for i in range(d.ncon):
            c = d.contact[i]
            b1, b2 = int(m.geom_bodyid[c.geom1]), int(m.geom_bodyid[c.geom2])
            if b1 in self._object_body_ids or b2 in self._object_body_ids:
                pairs.add(tuple(sorted((self.body_name(b1), self.body_name(b2)))))  # type: ignore[arg-type]
        return tuple(sorted(pairs))

    def positions(self) -> dict[str, np.ndarray]:
        """Object name → centre (x, y, z)."""
        return {name: self.data.xpos[bid].copy() for name, bid in self._body_ids.items()}

    def failure(self, contacts: tuple[tuple[str, str], ...] | None = None) -> bool:
        """The task's failure predicate (`failure.predicates`) on the current contacts and poses."""
        contacts = self.contacts() if contacts is None else contacts
        return self.predicate.holds(contacts, self.positions())

    def success(self) -> bool:
        """The task's success test (`success`) on the current poses."""
        return self.spec.success(self.positions())

    # ---- the world around the task (disturber, terrain) -------------------
    def world_step(self) -> None:
        """What the lab does between physics steps: the disturber moves its obstacle, the turf's
        slope pulls the ball while it rolls. A no-op for a task without either."""
        if self.disturber is not None:
            name = self.disturber.config.object
            xy = self.disturber.position(float(self.data.time) - self._reset_time,
                                         lambda n: self.data.xpos[self._body_ids[n]])
            self.data.mocap_pos[self._mocap_ids[name], :2] = xy
        if self.terrain is not None:
            terrain = self.config.scene.terrain
            body = self._body_ids[terrain.object]  # type: ignore[union-attr]
            qa, da = self._free_addrs[terrain.object]  # type: ignore[union-attr]
            rolling = float(np.hypot(*self.data.qvel[da:da + 2])) > terrain.rolling_speed  # type: ignore[union-attr]
            self.data.xfrc_applied[body, :3] = self.terrain.force(self._terrain_mass) if rolling else 0.0

    def snapshot(self) -> SceneSnapshot:
        contacts = self.contacts()
        return SceneSnapshot(
            sim_time=float(self.data.time),
            wall_time=time.monotonic(),
            poses={o.name: self.object_pose(o.name) for o in self.config.scene.objects},
            contacts=contacts,
            failure=self.failure(contacts),
            success=self.success(),
            real_time_factor=self.meter.factor,
            resets=self._resets,
        )

    @property
    def latest(self) -> SceneSnapshot | None:
        """The last snapshot taken by the stepping thread (any thread may read it)."""
        with self._lock:
            return self._snapshot

    # ---- reset ------------------------------------------------------------
    def reset_now(self, seed: int | None = None, reset_arm: bool = True) -> None:
        """Free objects to their start pose (+ uniform x,y jitter), at rest; arm to home.

        Only from the stepping thread (or before serving): see `request_reset`.
        """
        rng = random.Random(seed)
        jx, jy = self.config.scene.reset_jitter
        d = self.data
        for obj in self.config.scene.objects:
            if not obj.free:
                continue
            qa, da = self._free_addrs[obj.name]
            d.qpos[qa:qa + 3] = (obj.pos[0] + rng.uniform(-jx, jx), obj.pos[1] + rng.uniform(-jy, jy), obj.pos[2])
            d.qpos[qa + 3:qa + 7] = (1.0, 0.0, 0.0, 0.0)
            d.qvel[da:da + 6] = 0.0
        for name, mid in self._mocap_ids.items():
            d.mocap_pos[mid] = self.config.scene.object(name).pos
        self._reset_time = float(d.time)
        if self.disturber is not None:
            self.disturber.reset(seed, self.config.scene.object(self.disturber.config.object).pos)
        terrain = self.config.scene.terrain
        if terrain is not None:
            self.terrain = draw_terrain(terrain, seed)
            self.model.geom_friction[self._terrain_geom] = self._terrain_friction * self.terrain.friction_scale
            d.xfrc_applied[self._body_ids[terrain.object], :3] = 0.0  # at rest: see world_step
        if reset_arm:
            qa, da = self._arm_addrs
            for addr, q in zip(qa, self.config.robot.home_joints):
                d.qpos[addr] = q
            for addr in da:
                d.qvel[addr] = 0.0
        mujoco.mj_forward(self.model, d)
        self._resets += 1
        self._snapshot_now()

    def request_reset(self, seed: int | None = None, timeout_s: float = 2.0) -> str | None:
        """Ask the stepping loop to reset between two steps; wait for it. Returns an error or None."""
        request = _ResetRequest(seed)
        self._pending.append(request)
        if not request.done.wait(timeout_s):
            return f"the simulation loop did not perform the reset within {timeout_s:g} s (is it running?)"
        return request.error

    def _serve_pending(self) -> None:
        while self._pending:
            request = self._pending.popleft()
            try:
                self.reset_now(request.seed)
            except Exception as error:  # reported to the caller, the loop keeps running
                request.error = f"scene reset failed: {error}"
            request.done.set()

    def _snapshot_now(self) -> None:
        snap = self.snapshot()
        with self._lock:
            self._snapshot = snap

    # ---- serving the libfranka protocol ----------------------------------
    def serve(self, hostname: str, stop: threading.Event, on_ready: Callable[[], None] | None = None,
              snapshot_period_s: float = 1.0 / 30.0) -> None:
        """Run franky-sim's server on `hostname`:1337/1338 in real time until `stop` is set.

        Blocks; run it in a thread. Between steps it performs requested resets
        and takes a snapshot every `snapshot_period_s` of wall time.

        Pacing: franky-sim's own `run_once(True)` sleeps after every 1 ms step,
        and a sub-millisecond sleep on a loaded machine oversleeps, so the sim
        fell to 0.5x real time with CPU to spare. Here the steps run unpaced and
        the loop sleeps only when simulated time is ahead of the wall clock, so
        it catches up after a delay; if it falls more than `MAX_LAG_S` behind (a
        CPU that really is too slow) it gives up catching up, and the shortfall
        shows in the real-time factor.
        """
        import franky_sim

        with franky_sim.SimulationServer(self.sim, hostname_candidates=[hostname]) as server:
            self._after_start()
            if on_ready is not None:
                on_ready()
            wall0, sim0 = time.monotonic(), float(self.data.time)
            next_snapshot = wall0
            try:
                while not stop.is_set():
                    if self._pending:
                        self._serve_pending()
                        wall0, sim0 = time.monotonic(), float(self.data.time)  # a reset may move sim time
                        self.stalls.restart()
                    self.world_step()
                    server.run_once(False)
                    now = time.monotonic()
                    self.stalls.step(now)
                    ahead = (float(self.data.time) - sim0) - (now - wall0)
                    if ahead > SLEEP_GRANULARITY_S:
                        time.sleep(ahead)
                    elif ahead < -MAX_LAG_S:
                        wall0, sim0 = now, float(self.data.time)
                    if now >= next_snapshot:
                        self.meter.add(now, float(self.data.time))
                        self._snapshot_now()
                        next_snapshot = now + snapshot_period_s
            finally:
                while self._pending:  # nobody waits forever on a reset that will never run
                    request = self._pending.popleft()
                    request.error = "the simulation is shutting down"
                    request.done.set()

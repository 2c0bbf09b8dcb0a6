"""The simulated scene camera: franky-sim's MuJoCo scene, rendered offscreen, with ArUco markers on the objects.

The renderer builds its own copy of the sim_robot node's scene (the same
`SimScene`: franky-sim's FR3 plus the task's objects) and adds what only a
camera needs: a thin visual-only plate with a marker texture on each marker
object (and on the gripper for calibration), and the camera itself at the
configured pose. It never steps physics: `set_state` copies the arm's joint
angles and the objects' ground-truth poses in and runs forward kinematics, then
`render` draws the frame. The marker textures are generated with cv2.aruco at
start-up into a temporary folder (MuJoCo reads textures from files); nothing
is downloaded.

Rendering is offscreen (MUJOCO_GL=egl, or osmesa), with shadows and
reflections off: on a CPU renderer they cost more than the whole frame.
"""
from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import mujoco
import numpy as np

from farl_common.task_config import TaskConfig
from farl_control.sim.scene import ROBOT_PREFIX, SimScene
from farl_perception.config import PerceptionConfig
from farl_perception.geometry import face_rotation, look_at_rotation, matrix_to_quat_xyzw, xyzw_to_wxyz
from farl_perception.intrinsics import Intrinsics
from farl_perception.markers import marker_image

CAMERA_NAME = "farl_scene_camera"
HAND_BODY = f"{ROBOT_PREFIX}hand"
CALIBRATION_PLATE = "farl_calibration_plate"
TEXTURE_PIXELS = 512
PLATE_HALF_THICKNESS = 0.0001  # a printed sticker: 0.2 mm, so the marker sits where a real one would
# The decal's white surround: the printed marker's black square is (1 - 2 x this) of the plate.
MARGIN_FRACTION = 0.1


def _fmt(values: Sequence[float]) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def plate_half_size(marker_size: float) -> float:
    """Half side of the white plate that carries a marker of `marker_size` (black square) and its margin."""
    return marker_size / (1 - 2 * MARGIN_FRACTION) / 2


def _add_texture(asset: ET.Element, folder: Path, name: str, dictionary_name: str, marker_id: int) -> str:
    """A material whose 2D texture is the marker (plus its white margin), from a PNG written to `folder`."""
    image = marker_image(dictionary_name, marker_id, TEXTURE_PIXELS, MARGIN_FRACTION)
    path = folder / f"{name}.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_GRAY2RGB))
    ET.SubElement(asset, "texture", name=f"{name}_tex", type="2d", file=str(path))
    ET.SubElement(asset, "material", name=f"{name}_mat", texture=f"{name}_tex", texuniform="false",
                  texrepeat="1 1", specular="0", shininess="0", reflectance="0")
    return f"{name}_mat"


def _find_body(root: ET.Element, name: str) -> ET.Element:
    for body in root.iter("body"):
        if body.get("name") == name:
            return body
    raise KeyError(f"no body {name!r} in the scene")


class SceneRenderer:
    """Renders the task scene from the configured camera; feed it the state with `set_state`."""

    def __init__(self, task: TaskConfig, perception: PerceptionConfig, calibration_marker: bool = False):
        self.task = task
        self.perception = perception
        cam = perception.camera
        self.intrinsics = Intrinsics.from_fovy(cam.width, cam.height, perception.sim_camera.fovy_deg)
        self._textures = tempfile.TemporaryDirectory(prefix="farl-markers-")
        folder = Path(self._textures.name)
        self.scene = SimScene(task)  # built, not compiled: the camera's additions go in first
        root = self.scene.sim.scene
        asset = root.find("asset")
        assert asset is not None  # franky-sim's scene always has one
        for geom in self.scene.sim.worldbody.iter("geom"):
            if geom.get("name") == "ground":  # below the table top (z = 0), or the two flicker (z-fighting)
                geom.set("pos", "0 0 -0.03")
        visual = root.find("visual")
        if visual is not None:
            ET.SubElement(visual, "global", offwidth=str(cam.width), offheight=str(cam.height))
            quality = visual.find("quality")
            if quality is not None:  # no multisampling: measured, the same pose error for ~30 % less CPU per frame
                quality.set("offsamples", "0")
        for obj in perception.markers:
            shape = task.scene.object(obj.name)
            material = _add_texture(asset, folder, f"marker_{obj.name}", perception.dictionary, obj.marker_id)
            h = plate_half_size(obj.marker_size)
            # The marker frame sits on the object's `face`, the object's centre at `offset` in it; the plate
            # lies in the marker's x-y plane, on the outside.
            R = face_rotation(obj.face)
            centre = R @ (-np.asarray(obj.offset, float) + (0, 0, PLATE_HALF_THICKNESS))
            del shape
            ET.SubElement(_find_body(root, obj.name), "geom", name=f"marker_{obj.name}", type="box",
                          size=_fmt((h, h, PLATE_HALF_THICKNESS)), pos=_fmt(centre),
                          quat=_fmt(xyzw_to_wxyz(matrix_to_quat_xyzw(R))), material=material,
                          contype="0", conaffinity="0", density="0", group="1")
        if calibration_marker:
            self._add_calibration_plate(root, asset, folder)
        T = perception.sim_camera.camera_to_base()
        # MuJoCo's camera looks along its -z with y up; OpenCV's along +z with y down.
        R_mj = T[:3, :3] @ np.diag([1.0, -1.0, -1.0])
        ET.SubElement(self.scene.sim.worldbody, "camera", name=CAMERA_NAME, pos=_fmt(T[:3, 3]),
                      quat=_fmt(xyzw_to_wxyz(matrix_to_quat_xyzw(R_mj))), fovy=f"{perception.sim_camera.fovy_deg:.6g}")
        self.scene.start()
        self.model, self.data = self.scene.model, self.scene.data
        self.camera_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, CAMERA_NAME)
        self.renderer = mujoco.Renderer(self.model, cam.height, cam.width)
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._arm_qpos = list(self.scene.robot._qpos_addrs)
        self._free_qpos = dict(self.scene._free_addrs)  # object name -> (qpos address, dof address)
        self.hand_body = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, HAND_BODY)
        self._marker_geoms = {o.name: mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, f"marker_{o.name}")
                              for o in perception.markers}
        self._marker_pos = {name: self.model.geom_pos[g].copy() for name, g in self._marker_geoms.items()}

    def hide_marker(self, name: str, hidden: bool) -> None:
        """Take an object's marker off (moved inside the object) or put it back: a lost marker, on demand."""
        geom = self._marker_geoms[name]
        self.model.geom_pos[geom] = (0.0, 0.0, 0.0) if hidden else self._marker_pos[name]

    def _add_calibration_plate(self, root: ET.Element, asset: ET.Element, folder: Path) -> None:
        """The calibration marker on a plate fixed to the hand, facing `sim_marker_normal_in_hand` (the camera)."""
        c = self.perception.calibration
        material = _add_texture(asset, folder, "marker_calibration", self.perception.dictionary, c.marker_id)
        h = plate_half_size(c.marker_size)
        z = np.asarray(c.sim_marker_normal_in_hand, float)
        R = look_at_rotation((0.0, 0.0, 0.0), z / np.linalg.norm(z), up=(0.0, 0.0, -1.0))
        ET.SubElement(_find_body(root, HAND_BODY), "geom", name=CALIBRATION_PLATE, type="box",
                      size=_fmt((h, h, PLATE_HALF_THICKNESS)), pos=_fmt(c.sim_marker_in_hand),
                      quat=_fmt(xyzw_to_wxyz(matrix_to_quat_xyzw(R))),
                      material=material, contype="0", conaffinity="0", density="0", group="1")

    def set_state(self, arm_q: Sequence[float] | None, poses: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> None:
        """Arm joint angles (7) and object poses {name: (position, quaternion xyzw)} from the simulator."""
        d = self.data
        if arm_q is not None:
            for addr, q in zip(self._arm_qpos, arm_q):
                d.qpos[addr] = q
        for name, (pos, quat_xyzw) in poses.items():
            addr = self._free_qpos.get(name)
            if addr is None:  # a static object: it is where the scene put it
                continue
            qa = addr[0]
            d.qpos[qa:qa + 3] = pos
            d.qpos[qa + 3:qa + 7] = xyzw_to_wxyz(quat_xyzw)
        mujoco.mj_kinematics(self.model, d)

    def render(self) -> np.ndarray:
        """The current state seen by the scene camera: height x width x 3, uint8 RGB."""
        self.renderer.update_scene(self.data, camera=self.camera_id)
        return self.renderer.render()

    def hand_pose(self) -> np.ndarray:
        """The hand body's pose in base (4x4) of the state last set (tests compare calibration against it)."""
        T = np.eye(4)
        T[:3, :3] = self.data.xmat[self.hand_body].reshape(3, 3)
        T[:3, 3] = self.data.xpos[self.hand_body]
        return T

    def close(self) -> None:
        self.renderer.close()
        self._textures.cleanup()

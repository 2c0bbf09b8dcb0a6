"""Scene edits on top of a Meta-World model: the boundary drawing and the vase.

The base XML is loaded into a `mujoco.MjSpec`, edited and compiled, so the
Meta-World assets are used unchanged (no copied or patched XML files) and the
added bodies come after every existing joint: the object's qpos indices, which
Meta-World hard-codes, stay where they were.
"""
from __future__ import annotations

import mujoco

from .spec import Rect, SceneSpec, VaseSpec, WallSpec

#: Name of the vase body (obstructed push); failure predicates refer to it.
VASE_BODY = "vase"

#: Boundary strips are drawn this thin (m): visible from the default cameras,
#: too thin to matter visually as an obstacle (they have no collision anyway).
_STRIP_HALF_WIDTH = 0.004
_STRIP_HALF_HEIGHT = 0.0005
_STRIP_RGBA = (0.95, 0.85, 0.1, 1.0)
#: Collision bits: the vase collides with the arm links (contype 4 in the
#: Sawyer model), the gripper and the objects (contype 1).
_VASE_CONTYPE = 1
_VASE_CONAFFINITY = 1 | 4


def _add_boundary_strips(spec: mujoco.MjSpec, rect: Rect) -> None:
    """Four visual-only strips on the table top (z = 0) along the rectangle's edges."""
    cx, cy = rect.center
    half_x = 0.5 * (rect.x_max - rect.x_min)
    half_y = 0.5 * (rect.y_max - rect.y_min)
    strips = {
        "boundary_south": ((cx, rect.y_min), (half_x, _STRIP_HALF_WIDTH)),
        "boundary_north": ((cx, rect.y_max), (half_x, _STRIP_HALF_WIDTH)),
        "boundary_west": ((rect.x_min, cy), (_STRIP_HALF_WIDTH, half_y)),
        "boundary_east": ((rect.x_max, cy), (_STRIP_HALF_WIDTH, half_y)),
    }
    for name, ((x, y), (hx, hy)) in strips.items():
        spec.worldbody.add_geom(
            name=name, type=mujoco.mjtGeom.mjGEOM_BOX, pos=[x, y, _STRIP_HALF_HEIGHT],
            size=[hx, hy, _STRIP_HALF_HEIGHT], rgba=list(_STRIP_RGBA), contype=0, conaffinity=0,
        )


def _add_vase(spec: mujoco.MjSpec, vase: VaseSpec) -> None:
    """A static cylinder standing on the table (no joint: welded to the world)."""
    half = 0.5 * vase.height
    body = spec.worldbody.add_body(name=VASE_BODY, pos=[vase.x, vase.y, half])
    body.add_geom(
        name="vase_geom", type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[vase.radius, half, 0.0],
        rgba=list(vase.rgba), contype=_VASE_CONTYPE, conaffinity=_VASE_CONAFFINITY,
    )


#: Name of push-wall-v3's wall body.
WALL_BODY = "wall"


def _resize_wall(spec: mujoco.MjSpec, wall: WallSpec) -> None:
    """Give every geom of the wall body the new x extent (body moved to its centre)."""
    body = spec.body(WALL_BODY)
    if body is None:
        raise ValueError(f"scene.wall: the base model has no body {WALL_BODY!r}")
    body.pos = [0.5 * (wall.x_min + wall.x_max), body.pos[1], body.pos[2]]
    for geom in body.geoms:
        geom.size = [0.5 * (wall.x_max - wall.x_min), geom.size[1], geom.size[2]]


def build_model(xml_path: str, scene: SceneSpec, boundary: Rect | None) -> mujoco.MjModel:
    """Compile the Meta-World XML at `xml_path` with this task's scene edits."""
    spec = mujoco.MjSpec.from_file(xml_path)
    if scene.draw_boundary and boundary is not None:
        _add_boundary_strips(spec, boundary)
    if scene.vase is not None:
        _add_vase(spec, scene.vase)
    if scene.wall is not None:
        _resize_wall(spec, scene.wall)
    return spec.compile()

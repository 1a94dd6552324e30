"""The grasp family's objects: the built-in ones and those a config adds (`objects:`).

A user object is a URDF or a mesh (.obj, .stl) plus a scale. It is checked when the config
loads, before any work starts: the file exists and loads, and the scale makes the object fit
between the open fingers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

MAX_OPENING = 0.09         # m, inner gap between the fingers when fully open
MAX_GRASP_WIDTH = 0.08     # m, narrowest horizontal extent that still fits with a margin
MIN_SIZE = 0.01            # m, largest extent below which an object is a speck
MAX_SIZE = 0.25            # m, largest extent the workspace holds
OBJECT_MASS = 0.1          # kg, every object, so the family differs by geometry only
MESHES = (".obj", ".stl")


@dataclass(frozen=True)
class GraspObject:
    """A URDF or mesh file, scaled so that it fits between the open fingers.

    A relative path is read from pybullet_data. A mesh becomes one rigid body whose
    collision shape is its convex hull (pybullet's rule for moving meshes).
    """

    path: str
    scale: float


OBJECTS: dict[str, GraspObject] = {
    "cube": GraspObject("cube_small.urdf", 1.0),
    "sphere": GraspObject("sphere_small.urdf", 0.9),
    "duck": GraspObject("duck_vhacd.urdf", 0.65),
    "teddy": GraspObject("teddy_vhacd.urdf", 0.6),
    "lego": GraspObject("lego/lego.urdf", 1.6),
    "mug": GraspObject("objects/mug.urdf", 0.5),
    "jenga": GraspObject("jenga/jenga.urdf", 0.45),
    "rand000": GraspObject("random_urdfs/000/000.urdf", 0.55),
    "rand003": GraspObject("random_urdfs/003/003.urdf", 0.6),
    "rand012": GraspObject("random_urdfs/012/012.urdf", 0.6),
    "rand009": GraspObject("random_urdfs/009/009.urdf", 0.6),
    "rand021": GraspObject("random_urdfs/021/021.urdf", 0.6),
    "rand024": GraspObject("random_urdfs/024/024.urdf", 0.55),
}
#: objects added by configs loaded in this process (name -> object)
USER_OBJECTS: dict[str, GraspObject] = {}


def load_object(pb, cid: int, obj: GraspObject, position) -> int:
    """Load `obj` into pybullet client `cid` at `position`; returns its body id."""
    if Path(obj.path).suffix.lower() in MESHES:
        scale = [obj.scale] * 3
        shape = pb.createCollisionShape(pb.GEOM_MESH, fileName=obj.path, meshScale=scale,
                                        physicsClientId=cid)
        visual = pb.createVisualShape(pb.GEOM_MESH, fileName=obj.path, meshScale=scale,
                                      physicsClientId=cid)
        body = pb.createMultiBody(OBJECT_MASS, shape, visual, position, physicsClientId=cid)
    else:
        body = pb.loadURDF(obj.path, position, globalScaling=obj.scale, physicsClientId=cid)
    pb.changeDynamics(body, -1, mass=OBJECT_MASS, lateralFriction=1.0, spinningFriction=0.002,
                      rollingFriction=0.0005, physicsClientId=cid)
    return body


def add_user_object(name: str, spec, key: str) -> None:
    """Check a config's object (`spec.path`, `spec.scale`) and make `name` a grasp task.

    Raises FileNotFoundError or ValueError naming `key`, the file and the fix.
    """
    if name in OBJECTS:
        raise ValueError(f"{key}: {name!r} is a built-in object ({OBJECTS[name].path}); "
                         "give yours another name")
    obj = GraspObject(str(_resolve(spec.path, f"{key}.path")), float(spec.scale))
    if not (math.isfinite(obj.scale) and obj.scale > 0):
        raise ValueError(f"{key}.scale must be a number > 0, got {spec.scale!r} "
                         f"(file {obj.path})")
    size = _extents(obj, key)
    narrowest, largest = min(size[0], size[1]), max(size)
    if narrowest > MAX_GRASP_WIDTH:
        raise ValueError(
            f"{key}.scale {obj.scale:g} makes {name} ({obj.path}) {narrowest:.3f} m across at "
            f"its narrowest; the open gripper takes {MAX_GRASP_WIDTH} m: use a scale of at "
            f"most {obj.scale * MAX_GRASP_WIDTH / narrowest:.3g}")
    if largest < MIN_SIZE or largest > MAX_SIZE:
        raise ValueError(
            f"{key}.scale {obj.scale:g} makes {name} ({obj.path}) {largest:.3f} m long; "
            f"objects must be {MIN_SIZE}-{MAX_SIZE} m: use a scale near "
            f"{obj.scale * 0.05 / largest:.3g} (5 cm)")
    USER_OBJECTS[name] = obj


def _resolve(path: str, key: str) -> Path:
    """The user's file as given (absolute or from the current folder), else in pybullet_data."""
    import pybullet_data

    given = Path(path).expanduser()
    for candidate in (given, Path(pybullet_data.getDataPath()) / given):
        if candidate.is_file():
            if candidate.suffix.lower() not in (".urdf", *MESHES):
                raise ValueError(f"{key}: {path} is not a URDF or mesh file; use .urdf, "
                                 f"{', '.join(MESHES)}")
            return candidate.resolve()
    raise FileNotFoundError(f"{key}: {path} does not exist (relative paths are read from "
                            f"the current folder, then from pybullet_data); fix the path")


def _extents(obj: GraspObject, key: str) -> list[float]:
    """Axis-aligned size (m) of `obj` as loaded, in a throwaway physics client."""
    import pybullet as pb

    cid = pb.connect(pb.DIRECT)
    try:
        body = load_object(pb, cid, obj, [0, 0, 0.5])
        lo, hi = pb.getAABB(body, physicsClientId=cid)
    except pb.error as err:
        raise ValueError(f"{key}.path: pybullet cannot load {obj.path} ({err}); check "
                         "the file") from None
    finally:
        pb.disconnect(cid)
    return [h - lo_ for lo_, h in zip(lo, hi)]

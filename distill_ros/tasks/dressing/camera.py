"""The depth camera the student sees through: pybullet renders depth and segmentation.

The camera is fixed in the world at the person's right side, looking across the arm, wide
enough for every pose range's arm (160 x 120 pixels, about 1.7 cm each at the arm). Pixels
of the arm's capsules are labelled `ARM_LABEL`, pixels of the garment `GARMENT_LABEL`; the
torso, the floor and the background are dropped. The labelled pixels become world points
with the runtime's `labelled_points`, then `preprocess` makes the fixed-N cloud, so the
node and the training run the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from distill_ros.runtime.pointcloud import CloudConfig, labelled_points
from distill_ros.tasks.dressing.arm import ARM_LINKS

ARM_LABEL, GARMENT_LABEL = 0, 1
#: the cloud the student reads: crop to the space around the arm (m, world frame)
CLOUD = CloudConfig(n_points=512, voxel_size=0.01, crop_low=(-0.2, -1.0, 0.0),
                    crop_high=(1.3, 0.0, 1.9))


@dataclass(frozen=True)
class Camera:
    """A pinhole camera (OpenGL conventions): pose (m, world frame) and image size."""

    eye: tuple[float, float, float] = (0.55, -1.75, 1.05)
    target: tuple[float, float, float] = (0.45, -0.35, 0.85)
    width: int = 160
    height: int = 120
    fov_deg: float = 60.0
    near: float = 0.1        # m
    far: float = 3.0         # m

    def matrices(self, pb) -> tuple[tuple, tuple]:
        """View and projection matrices as pybullet makes them (16 values, column-major)."""
        view = pb.computeViewMatrix(self.eye, self.target, [0, 0, 1])
        proj = pb.computeProjectionMatrixFOV(self.fov_deg, self.width / self.height,
                                             self.near, self.far)
        return view, proj


def segmentation_labels(seg: np.ndarray, arm: int, garment: int) -> np.ndarray:
    """Per-pixel labels from pybullet's object-and-link mask: arm, garment or -1 (dropped)."""
    seg = np.asarray(seg, dtype=np.int64)
    body = np.where(seg >= 0, seg & ((1 << 24) - 1), -1)
    link = np.where(seg >= 0, (seg >> 24) - 1, -2)
    labels = np.full(seg.shape, -1, dtype=np.int64)
    labels[(body == arm) & np.isin(link, ARM_LINKS)] = ARM_LABEL
    labels[body == garment] = GARMENT_LABEL
    return labels


def capture(pb, cid: int, camera: Camera, arm: int, garment: int) -> np.ndarray:
    """(M, 4) labelled world points (x, y, z, label) of one rendered frame, before cropping."""
    view, proj = camera.matrices(pb)
    _, _, _, depth, seg = pb.getCameraImage(
        camera.width, camera.height, view, proj, renderer=pb.ER_TINY_RENDERER,
        flags=pb.ER_SEGMENTATION_MASK_OBJECT_AND_LINKINDEX, physicsClientId=cid)
    shape = (camera.height, camera.width)
    depth = np.reshape(depth, shape)
    labels = segmentation_labels(np.reshape(seg, shape), arm, garment)
    return labelled_points(depth, labels, view, proj)

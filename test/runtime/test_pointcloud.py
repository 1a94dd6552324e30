"""Point-cloud preprocessing shared by training and the node: depth -> points -> fixed N."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from distill_ros.runtime import pointcloud
from distill_ros.runtime.pointcloud import CloudConfig, labelled_points, preprocess

pytest.importorskip("open3d", reason="open3d is not installed: pip install "
                    "'distill_ros[pointcloud]'")


def _cloud(n: int = 4000, seed: int = 0) -> np.ndarray:
    """Two labelled blobs (a box and a ball) that overlap in a corner."""
    rng = np.random.default_rng(seed)
    box = rng.uniform(-0.2, 0.2, (n // 2, 3))
    ball = rng.normal(0.15, 0.05, (n // 2, 3))
    return np.concatenate([np.c_[box, np.zeros(n // 2)], np.c_[ball, np.ones(n // 2)]])


def test_fixed_n_whatever_the_cloud_size():
    cfg = CloudConfig(n_points=256, voxel_size=0.02)
    for n in (4000, 300, 20, 2):
        out = preprocess(_cloud(n), cfg)
        assert out.shape == (256, 4) and out.dtype == np.float32, n
    small = preprocess(_cloud(20), cfg)                      # fewer: rows repeat in order
    m = len(np.unique(small, axis=0))
    assert m <= 20 and np.array_equal(small, np.resize(small[:m], (256, 4)))
    with pytest.raises(ValueError, match="no valid points"):
        preprocess(_cloud(100) + [5.0, 5.0, 5.0, 0.0], CloudConfig(crop_high=(1.0, 1.0, 1.0)))


def test_deterministic_in_process_and_across_processes(tmp_path):
    cfg = CloudConfig(n_points=128, voxel_size=0.03)
    a, b = preprocess(_cloud(), cfg), preprocess(_cloud().copy(), cfg)
    assert np.array_equal(a, b)
    np.save(tmp_path / "cloud.npy", _cloud())
    code = ("import hashlib, numpy as np; "
            "from distill_ros.runtime.pointcloud import CloudConfig, preprocess; "
            f"cloud = np.load({str(tmp_path / 'cloud.npy')!r}); "
            "print(hashlib.sha256(preprocess(cloud, CloudConfig(n_points=128, "
            "voxel_size=0.03)).tobytes()).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == hashlib.sha256(a.tobytes()).hexdigest()
    assert not np.array_equal(preprocess(_cloud(seed=1), cfg), a)


def test_crop_voxel_and_labels():
    cloud = _cloud()
    cfg = CloudConfig(n_points=200, voxel_size=0.05, crop_low=(-0.1, -1, -1),
                      crop_high=(1, 1, 1))
    out = preprocess(cloud, cfg)
    assert out[:, 0].min() >= -0.1                             # cropped
    assert set(np.unique(out[:, 3])) == {0.0, 1.0}             # labels kept, never averaged
    for label in (0.0, 1.0):                                   # each point near its own label's
        own = cloud[(cloud[:, 3] == label) & (cloud[:, 0] >= -0.1), :3]
        pts = out[out[:, 3] == label, :3]
        gap = np.linalg.norm(pts[:, None] - own[None], axis=2).min(axis=1)
        assert gap.max() < 0.05 * np.sqrt(3), label           # within a voxel of its points
    # farthest-point sampling spreads out: the kept points cover the cropped cloud
    kept = cloud[cloud[:, 0] >= -0.1, :3]
    cover = np.linalg.norm(kept[:, None] - out[None, :, :3], axis=2).min(axis=1)
    strided = kept[np.linspace(0, len(kept) - 1, 200).astype(int)]
    cover_strided = np.linalg.norm(kept[:, None] - strided[None], axis=2).min(axis=1)
    assert cover.max() < cover_strided.max()


def test_depth_image_to_labelled_world_points():
    pb = pytest.importorskip("pybullet")
    cid = pb.connect(pb.DIRECT)
    centre, half = np.array([0.1, 0.2, 0.2]), np.array([0.2, 0.15, 0.1])
    try:
        box = pb.createMultiBody(0, -1, pb.createVisualShape(pb.GEOM_BOX, halfExtents=half,
                                                             physicsClientId=cid),
                                 centre, physicsClientId=cid)
        view = pb.computeViewMatrix([0.8, -0.4, 0.9], [0.1, 0.2, 0.3], [0, 0, 1])
        proj = pb.computeProjectionMatrixFOV(50, 4 / 3, 0.1, 3.0)
        _, _, _, depth, seg = pb.getCameraImage(64, 48, view, proj, physicsClientId=cid,
                                                renderer=pb.ER_TINY_RENDERER)
    finally:
        pb.disconnect(cid)
    depth, seg = np.reshape(depth, (48, 64)), np.reshape(seg, (48, 64))
    pts = labelled_points(depth, np.where(seg == box, 7, -1), view, proj)
    assert len(pts) > 200 and set(pts[:, 3]) == {7.0}
    assert len(pts) == int((seg == box).sum())               # the background is dropped
    surface = (np.abs(pts[:, :3] - centre) - half).max(axis=1)  # signed distance to the box
    assert np.abs(surface).max() < 1e-3                        # every point on a face
    # three faces seen from this corner, each with many points
    faces = np.argmax(np.abs(pts[:, :3] - centre) / half, axis=1)
    assert np.bincount(faces, minlength=3).min() > 20


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="n_points"):
        CloudConfig(n_points=0)
    with pytest.raises(ValueError, match="voxel_size"):
        CloudConfig(voxel_size=0.0)
    with pytest.raises(ValueError, match="crop_low"):
        CloudConfig(crop_low=(0, 0, 0), crop_high=(1, -1, 1))
    with pytest.raises(ValueError, match=r"\(M, 4\)"):
        preprocess(np.zeros((10, 3)), CloudConfig())
    with pytest.raises(ValueError, match="16 values or be 4x4"):
        pointcloud.depth_to_points(np.zeros((2, 2)), np.eye(3), np.eye(4))


def test_missing_open3d_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "open3d", None)          # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'distill_ros\[pointcloud\]'"):
        preprocess(_cloud(100), CloudConfig())

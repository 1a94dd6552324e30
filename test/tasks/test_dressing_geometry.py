"""The dressing family's pure parts: dressed-ratio geometry, pose ranges, garment meshes."""

import numpy as np
import pytest

from distill_ros.tasks.dressing import garments, poses
from distill_ros.tasks.dressing.expert import point_at_arc
from distill_ros.tasks.dressing.geometry import dressed_ratio, progress, project_onto_polyline

STRAIGHT = np.array([[0.0, 0, 0], [0.5, 0, 0], [1.0, 0, 0]])          # 1 m, hand at x=0
BENT = np.array([[0.0, 0, 0], [0.4, 0, 0], [0.4, 0.3, 0]])             # 0.7 m, elbow at 90 deg


@pytest.mark.parametrize("point, ratio", [
    ((0.25, 0.02, 0.0), 0.25),      # beside the arm: its projection counts
    ((0.75, 0.0, -0.05), 0.75),     # second segment
    ((-0.1, 0.0, 0.0), 0.0),        # not yet at the hand
    ((1.2, 0.0, 0.0), 1.0),         # past the shoulder
])
def test_ratio_on_a_straight_arm(point, ratio):
    assert dressed_ratio(STRAIGHT, point) == pytest.approx(ratio)


def test_ratio_on_a_bent_arm_follows_the_nearest_segment():
    # 0.02 m from the upper arm, 0.1 m from the forearm: 0.4 m of forearm + 0.1 m of upper arm
    assert dressed_ratio(BENT, (0.38, 0.1, 0.0)) == pytest.approx(0.5 / 0.7)
    # in the crook, equally far from both segments: the nearer-the-hand one wins
    arc, closest = project_onto_polyline(BENT, (0.3, 0.1, 0.0))
    assert arc == pytest.approx(0.3) and np.allclose(closest, (0.3, 0.0, 0.0))
    # at the elbow: 4/7 along the arm's path; the hand-shoulder chord would say 0.64
    assert dressed_ratio(BENT, BENT[1]) == pytest.approx(0.4 / 0.7)
    assert dressed_ratio(np.array([BENT[0], BENT[2]]), BENT[1]) == pytest.approx(0.64)


def test_an_opening_that_does_not_surround_the_arm_dresses_nothing():
    assert dressed_ratio(STRAIGHT, (0.6, 0.2, 0.0), opening_radius=0.1) == 0.0
    assert dressed_ratio(STRAIGHT, (0.6, 0.05, 0.0), opening_radius=0.1) == pytest.approx(0.6)


def test_shaped_progress_counts_the_approach_and_loses_a_slip():
    assert progress(STRAIGHT, (-0.1, 0.0, 0.0), 0.1) == pytest.approx(-0.1)   # short of the hand
    assert progress(STRAIGHT, (0.6, 0.05, 0.0), 0.1) == pytest.approx(0.6)
    assert progress(STRAIGHT, (0.6, 0.2, 0.0), 0.1) == 0.0                     # left the arm
    assert progress(STRAIGHT, (-0.1, 0.3, 0.0), 0.1) == pytest.approx(-0.1)   # off and short
    assert progress(STRAIGHT, (1.05, 0.0, 0.0), 0.1) == 1.0                     # at the shoulder
    assert progress(BENT, (0.38, 0.1, 0.0), 0.1) == pytest.approx(0.5 / 0.7)
    arc, closest = project_onto_polyline(STRAIGHT, (-0.2, 0.1, 0.0), extend_start=True)
    assert arc == pytest.approx(-0.2) and np.allclose(closest, (-0.2, 0.0, 0.0))


def test_bad_polylines_are_refused():
    with pytest.raises(ValueError, match="zero-length segment"):
        dressed_ratio(np.array([[0.0, 0, 0], [0.0, 0, 0], [1.0, 0, 0]]), (0.5, 0, 0))
    with pytest.raises(ValueError, match=r"\(K >= 2, 3\)"):
        dressed_ratio(np.zeros((1, 3)), (0.5, 0, 0))


def test_point_at_arc_walks_the_polyline():
    point, tangent = point_at_arc(BENT, 0.5)
    assert np.allclose(point, (0.4, 0.1, 0.0)) and np.allclose(tangent, (0, 1, 0))
    point, _ = point_at_arc(BENT, 5.0)
    assert np.allclose(point, BENT[-1])


def test_pose_ranges_form_a_grid_with_held_out_cells():
    assert len(poses.POSE_RANGES) == 9 + 3
    assert set(poses.HELD_OUT_RANGES).isdisjoint(poses.TRAIN_RANGES)
    assert len(poses.TRAIN_RANGES) == 7
    grid_flexion = (poses.FLEXION_BINS[0][0], poses.FLEXION_BINS[-1][1])
    grid_elbow = (poses.ELBOW_BINS[0][0], poses.ELBOW_BINS[-1][1])
    for r in poses.BEYOND_RANGES.values():   # outside the grid in flexion, elbow or both
        assert r.flexion[0] >= grid_flexion[1] or r.elbow[0] >= grid_elbow[1], r.name
    rng = np.random.default_rng(0)
    for r in poses.POSE_RANGES.values():
        q = np.degrees(np.array([r.sample(rng) for _ in range(50)]))
        for k, (lo, hi) in enumerate((r.flexion, r.abduction, r.elbow)):
            assert lo <= q[:, k].min() and q[:, k].max() <= hi, (r.name, k)
    with pytest.raises(ValueError, match="valid choices"):
        poses.get_range("f9e9")


def test_garments_differ_and_one_is_held_out():
    train, held = garments.TRAIN_GARMENTS, garments.HELD_OUT_GARMENTS
    assert len(train) >= 3 and len(held) == 1
    for key in ("opening_radius", "length", "stiffness", "friction"):
        values = [getattr(g, key) for g in (*train, *held)]
        assert len(set(values)) == len(values), key
    assert {g.shape for g in train} == {"sleeve", "gown"}


def test_tube_mesh_rings(tmp_path):
    g = garments.get_garment("gown_short")
    verts, faces = garments.tube_mesh(g)
    assert verts.shape == (garments.RINGS * garments.AROUND, 3)
    assert faces.min() == 0 and faces.max() == len(verts) - 1
    opening = verts[garments.ring_indices(0)]
    cuff = verts[garments.ring_indices(garments.RINGS - 1)]
    assert np.allclose(np.linalg.norm(opening[:, :2], axis=1), g.opening_radius)
    assert np.allclose(np.linalg.norm(cuff[:, :2], axis=1), g.cuff_radius)
    assert np.allclose(opening[:, 2], 0.0) and np.allclose(cuff[:, 2], g.length)
    # every triangle is non-degenerate
    a, b, c = (verts[faces[:, i]] for i in range(3))
    assert np.linalg.norm(np.cross(b - a, c - a), axis=1).min() > 1e-6


def test_garment_files_are_cached_and_named_by_content(tmp_path):
    path = garments.garment_file(garments.get_garment("sleeve_snug"), tmp_path)
    text = path.read_text()
    assert text.count("\nv ") == 132 and text.count("\nf ") == 240
    stamp = path.stat().st_mtime_ns
    assert garments.garment_file(garments.get_garment("sleeve_snug"), tmp_path) == path
    assert path.stat().st_mtime_ns == stamp                       # not rewritten
    other = garments.garment_file(garments.get_garment("sleeve_loose"), tmp_path)
    assert other != path and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [path.name, other.name])                                  # no temp file left over
    with pytest.raises(ValueError, match="valid choices"):
        garments.get_garment("tuxedo")
    with pytest.raises(ValueError, match="one radius"):
        garments.Garment("x", "sleeve", 0.1, 0.08, 0.3, 10.0, 0.5)

"""Students over observation groups: masks, PointNet order invariance, ONNX parity."""

import numpy as np
import pytest
import torch

from distill_ros.config import StudentConfig
from distill_ros.export.metadata import PolicyMetadata
from distill_ros.export.onnx_export import export_student, parity_check
from distill_ros.runtime.onnx_policy import OnnxPolicy
from distill_ros.spec import Group, ObsSpec, Spec
from distill_ros.students.factory import build_student

ACT = Spec(("vx", "vy"), (-0.5, -0.5), (0.5, 0.5), "m/s")
SPEC = ObsSpec((
    Group("state", "vector", Spec(("x", "y", "vx", "vy"), units="m, m/s")),
    Group("cloud", "points", Spec(("x", "y", "z", "label"), units="m, label 0/1"), 16),
    Group("past", "history", Spec(("x", "y")), 3),
    Group("cmd", "command", Spec(("goal_x", "goal_y", "speed"))),
))


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    obs = {k: rng.normal(1.0, 2.0, (n, *s)).astype(np.float32)
           for k, s in SPEC.input_shapes().items()}
    obs["cmd_mask"] = rng.integers(0, 2, (n, 3)).astype(np.float32)
    return obs


@pytest.fixture(params=["mlp", "transformer"])
def student(request):
    torch.manual_seed(0)
    s = build_student(StudentConfig(arch=request.param, hidden=[32, 32], d_model=16,
                                    n_heads=2, n_layers=1), SPEC, ACT, point_features=16)
    s.set_normalizer(_data(200))
    return s.eval()


def test_a_masked_command_element_cannot_change_the_output(student):
    obs = _data(32, seed=1)
    obs["cmd_mask"][:, 1] = 0.0
    base = student.act(obs)
    for junk in (-1e3, 0.0, 7.0, 1e4):
        obs["cmd"][:, 1] = junk
        np.testing.assert_array_equal(student.act(obs), base)
    obs["cmd_mask"][:, 1] = 1.0    # the same values, commanded: now they matter
    assert np.max(np.abs(student.act(obs) - base)) > 1e-4


def test_pointnet_features_ignore_the_order_of_points(student):
    obs = _data(8, seed=2)
    base = student.act(obs)
    perm = np.random.default_rng(0).permutation(16)
    shuffled = {**obs, "cloud": obs["cloud"][:, perm]}
    np.testing.assert_allclose(student.act(shuffled), base, atol=1e-6)
    moved = {**obs, "cloud": obs["cloud"] + np.float32(0.5)}
    assert np.max(np.abs(student.act(moved) - base)) > 1e-4, "the cloud must matter"


def test_normaliser_of_a_command_uses_commanded_entries_only():
    s = build_student(StudentConfig(hidden=[8]), SPEC, ACT)
    obs = _data(100)
    obs["cmd"][:, 0] = np.where(obs["cmd_mask"][:, 0] > 0, 5.0, 1e6)
    s.set_normalizer(obs)
    assert s.cmd_mean[0].item() == pytest.approx(5.0)
    assert s.cloud_mean.shape == (4,) and s.past_mean.shape == (2,)


def test_onnx_has_one_input_per_group_and_matches_torch(tmp_path, student):
    path = tmp_path / "policy.onnx"
    export_student(student, path, PolicyMetadata(SPEC, ACT, 50.0, "toy"))
    diffs = parity_check(student, path, _data(64, seed=3), tol=1e-4)
    assert diffs["max_abs_diff_random"] <= 1e-4 and diffs["max_abs_diff_real"] <= 1e-4
    policy = OnnxPolicy(path, want_gpu=False)
    assert [i.name for i in policy.session.get_inputs()] == \
        ["state", "cloud", "past", "cmd", "cmd_mask"]
    assert policy.groups == SPEC and policy.control_rate_hz == 50.0
    one = {k: v[0] for k, v in _data(1, seed=4).items()}
    out = policy.act(one)
    assert out.shape == (2,) and np.all(np.abs(out) <= 0.5 + 1e-6)
    np.testing.assert_allclose(out, student.act({k: v[None] for k, v in one.items()})[0],
                               atol=1e-4)
    with pytest.raises(ValueError, match="takes observation groups"):
        policy.act(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="missing \\['cmd_mask'\\]"):
        policy.act({k: v for k, v in one.items() if k != "cmd_mask"})
    with pytest.raises(ValueError, match="takes observation groups"):
        policy.obs_spec


def test_export_refuses_metadata_of_another_layout(tmp_path, student):
    flat = ObsSpec.flat(Spec(("a", "b")))
    with pytest.raises(ValueError, match="are not the model's"):
        export_student(student, tmp_path / "p.onnx", PolicyMetadata(flat, ACT, 50.0, "toy"))
    assert not (tmp_path / "p.onnx").exists()


def test_checkpoint_carries_the_groups_and_refuses_another_layout(tmp_path):
    from distill_ros.distill.behavior_cloning import Distillation

    def make(spec, seed=0):
        torch.manual_seed(seed)
        return build_student(StudentConfig(hidden=[32, 32]), spec, ACT, point_features=16)

    student = make(SPEC)
    student.set_normalizer(_data(50))
    path = tmp_path / "best.pt"
    Distillation(student, 1e-3).save(path, epoch=3)
    again = make(SPEC, seed=1)     # other weights and normalisers until loaded
    assert Distillation(again, 1e-3).load(path) == {"epoch": 3}
    obs = _data(4, seed=5)
    np.testing.assert_array_equal(again.eval().act(obs), student.eval().act(obs))
    renamed = ObsSpec((*SPEC.groups[:3], Group("goal", "command", SPEC.groups[3].channels)))
    with pytest.raises(ValueError, match="best.pt: observation layout differs.*goal"):
        Distillation(make(renamed), 1e-3).load(path)


def test_points_origin_reads_the_cloud_relative_to_the_origin_group(tmp_path):
    """A cloud moved with its origin gives the same point features; ONNX holds the shift."""
    torch.manual_seed(0)
    s = build_student(StudentConfig(hidden=[32, 32], points_origin="state"), SPEC, ACT,
                      point_features=16)
    data = _data(200)
    s.set_normalizer(data)
    rel = data["cloud"][..., :3] - data["state"][:, None, :3]
    np.testing.assert_allclose(s.cloud_mean[:3].numpy(), rel.reshape(-1, 3).mean(0), rtol=1e-4)
    s.eval()
    obs = _data(8, seed=6)
    moved = {**obs, "state": obs["state"].copy(), "cloud": obs["cloud"].copy()}
    moved["state"][:, :3] += np.float32(0.75)   # x, y, vx: the origin's first three values
    moved["cloud"][..., :3] += np.float32(0.75)
    with torch.no_grad():
        # the encoder's inputs in SPEC.input_names order: state, cloud, past, cmd, cmd_mask
        feats = [s.encoder.points["cloud"](s._normalize(s._inputs(o))[1]) for o in (obs, moved)]
    np.testing.assert_allclose(feats[1].numpy(), feats[0].numpy(), atol=1e-5)
    cloud_only = {**obs, "cloud": moved["cloud"]}   # the cloud alone moved: it reads moved
    assert np.max(np.abs(s.act(cloud_only) - s.act(obs))) > 1e-4
    path = tmp_path / "policy.onnx"
    export_student(s, path, PolicyMetadata(SPEC, ACT, 50.0, "toy"))
    diffs = parity_check(s, path, _data(64, seed=7), tol=1e-4)
    assert diffs["max_abs_diff_random"] <= 1e-4 and diffs["max_abs_diff_real"] <= 1e-4
    with pytest.raises(ValueError, match="must name a vector group of at least 3 values"):
        build_student(StudentConfig(points_origin="past"), SPEC, ACT)
    flat = ObsSpec((SPEC.groups[0],))
    with pytest.raises(ValueError, match="reads no points group"):
        build_student(StudentConfig(points_origin="state"), flat, ACT)


TWIST = Spec(("vx", "vy", "vz", "wx", "wy", "wz"), (-2.0,) * 6, (2.0,) * 6, "m/s, rad/s")
POSED = ObsSpec((
    Group("pose", "vector", Spec(("x", "y", "z", "qx", "qy", "qz", "qw"), units="m, quat")),
    Group("cloud", "points", Spec(("x", "y", "z", "label"), units="m, label 0/1"), 16),
))


def _posed(n, seed=0):
    import pybullet as pb

    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    pose = np.concatenate([rng.normal(0.0, 0.5, (n, 3)), q], 1).astype(np.float32)
    local = rng.normal(0.0, 0.3, (n, 16, 3))       # the cloud as the gripper sees it
    world = np.stack([local[i] @ np.reshape(pb.getMatrixFromQuaternion(q[i]), (3, 3)).T
                      + pose[i, :3] for i in range(n)])
    labels = rng.integers(0, 2, (n, 16, 1))
    return {"pose": pose, "cloud": np.concatenate([world, labels], 2).astype(np.float32)}


def test_points_frame_reads_the_cloud_and_acts_in_the_pose_frame(tmp_path):
    """A scene turned and moved with the gripper gives the same action, turned (in ONNX too)."""
    import pybullet as pb

    torch.manual_seed(0)
    s = build_student(StudentConfig(hidden=[32, 32], points_frame="pose"), POSED, TWIST,
                      point_features=16, frame_vectors=((0, 1, 2), (3, 4, 5)))
    s.set_normalizer(_posed(200))
    # the pose's own values made negligible to the core: only the frame it defines acts
    s.pose_std.fill_(1e9)
    s.eval()
    obs = _posed(8, seed=3)
    turn = np.array(pb.getQuaternionFromEuler((0.4, -1.1, 2.5)))
    shift = np.array([0.3, -0.2, 0.9])
    r = np.reshape(pb.getMatrixFromQuaternion(turn), (3, 3))
    moved = {"pose": obs["pose"].copy(), "cloud": obs["cloud"].copy()}
    for i in range(8):
        pos, quat = pb.multiplyTransforms(shift, turn, obs["pose"][i, :3], obs["pose"][i, 3:])
        moved["pose"][i] = [*pos, *quat]
    moved["cloud"][..., :3] = obs["cloud"][..., :3] @ r.T + shift
    base, turned = s.act(obs), s.act(moved)
    assert np.abs(base).max() < 2.0 / np.sqrt(3), "no limit may clip a turned vector"
    np.testing.assert_allclose(turned[:, :3], base[:, :3] @ r.T, atol=1e-5)
    np.testing.assert_allclose(turned[:, 3:], base[:, 3:] @ r.T, atol=1e-5)
    # the same twist in the world for a cloud the gripper sees alike: no turn, no action turn
    assert np.max(np.abs(turned - base)) > 1e-3, "the world-frame action must turn"
    path = tmp_path / "policy.onnx"
    export_student(s, path, PolicyMetadata(POSED, TWIST, 10.0, "toy"))
    diffs = parity_check(s, path, _posed(64, seed=7), tol=1e-4)
    assert diffs["max_abs_diff_random"] <= 1e-4 and diffs["max_abs_diff_real"] <= 1e-4


def test_points_frame_refuses_what_it_cannot_turn():
    vectors = ((0, 1, 2), (3, 4, 5))
    with pytest.raises(ValueError, match="at least 7 values"):
        build_student(StudentConfig(points_frame="state"), SPEC, TWIST, frame_vectors=vectors)
    with pytest.raises(ValueError, match="TaskFamily.act_frame_vectors"):
        build_student(StudentConfig(points_frame="pose"), POSED, TWIST)
    lopsided = Spec(TWIST.names, (-1.0, -2.0, -2.0, -1, -1, -1), (2.0,) * 3 + (1,) * 3)
    with pytest.raises(ValueError, match=r"turns the action's \['vx', 'vy', 'vz'\], so their "
                                         r"limits must be one symmetric bound"):
        build_student(StudentConfig(points_frame="pose"), POSED, lopsided,
                      frame_vectors=vectors)
    with pytest.raises(ValueError, match="disjoint triples"):
        build_student(StudentConfig(points_frame="pose"), POSED, TWIST,
                      frame_vectors=((0, 1, 2), (2, 3, 4)))
    with pytest.raises(ValueError, match="set one of student.points_origin"):
        StudentConfig(points_origin="pose", points_frame="pose")

"""The dressing env in pybullet: arm kinematics, camera labels, determinism, a solvable task."""

import pickle

import numpy as np
import pytest
from conftest import needs_open3d

pb = pytest.importorskip("pybullet")

from distill_ros.tasks.base import get_family, make_env  # noqa: E402
from distill_ros.tasks.dressing import arm as arm_model  # noqa: E402
from distill_ros.tasks.dressing.camera import ARM_LABEL, GARMENT_LABEL  # noqa: E402
from distill_ros.tasks.dressing.env import (  # noqa: E402
    EPISODE_STEPS, STATE_DIM, SUCCESS_RATIO, DressingEnv)
from distill_ros.tasks.dressing import expert  # noqa: E402
from distill_ros.tasks.dressing.expert import expert_action  # noqa: E402
from distill_ros.tasks.dressing.family import ACT_SPEC, FAMILY, OBS_SPEC, obs_groups  # noqa: E402
from distill_ros.tasks.dressing.geometry import point_segment_distance  # noqa: E402


pytestmark = pytest.mark.usefixtures("garment_cache")   # test/conftest.py


@pytest.fixture(scope="module")
def env(garment_cache):
    e = DressingEnv("f1e0", groups=("state", "proprio", "points"), n_points=256)
    yield e
    e.close()


def test_arm_kinematics_match_pybullet():
    cid = pb.connect(pb.DIRECT)
    try:
        model = arm_model.ArmModel()
        body = arm_model.build_arm(pb, cid, model)
        for q in ([0.0, 0.0, 0.0], [1.2, 0.3, 0.6], [0.7, -0.2, 1.0]):
            arm_model.set_pose(pb, cid, body, q)
            tip, wrist, elbow, shoulder = arm_model.polyline(model, np.array(q))
            pos = [np.array(pb.getLinkState(body, k, physicsClientId=cid)[4]) for k in (2, 3)]
            assert np.allclose(pos, [elbow, wrist], atol=1e-6), q
        arm_model.set_pose(pb, cid, body, [np.pi / 2, 0.0, 0.0])   # flexed 90 deg: forward
        tip, _, elbow, shoulder = arm_model.polyline(model, np.array([np.pi / 2, 0.0, 0.0]))
        assert np.allclose(elbow - shoulder, [model.upper_arm_length, 0, 0], atol=1e-9)
        _, _, elbow, _ = arm_model.polyline(model, np.array([0.0, 0.4, 0.0]))  # abducted: out
        assert elbow[1] < shoulder[1]
        _, wrist, elbow, _ = arm_model.polyline(model, np.array([0.0, 0.0, 0.5]))  # elbow: up
        assert wrist[0] > elbow[0] and wrist[2] > elbow[2] - model.forearm_length
    finally:
        pb.disconnect(cid)


@needs_open3d
def test_observation_groups_and_camera_labels(env):
    obs, info = env.reset(seed=0)
    assert obs["state"].shape == (STATE_DIM,) and obs["proprio"].shape == (7,)
    assert obs["points"].shape == (256, 4) and obs["points"].dtype == np.float32
    assert env.observation_space.contains(obs)
    obs_groups(256).check_arrays(obs, "dressing env", batched=False)   # the family's layout
    raw = env.point_cloud()
    arm_pts, cloth = raw[raw[:, 3] == ARM_LABEL, :3], raw[raw[:, 3] == GARMENT_LABEL, :3]
    assert len(arm_pts) > 100 and len(cloth) > 50
    assert set(np.unique(raw[:, 3])) == {ARM_LABEL, GARMENT_LABEL}     # torso, floor dropped
    # arm points lie on the capsules' surfaces: the sides to 3 mm; the rendered end caps are
    # coarse polygons, up to 1.5 cm inside the true hemispheres
    gaps = np.abs(np.stack([point_segment_distance(arm_pts, a, b) - r
                            for a, b, r in arm_model.axis_segments(env.model, env.q)]).min(0))
    assert np.percentile(gaps, 85) < 0.003 and gaps.max() < 0.015
    # garment points lie near the garment's vertices (its triangles are about 4 cm wide)
    verts = env.garment_vertices()
    near = np.linalg.norm(cloth[:, None] - verts[None], axis=2).min(axis=1)
    assert near.max() < 0.04
    # and the preprocessed cloud keeps both labels
    assert set(np.unique(obs["points"][:, 3])) == {ARM_LABEL, GARMENT_LABEL}


@needs_open3d
def test_same_seed_same_episode(env):
    actions = np.random.default_rng(7).uniform(-1, 1, (4, 6)) * env.action_space.high
    runs = []
    for seed in (3, 3, 4):
        obs, _ = env.reset(seed=seed)
        frames = [obs]
        for a in actions:
            frames.append(env.step(a)[0])
        runs.append(frames)
    for a, b in zip(runs[0], runs[1]):
        for group in a:
            assert np.array_equal(a[group], b[group]), group
    assert not np.array_equal(runs[0][0]["state"], runs[2][0]["state"])


def test_a_pickled_env_continues_its_episode_exactly(garment_cache):
    env = DressingEnv("f2e1")
    obs, _ = env.reset(seed=5)
    for _ in range(3):
        obs, *_ = env.step(expert_action(obs))
    clone = pickle.loads(pickle.dumps(env))              # new physics client, episode replayed
    try:
        assert clone._cid != env._cid
        for _ in range(3):
            a = expert_action(obs)
            obs, reward, _, _, info = env.step(a)
            obs2, reward2, _, _, info2 = clone.step(a)
            assert np.array_equal(obs, obs2) and reward == reward2 and info == info2
        assert np.array_equal(env.garment_vertices(), clone.garment_vertices())
        # the generator continues too: the next episode is the same in both
        assert np.array_equal(env.reset()[0], clone.reset()[0])
    finally:
        env.close()
        clone.close()


def test_scripted_expert_dresses_the_arm():
    env = DressingEnv("f0e1@gown_long")            # the held-out garment, on a training range
    try:
        obs, info = env.reset(seed=1)
        assert info["dressed_ratio"] < 0.05                      # starts at the hand
        for _ in range(EPISODE_STEPS):
            obs, reward, terminated, truncated, info = env.step(expert_action(obs))
            if info["is_success"]:
                break
        assert info["dressed_ratio"] >= SUCCESS_RATIO, info
        # the opening surrounds the upper arm: its centre is near the arm's axis
        opening = env.key_points()[0]
        _, _, elbow, shoulder = env.polyline
        assert point_segment_distance(opening[None], elbow, shoulder)[0] < 0.05
    finally:
        env.close()


def test_pushing_into_the_arm_is_felt_and_costs_reward(garment_cache):
    env = DressingEnv("f1e0")
    try:
        obs, _ = env.reset(seed=0)
        for _ in range(8):                               # the expert slides onto the forearm
            obs, _, _, _, info = env.step(expert_action(obs))
        assert 0.15 < info["dressed_ratio"] < 0.6 and info["arm_force"] < 1.0, info
        _, wrist, elbow, _ = env.polyline
        side = np.cross(elbow - wrist, [0.0, 0.0, 1.0])
        push = np.r_[0.25 * side / np.linalg.norm(side), 0.0, 0.0, 0.0]
        forces, rewards = [], []
        for _ in range(5):                               # shove the opening sideways
            obs, reward, _, _, info = env.step(push)
            forces.append(info["arm_force"])
            rewards.append(reward)
    finally:
        env.close()
    assert max(forces) > 3.0, forces                     # pybullet's soft contacts report it
    assert sum(rewards) < -0.3, rewards


def test_family_record_matches_the_env():
    names = OBS_SPEC.names
    assert names[expert._OPENING] == ("opening_x", "opening_y", "opening_z")
    assert names[expert._QUAT] == ("gripper_qx", "gripper_qy", "gripper_qz", "gripper_qw")
    assert names[expert._POLYLINE][::11] == ("hand_tip_x", "shoulder_z")
    assert get_family("dressing") is FAMILY                      # a built-in family
    env = make_env("dressing", "f2e1@gown_long")
    try:
        assert env.observation_space.shape == (OBS_SPEC.dim,)
        assert np.array_equal(env.action_space.high, np.float32(ACT_SPEC.high))
        assert env.fixed_garment.name == "gown_long"
    finally:
        env.close()
    assert "f1e1" in FAMILY.tasks and "f0e0@gown_long" in FAMILY.tasks
    assert "f3e3@gown_long" in FAMILY.tasks      # garment and pose held out at once


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="valid choices"):
        DressingEnv("f7e7")
    with pytest.raises(ValueError, match="valid choices"):
        DressingEnv("f0e0@poncho")
    with pytest.raises(ValueError, match="observation group"):
        DressingEnv("f0e0", groups=("rgb",))


def test_cloth_flung_from_the_gripper_counts_as_diverged():
    env = DressingEnv("f0e0")
    try:
        obs, _ = env.reset(seed=0)
        obs, _, terminated, _, info = env.step(expert_action(obs))
        assert not terminated and not info["diverged"] and not env.diverged()
        pos, orn = env.gripper_pose()      # a solver blow-up leaves the cloth far behind
        env._pb.resetBasePositionAndOrientation(env._gripper, (pos + [0.0, 0.0, 1.5]).tolist(),
                                                orn.tolist(), physicsClientId=env._cid)
        assert env.diverged()
    finally:
        env.close()

"""The humanoid scene sim_robot drives: joints, features, keypoint markers, falls and resets."""

import numpy as np
import pytest

from distill_ros.tasks.base import get_family
from distill_ros.tasks.humanoid import quat
from distill_ros.tasks.humanoid.env import action_to_targets
from distill_ros.tasks.humanoid.scene import (ACTUAL_COLOR, joint_names, pose_action,
                                              REFERENCE_COLOR, STAND_SECONDS)
from distill_ros.tasks.humanoid.skeleton import JOINTS

FAMILY = get_family("humanoid")


@pytest.fixture(scope="module")
def scene():
    made = FAMILY.make_scene("walk", 3)
    yield made
    made.close()


@pytest.fixture(scope="module")
def walk_teacher():
    from distill_ros.teachers.deepmimic import DeepMimicTeacher

    return DeepMimicTeacher.for_clip("walk")


def _same_rotation(a, b, tol=1e-6):
    return np.allclose(a, b, atol=tol) or np.allclose(a, -np.asarray(b), atol=tol)


def _act(scene, teacher):
    names, values = scene.features()
    state = dict(zip(names, values))
    scene.set_command(FAMILY.act_spec.names,
                      teacher.act(np.array([state[n] for n in FAMILY.obs_spec.names])))


def test_pose_action_holds_the_pose_it_was_made_from(scene):
    pose = scene.env.clip.pose(0.37)
    targets = action_to_targets(pose_action(pose))
    for joint, target, q in zip(JOINTS, targets, pose.joint_pos):
        if joint.dof == 3:
            assert _same_rotation(target, q), joint.name
        else:
            assert target == pytest.approx(list(q)), joint.name


def test_joint_states_are_rotation_vectors_of_the_spherical_joints(scene):
    scene.reset()
    names, positions, velocities = scene.joint_state()
    assert names == joint_names()
    assert len(names) == len(positions) == len(velocities) == 8 * 3 + 4
    assert names[:4] == ["chest_x", "chest_y", "chest_z", "neck_x"] and "right_knee" in names
    # each x/y/z triple is the rotation vector of pybullet's joint quaternion
    states = scene.env.sim.pb.getJointStatesMultiDof(scene.env.sim.body,
                                                     [j.index for j in JOINTS])
    by_name = dict(zip(names, positions))
    for joint, state in zip(JOINTS, states):
        if joint.dof == 3:
            rotvec = np.array([by_name[f"{joint.name}_{a}"] for a in "xyz"])
            back = quat.from_axis_angle(rotvec, np.linalg.norm(rotvec))
            assert _same_rotation(back, state[0]), joint.name
        else:
            assert by_name[joint.name] == pytest.approx(state[0][0])
    # the episode starts in the clip's first frame
    start = scene.env.clip.pose(0.0)
    assert by_name["right_knee"] == pytest.approx(start.joint_pos[3][0], abs=1e-6)


def test_features_are_the_state_by_name_plus_the_clip_time(scene, walk_teacher):
    scene.reset()
    names, values = scene.features()
    assert names == [*FAMILY.obs_spec.names, "clip_time"]
    assert values[-1] == 0.0
    np.testing.assert_allclose(values[:-1], scene.obs, atol=1e-6)
    for _ in range(3):
        _act(scene, walk_teacher)
        scene.step()
    names, values = scene.features()
    assert values[-1] == pytest.approx(3 / 30)
    assert dict(zip(names, values))["phase"] == pytest.approx(
        scene.env.clip.phase(3 / 30), abs=1e-6)


def test_the_walk_teacher_tracks_the_clip_and_the_markers_show_both(scene, walk_teacher):
    scene.reset()
    _, before = scene.status()
    rewards = []
    for _ in range(int(STAND_SECONDS * 30)):
        assert not scene.success, "success before STAND_SECONDS"
        _act(scene, walk_teacher)
        scene.step()
        rewards.append(scene.reward)
    _, status = scene.status()
    assert scene.success and status["falls"] == before["falls"], status
    assert np.mean(rewards) > 0.5, np.mean(rewards)
    for key in ("fresh_command_steps", "total_steps"):   # a new command every period
        assert status[key] - before[key] == len(rewards), (key, status)
    shapes = scene.shapes()
    actual = [s for s in shapes if s.ns == "actual"]
    reference = [s for s in shapes if s.ns == "reference"]
    assert len(actual) == len(reference) == 6
    assert {s.kind for s in actual + reference} == {"sphere"}
    assert {tuple(s.color) for s in actual} == {ACTUAL_COLOR}
    assert {tuple(s.color) for s in reference} == {REFERENCE_COLOR}
    gaps = [np.linalg.norm(np.subtract(a.position, r.position))
            for a, r in zip(actual, reference)]
    assert max(gaps) < 0.3, gaps   # tracking: each key body within 30 cm of the clip's
    head, pelvis = actual[0].position, actual[3].position
    assert head[2] > pelvis[2] > 0.6, (head, pelvis)   # z up in ROS's world frame
    assert pelvis[0] > 1.0, pelvis   # the character walked forward (+x) for 5 s


def test_a_fall_is_counted_and_starts_the_next_episode(scene):
    seed, falls = scene.reset(), scene.falls
    scene.set_command(FAMILY.act_spec.names, np.zeros(FAMILY.act_spec.dim))
    for _ in range(150):
        scene.step()
        if scene.falls:
            break
    message, status = scene.status()
    assert status["falls"] == falls + 1 and status["seed"] == seed + 1, status
    assert scene.steps == 0 and not scene.success and scene.env.time == 0.0
    assert f"{falls + 1} falls" in message


def test_bad_commands_are_refused_with_the_names(scene):
    before = scene.command.copy()
    with pytest.raises(ValueError, match="chest/angle"):
        scene.set_command(["chest/angel"], [0.1])
    with pytest.raises(ValueError, match="NaN"):
        scene.set_command(["chest/angle"], [float("nan")])
    np.testing.assert_array_equal(scene.command, before)


def test_a_student_keeps_the_names_the_scene_publishes(scene):
    from distill_ros.distill.dagger.envs import group_spec
    from distill_ros.tasks.humanoid.family import OBS_GROUPS

    shapes = {"proprio": (196,), "command": (51,), "command_mask": (51,)}
    spec = group_spec(shapes, FAMILY.obs_spec, FAMILY.obs_groups)
    assert FAMILY.obs_groups is OBS_GROUPS
    proprio = spec.group("proprio").channels.names
    assert set(proprio) <= set(scene.features()[0]) and "phase" not in proprio
    assert spec.group("command").kind == "command"
    assert spec.group("command").channels.names[0] == "+1/keypoint/head[0]"
    # another command size (more future frames) than the family names: generic names
    other = group_spec({"command": (102,), "command_mask": (102,)}, None, OBS_GROUPS)
    assert other.group("command").channels.names[:2] == ("command_0", "command_1")

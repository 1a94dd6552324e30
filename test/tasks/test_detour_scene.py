"""The detour scene that sim_robot drives: same motion as the env, named joints and features."""

import numpy as np
import pytest
import torch

from distill_ros.rollout import run_episode
from distill_ros.tasks.base import get_family
from distill_ros.tasks.detour import OBS_SPEC, DetourEnv, DetourExpert
from distill_ros.tasks.detour_scene import JOINTS


def _observation(scene) -> np.ndarray:
    """The policy's observation, assembled by name as policy_inference does."""
    names, positions, _ = scene.joint_state()
    by_name = dict(zip(("reacher_x", "reacher_y"), positions))
    assert list(names) == list(JOINTS)
    by_name.update(zip(*scene.features()))
    return np.array([by_name[n] for n in OBS_SPEC.names], np.float32)


def _drive(scene, policy, ticks: int) -> list[np.ndarray]:
    seen = []
    for _ in range(ticks):
        obs = _observation(scene)
        seen.append(obs)
        action = policy(obs[None])[0]
        scene.set_command(["vy", "vx"], [float(action[1]), float(action[0])])  # by name
        scene.step()
    return seen


def _expert(side: float):
    module = DetourExpert(side)
    return lambda obs: module(torch.as_tensor(obs)).detach().numpy()


def test_scene_moves_as_the_env_and_reaches_the_goal_on_the_left():
    scene = get_family("detour").make_scene("pillar", 3)
    assert scene.seed == 3 and scene.point_cloud() is None
    episode = run_episode(DetourEnv("pillar"), _expert(1.0), 3)
    seen = _drive(scene, _expert(1.0), len(episode.obs))
    np.testing.assert_allclose(np.stack(seen), episode.obs, atol=1e-6)
    assert scene.success and not scene.collided and episode.success
    message, values = scene.status()
    assert message == "goal reached" and values["side"] == "left", values
    assert values["goal_distance_m"] < 0.05 and values["steps"] == len(episode.obs)
    _, positions, velocities = scene.joint_state()
    assert np.hypot(*velocities) > 0.0
    kinds = [s.kind for s in scene.shapes()]
    assert kinds == ["cylinder", "cylinder", "sphere", "line_strip"], kinds
    trail = scene.shapes()[3].points
    assert len(trail) == len(episode.obs) + 1 and trail[-1][:2] == pytest.approx(positions)
    assert scene.shapes()[1].color[1] > 0.7, "the goal zone turns green"
    _drive(scene, _expert(-1.0), 3)
    assert scene.success, "success is latched once reached"


def test_touching_the_post_stops_the_reacher_until_reset():
    scene = get_family("detour").make_scene("post", 0)
    assert scene.status()[1]["side"] == "none"
    for _ in range(40):
        scene.set_command(["vx", "vy"], [1.0, 0.0])   # straight at the post
        scene.step()
    assert scene.collided and not scene.success
    message, values = scene.status()
    assert message == "hit the post" and values["collided"], values
    stopped = list(scene.joint_state()[1])
    assert scene.joint_state()[2] == [0.0, 0.0]
    assert stopped[0] < scene.env.post[0], "it stopped in front of the post"
    assert scene.shapes()[0].color[0] > 0.8, "the post turns red"
    assert scene.reset() == 1 and not scene.collided and scene.steps == 0
    assert len(scene.shapes()[3].points) == 1
    assert list(scene.joint_state()[1]) != stopped


def test_bad_commands_name_the_valid_elements():
    scene = get_family("detour").make_scene("post", 0)
    with pytest.raises(ValueError, match=r"\['vx', 'vy'\]"):
        scene.set_command(["ee_vx"], [0.1])
    with pytest.raises(ValueError, match="NaN"):
        scene.set_command(["vx"], [float("nan")])
    with pytest.raises(ValueError, match="valid choices"):
        get_family("detour").make_scene("wall", 0)

"""Dressing teachers: the scripted expert as a teacher file, and SAC from demonstrations."""

import numpy as np
import pytest
import torch

pytest.importorskip("pybullet")
pytest.importorskip("stable_baselines3")

from distill_ros.tasks.dressing.env import DressingEnv  # noqa: E402
from distill_ros.tasks.dressing.evaluate import final_ratio  # noqa: E402
from distill_ros.tasks.dressing.expert import expert_action  # noqa: E402
from distill_ros.tasks.dressing.family import ACT_SPEC, OBS_SPEC  # noqa: E402
from distill_ros.teachers import load_teacher, teacher_file  # noqa: E402
from distill_ros.teachers.config import TeacherConfig  # noqa: E402
from distill_ros.teachers.train import train_teacher  # noqa: E402

pytestmark = pytest.mark.usefixtures("garment_cache")   # test/conftest.py


def _states(task: str, seed: int, steps: int) -> np.ndarray:
    """Privileged states along the numpy expert's own episode."""
    env = DressingEnv(task)
    try:
        obs, _ = env.reset(seed=seed)
        states = [obs]
        for _ in range(steps):
            obs, *_ = env.step(expert_action(obs))
            states.append(obs)
        return np.stack(states)
    finally:
        env.close()


def _final_ratio(task: str, seed: int, act) -> float:
    """The dressed ratio at the end (success or horizon) of an episode of `act(state, rng)`."""
    env = DressingEnv(task)
    rng = np.random.default_rng(seed)
    try:
        return final_ratio(env, lambda obs: act(obs[0], rng)[None], seed)[0]
    finally:
        env.close()


def test_scripted_teacher_file_acts_as_the_numpy_expert(tmp_path):
    cfg = TeacherConfig(algo="scripted")
    out = tmp_path / "teachers" / "f2e0"
    path = train_teacher("dressing", "f2e0", cfg, out, seed=0)
    assert path == out / "teacher.pt" and path.is_file()
    assert teacher_file(tmp_path, {}, "f2e0") == path          # the run finds it
    assert teacher_file(tmp_path, {}, "f0e0").name == "teacher.zip"
    states = _states("f2e0", seed=4, steps=6)
    teacher = load_teacher(path, OBS_SPEC, ACT_SPEC)           # TorchScript, via the loader
    want = np.stack([expert_action(s) for s in states])
    assert np.abs(want).max() > 0.1                            # it is moving the gripper
    np.testing.assert_allclose(teacher.act(states), want, atol=1e-6)


@pytest.mark.parametrize("bad, match", [
    (dict(algo="ppo", demo_episodes=2), "set algo: sac"),
    (dict(algo="sac", bc_steps=10), "demo_episodes > 0"),
    (dict(algo="sac", demo_noise=-0.1), "demo_noise must be >= 0"),
    (dict(algo="dagger"), "teachers.algo"),
])
def test_teacher_settings_are_checked(bad, match):
    with pytest.raises(ValueError, match=match):
        TeacherConfig(**bad)


def test_unknown_scripted_expert_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match="dressing_expert"):
        train_teacher("dressing", "f0e0", TeacherConfig(algo="scripted", expert="nope"),
                      tmp_path, seed=0)


@pytest.mark.slow
def test_sac_from_demonstrations_beats_random_on_one_range(tmp_path):
    """Tiny budget: 4 noisy expert episodes, cloning, then 96 steps of SAC's own (real physics).

    The teacher is SB3's SAC .zip acting deterministically; the comparison is the dressed
    ratio at the end of episodes (success or horizon) on seeds neither training nor the
    demonstrations used.
    """
    torch.manual_seed(0)
    cfg = TeacherConfig(algo="sac", timesteps=96, n_envs=4, batch_size=64, learning_rate=1e-4,
                        checkpoint_every=1000, demo_episodes=4, bc_steps=500,
                        ent_coef_init=0.01)
    path = train_teacher("dressing", "f0e0", cfg, tmp_path, seed=1)
    assert path.name == "teacher.zip" and (tmp_path / "demos.npz").is_file()
    teacher = load_teacher(path, OBS_SPEC, ACT_SPEC)
    low, high = np.asarray(ACT_SPEC.low), np.asarray(ACT_SPEC.high)
    seeds = (900, 901, 902)
    learned = [_final_ratio("f0e0", s, lambda o, _: teacher.act(o[None])[0]) for s in seeds]
    chance = [_final_ratio("f0e0", s, lambda _, rng: rng.uniform(low, high)) for s in seeds]
    assert np.mean(learned) > np.mean(chance) + 0.3, (learned, chance)

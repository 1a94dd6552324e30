"""The distiller learns the teacher's mapping, is seeded, and restores its state."""

import numpy as np
import pytest
import torch

from distill_ros.config import StudentConfig
from distill_ros.distill.behavior_cloning import Distillation
from distill_ros.rollout import run_episode
from distill_ros.students.factory import build_student
from distill_ros.tasks.base import get_family, make_env
from distill_ros.teachers import load_teacher

FAM = get_family("grasp")


def _expert_data(expert_file, episodes=8):
    teacher = load_teacher(expert_file, FAM.obs_spec, FAM.act_spec)
    env = make_env("grasp", "cube")
    eps = [run_episode(env, teacher.act, seed) for seed in range(episodes)]
    env.close()
    obs = np.concatenate([e.obs for e in eps])
    return obs, teacher.act(obs)


def _train(obs, act, arch="mlp", steps=150, seed=0):
    torch.manual_seed(seed)
    student = build_student(StudentConfig(arch=arch, hidden=[64, 64], d_model=32),
                            FAM.obs_spec, FAM.act_spec)
    student.set_normalizer(obs)
    algo = Distillation(student, learning_rate=3e-3)
    o, a = torch.from_numpy(obs), torch.from_numpy(act)
    first = algo.evaluate(o, a)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(o), (128,), generator=gen)
        algo.update(o[idx], a[idx])
    return algo, first, algo.evaluate(o, a)


def test_loss_falls_for_both_students(expert_file):
    obs, act = _expert_data(expert_file)
    for arch in ("mlp", "transformer"):
        _, first, last = _train(obs, act, arch)
        assert last < 0.3 * first, f"{arch}: loss {first:.4f} -> {last:.4f} did not fall enough"


def test_seeded_runs_give_identical_students(expert_file):
    obs, act = _expert_data(expert_file, 3)
    a, _, _ = _train(obs, act, steps=20)
    b, _, _ = _train(obs, act, steps=20)
    for (name, p), q in zip(a.student.state_dict().items(), b.student.state_dict().values()):
        assert torch.equal(p, q), f"{name} differs between two runs with the same seed"


def test_save_load_restores_weights_and_normaliser(tmp_path, expert_file):
    obs, act = _expert_data(expert_file, 3)
    algo, _, _ = _train(obs, act, steps=10)
    algo.save(tmp_path / "s.pt", epoch=3)
    fresh, _, _ = _train(obs + 1.0, act, steps=1, seed=5)
    assert fresh.load(tmp_path / "s.pt")["epoch"] == 3
    x = torch.from_numpy(obs[:16])
    assert torch.equal(fresh.student(x), algo.student(x)), "normaliser or weights not restored"


def test_on_policy_buffer_aggregates_teacher_labels(expert_file):
    """DAgger's verbs exist: the student acts, teacher labels are stored and bounded."""
    obs, act = _expert_data(expert_file, 2)
    algo, _, _ = _train(obs, act, steps=1)
    algo.buffer_size = 10
    for i in range(4):
        algo.process_env_step(obs[i * 4:(i + 1) * 4], act[i * 4:(i + 1) * 4])
    b_obs, b_act = algo.buffer()
    assert len(b_obs) <= 12 and np.array_equal(b_obs[-4:], obs[12:16])
    assert algo.act(obs[:2]).shape == (2, FAM.act_spec.dim)


def test_truncated_student_checkpoint_names_the_file(tmp_path, expert_file):
    obs, act = _expert_data(expert_file, 2)
    algo, _, _ = _train(obs, act, steps=1)
    algo.save(tmp_path / "latest.pt")
    data = (tmp_path / "latest.pt").read_bytes()
    (tmp_path / "latest.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"student checkpoint .*latest.pt cannot be loaded"):
        algo.load(tmp_path / "latest.pt")

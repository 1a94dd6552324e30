"""DAgger's weight average (`dagger.ema_decay`): what it holds, who uses it, and resume."""

import dataclasses

import numpy as np
import pytest
import torch
from test_dagger_run import ACT, OBS, _cfg, _job

from distill_ros.config import StudentConfig
from distill_ros.distill.dagger.algorithm import DAgger, student_act
from distill_ros.distill.dagger.buffer import ReplayBuffer
from distill_ros.distill.dagger.config import BetaConfig
from distill_ros.distill.dagger.runner import train_dagger, trained_student
from distill_ros.students.factory import build_student


def _learner(decay: float, updates: int) -> DAgger:
    """A DAgger learner over a buffer of 200 random labelled states (seeded)."""
    torch.manual_seed(0)
    student = build_student(StudentConfig(hidden=[32, 32]), OBS, ACT)
    buffer = ReplayBuffer(500, {"obs": ((7,), np.float32)}, 2, False, "fifo", 0)
    rng = np.random.default_rng(0)
    buffer.add({"obs": rng.normal(size=(200, 7)).astype(np.float32)},
               rng.uniform(-1, 1, (200, 2)).astype(np.float32), None, np.zeros(200, np.int32))
    return DAgger(student, buffer, _cfg(ema_decay=decay, updates_per_round=updates))


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(v, b[k]) for k, v in a.items())


def test_the_average_follows_every_update_and_is_what_acts():
    """avg <- d avg + (1 - d) w after each optimiser step; the raw weights train as without."""
    averaged, twin = _learner(0.8, updates=5), _learner(0.0, updates=1)
    want = {k: v.clone() for k, v in twin.student.state_dict().items()}
    trained = {name for name, _ in twin.student.named_parameters()}
    averaged.update()
    for _ in range(5):   # the same batches one step at a time (the buffer's seeded sampler)
        twin.update()
        for k, v in twin.student.state_dict().items():
            want[k] = 0.8 * want[k] + 0.2 * v if k in trained else v   # buffers: copied
    assert _same(averaged.student.state_dict(), twin.student.state_dict()), \
        "the average changed the trained weights"
    policy = averaged.get_policy()
    assert policy is averaged.average and twin.get_policy() is twin.student
    for k, v in policy.state_dict().items():
        torch.testing.assert_close(v, want[k], msg=f"average of {k}")
    assert not _same(policy.state_dict(), averaged.student.state_dict())
    obs = {"obs": np.random.default_rng(1).normal(size=(16, 7)).astype(np.float32)}
    acted = averaged.act(obs)[0]
    assert np.array_equal(acted, student_act(policy, obs)[0])
    assert not np.allclose(acted, student_act(averaged.student, obs)[0])


def test_a_refitted_normaliser_reaches_the_average_at_the_next_update():
    """Buffers are copied, not averaged: a normaliser fitted between updates is the
    average's too after the next update, exactly (an averaged mean would lag it)."""
    learner = _learner(0.9, updates=1)
    learner.update()
    before = {k: v.clone() for k, v in learner.average.named_buffers()}
    assert before, "the student has no buffers to check"
    shifted = np.random.default_rng(2).normal(5.0, 3.0, size=(64, 7)).astype(np.float32)
    learner.student.set_normalizer({"obs": shifted})
    learner.update()
    for k, v in learner.average.named_buffers():
        student = dict(learner.student.named_buffers())[k]
        assert torch.equal(v, student), f"the average's {k} is not the student's"
    assert any(not torch.equal(v, before[k]) for k, v in learner.average.named_buffers()), \
        "the refit did not change any buffer: the check proves nothing"


def test_resume_restores_the_average_and_it_is_the_handed_on_student(tmp_path):
    """A run stopped after 2 rounds and resumed ends bit for bit as a run never stopped."""
    cfg = _cfg(rounds=4, ema_decay=0.9, beta=BetaConfig(schedule="constant", start=0.5))
    train_dagger(dataclasses.replace(cfg, rounds=2), _job(tmp_path / "resumed"))
    train_dagger(cfg, _job(tmp_path / "resumed"))
    train_dagger(cfg, _job(tmp_path / "straight"))
    a, b = (torch.load(tmp_path / name / "latest.pt", weights_only=False)
            for name in ("resumed", "straight"))
    assert _same(a["student_average"], b["student_average"]), "the average was not restored"
    assert _same(a["student"], b["student"])
    assert not _same(a["student_average"], a["student"])
    handed_on = trained_student(tmp_path / "resumed", _job(tmp_path).build_student)
    assert _same(handed_on.state_dict(), a["student_average"]), \
        "export and eval read trained_student: it must be the average"
    plain = _cfg(rounds=5, beta=BetaConfig(schedule="constant", start=0.5))
    train_dagger(plain, _job(tmp_path / "plain"))   # no average saved
    with pytest.raises(ValueError, match="student_average"):
        train_dagger(dataclasses.replace(cfg, rounds=6), _job(tmp_path / "plain"))


def test_workers_and_evaluation_act_with_the_average(tmp_path):
    """The student drives from round 2: the visited states follow the policy that acted."""
    seen = []

    def validate(student):
        seen.append({k: v.clone() for k, v in student.state_dict().items()})
        return 0.0
    cfg = _cfg(rounds=2, ema_decay=0.9, keep="best", eval_every=2, eval_episodes=1,
               beta=BetaConfig(schedule="constant", start=0.0))
    states = {}
    for workers in (0, 1):
        job = dataclasses.replace(_job(tmp_path / str(workers)), validate=validate)
        train_dagger(dataclasses.replace(cfg, rollout_workers=workers), job)
        state = torch.load(tmp_path / str(workers) / "latest.pt", weights_only=False)
        states[workers] = state
        assert _same(seen[-1], state["student_average"]), "validation read the raw weights"
    assert np.array_equal(states[0]["buffer"]["obs"]["obs"], states[1]["buffer"]["obs"]["obs"])
    raw = dataclasses.replace(cfg, ema_decay=0.0, keep="last")
    train_dagger(raw, _job(tmp_path / "raw"))
    other = torch.load(tmp_path / "raw" / "latest.pt", weights_only=False)
    assert not np.array_equal(states[0]["buffer"]["obs"]["obs"], other["buffer"]["obs"]["obs"])

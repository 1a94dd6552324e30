"""RL fine-tuning after DAgger (`dagger.finetune`): the reward moves a student its labels
cannot, the distillation term holds it, and a killed run resumes to the same weights."""

import functools

import numpy as np
import pytest
import torch

from distill_ros.distill.dagger.algorithm import student_input
from distill_ros.distill.dagger.collect import evaluation_counts, round_seeds
from distill_ros.distill.dagger.config import DaggerConfig, FinetuneConfig
from distill_ros.distill.dagger.envs import group_spec, make_vector_env
from distill_ros.distill.dagger.finetune import advantages, finetune, finetuned
from distill_ros.distill.dagger.runner import DaggerJob, train_dagger, trained_student
from distill_ros.students.config import StudentConfig
from distill_ros.students.factory import build_student
from distill_ros.tasks import toy

TASKS = list(toy.TASKS[:2])
STUDENT = ["proprio", "command"]
SHAPES = {"proprio": (3,), "command": (3,), "command_mask": (3,)}


class SlowExpert:
    """The toy's expert at a quarter of its gain: it reaches the goal, slowly.

    Its return (minus the distance, summed until success) is far from the best, so a
    student that copies it exactly has room the reward can see and the labels cannot.
    """

    def act(self, obs):
        return toy.expert_action(obs[:, :9], gain=2.0)


def _make(task):
    return toy.ToyEnv(task, groups=("state", *STUDENT))


def _student(shapes):
    return build_student(StudentConfig(hidden=[64, 64]), group_spec(shapes), toy.ACT_SPEC)


def _config(**finetune):
    settings = dict(iterations=12, steps=64, warmup=2, noise=0.2, learning_rate=3e-4,
                    critic_learning_rate=1e-3, critic_hidden=[64, 64], epochs=4,
                    batch_size=128, gamma=0.95, distill_weight=0.0)
    settings.update(finetune)
    return DaggerConfig(n_envs=len(TASKS), vector="sync", rounds=8, steps_per_round=50,
                        updates_per_round=200, batch_size=128, eval_every=8, eval_episodes=1,
                        teacher_groups=["state"], student_groups=STUDENT,
                        finetune=FinetuneConfig(**settings))


def _job(out):
    return DaggerJob(make_env=_make, tasks=TASKS, build_student=_student,
                     load_teacher=lambda task: SlowExpert(), out_dir=out, seed=0)


def _distilled(out):
    cfg = _config()
    train_dagger(cfg, _job(out))
    return cfg, trained_student(out, _student)


def _mean_return(student, episodes=8):
    envs = make_vector_env(_make, TASKS, "sync")
    try:
        act = functools.partial(_act, student)
        _, finished, returns = evaluation_counts(envs, act, STUDENT, episodes,
                                                 round_seeds(321, 0, len(TASKS)))
    finally:
        envs.close()
    return float(returns.sum() / finished.sum())


def _act(student, groups):
    x = {k: torch.as_tensor(v) for k, v in groups.items()}
    with torch.no_grad():
        return student(*student_input(x).values()).numpy()


def test_advantages_stop_at_falls_and_bootstrap_cuts():
    # one env, four steps: a fall at step 1 (no future), a cut at step 3 (bootstrapped)
    r = np.array([[1.0], [2.0], [0.5], [1.0]])
    v = np.array([[0.3], [0.2], [0.4], [0.1]])
    nv = np.array([[0.2], [9.0], [0.1], [5.0]])
    terminal = np.array([[False], [True], [False], [False]])
    cut = np.array([[False], [False], [False], [True]])
    adv = advantages(r, v, nv, terminal, cut, gamma=0.9, lam=0.5)
    d = [1.0 + 0.9 * 0.2 - 0.3, 2.0 - 0.2, 0.5 + 0.9 * 0.1 - 0.4, 1.0 + 0.9 * 5.0 - 0.1]
    expected = [d[0] + 0.45 * d[1], d[1], d[2] + 0.45 * d[3], d[3]]
    np.testing.assert_allclose(adv[:, 0], expected, rtol=1e-12)


def test_reward_speeds_up_a_student_distilled_from_a_slow_expert(tmp_path):
    cfg, student = _distilled(tmp_path)
    before = _mean_return(student)
    figures = finetune(cfg, _job(tmp_path), student)
    after = _mean_return(student)
    assert figures["iterations"] == 12
    # the distilled student copies the slow expert (-4.6 an episode on these starts; the
    # toy's own expert, at 4x the gain, scores -2.1): the reward alone (distill_weight 0)
    # took it to -3.2 in 12 iterations here; a quarter of the way is the floor
    assert after > before + 0.6, (before, after)
    assert (tmp_path / "finetune.pt").is_file()


def test_distillation_term_holds_the_student_to_its_teacher(tmp_path):
    cfg, student = _distilled(tmp_path)
    cfg = _config(distill_weight=1000.0)
    start = {k: v.clone() for k, v in student.state_dict().items()}
    figures = finetune(cfg, _job(tmp_path), student)
    free = _config()
    loose = _student(SHAPES)
    loose.load_state_dict(start)
    (tmp_path / "finetune.pt").unlink()
    free_figures = finetune(free, _job(tmp_path), loose)
    # on the same iterations and seeds, the distillation term keeps the student's actions
    # close to the teacher's labels (MSE 1e-4 here), the reward alone does not (2e-2)
    assert figures["last_label_mse"] < 0.25 * free_figures["last_label_mse"], (
        figures, free_figures)


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    _, student = _distilled(tmp_path / "a")
    cfg6 = _config(iterations=6)
    whole = _student(SHAPES)
    whole.load_state_dict(student.state_dict())
    resumed = _student(SHAPES)
    resumed.load_state_dict(student.state_dict())
    finetune(cfg6, _job(tmp_path / "a"), whole)
    # the same run stopped after 4 iterations, then resumed from its checkpoint
    out_b = tmp_path / "b"
    out_b.mkdir()
    finetune(_config(iterations=4), _job(out_b), resumed)
    again = _student(SHAPES)
    finetune(cfg6, _job(out_b), again)  # loads iteration 4's weights, runs 5 and 6
    for k, v in whole.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v, rtol=0, atol=0)
    assert finetuned(out_b, resumed).state_dict().keys() == whole.state_dict().keys()


@pytest.mark.parametrize("bad, message", [
    (dict(iterations=-1), "dagger.finetune.iterations must be >= 0"),
    (dict(noise=0.0), "dagger.finetune.noise must be > 0"),
    (dict(gamma=1.5), "dagger.finetune.gamma must be in"),
    (dict(iterations=5, warmup=5), "warmup (5) must be under"),
    (dict(critic_hidden=[]), "critic_hidden must list"),
])
def test_bad_settings_name_the_key(bad, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FinetuneConfig(**bad)


def test_humanoid_finetune_config_is_the_quick_config_plus_finetuning():
    import dataclasses

    from conftest import REPO

    from distill_ros.config import load_config

    quick = load_config(REPO / "config" / "humanoid_quick.yaml")
    tuned = load_config(REPO / "config" / "humanoid_finetune.yaml")
    assert quick.dagger.finetune.iterations == 0 and tuned.dagger.finetune.iterations == 80
    # the same student, DAgger and eval: only the fine-tuning differs
    assert dataclasses.replace(tuned.dagger, finetune=FinetuneConfig()) == quick.dagger
    assert (tuned.student, tuned.tasks, tuned.eval) == (quick.student, quick.tasks, quick.eval)
    # off, the new section is not recorded: runs from before it keep their config hash
    assert "finetune" not in quick.to_dict()["dagger"]
    assert tuned.to_dict()["dagger"]["finetune"]["iterations"] == 80


def test_a_diverged_student_stops_the_run_with_the_fix(tmp_path):
    student = _student(SHAPES)
    with torch.no_grad():
        next(student.parameters()).fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="Lower dagger.finetune.learning_rate"):
        finetune(_config(), _job(tmp_path), student)

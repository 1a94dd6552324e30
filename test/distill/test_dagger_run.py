"""DAgger end to end on a tiny point-mass env: routing, budget, resume after SIGKILL, learning."""

import dataclasses
import functools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from distill_ros.config import StudentConfig
from distill_ros.distill.dagger.collect import evaluation_counts
from distill_ros.distill.dagger.config import BetaConfig, DaggerConfig
from distill_ros.distill.dagger.routing import TeacherRouter, assign_tasks
from distill_ros.distill.dagger.runner import DaggerJob, train_dagger, trained_student
from distill_ros.spec import Spec
from distill_ros.students.factory import build_student

GOALS = {"a": (0.6, 0.0), "b": (-0.6, 0.0), "c": (0.0, 0.6)}
OBS = Spec(("px", "py", "gx", "gy", "wind_x", "wind_y", "task_id"))
ACT = Spec(("vx", "vy"), low=(-1.0, -1.0), high=(1.0, 1.0))
STEP = 0.1   # m per step at full speed


class PointEnv(gym.Env):
    """Reach the task's goal. Calm: start at the origin (±2 cm). Perturbed: start anywhere in
    ±0.8 m and a steady wind of up to 0.6 of full speed, observed, that the policy must hold
    against."""

    def __init__(self, task: str, perturbed: bool = True, steps: int = 25) -> None:
        self.goal, self.task_id = np.array(GOALS[task]), float(sorted(GOALS).index(task))
        self.spread, self.wind_max = (0.8, 0.06) if perturbed else (0.02, 0.0)
        self.steps = steps
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (7,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def _obs(self):
        return np.array([*self.p, *self.goal, *self.wind, self.task_id], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.p = self.np_random.uniform(-self.spread, self.spread, 2)
        self.wind, self.t = self.np_random.uniform(-self.wind_max, self.wind_max, 2), 0
        return self._obs(), {"is_success": False}

    def step(self, action):
        self.p = np.clip(self.p + STEP * np.clip(action, -1, 1) + self.wind, -1.5, 1.5)
        self.t += 1
        success = bool(np.linalg.norm(self.p - self.goal) < 0.05)
        return self._obs(), -np.linalg.norm(self.p - self.goal), False, self.t >= self.steps, {
            "is_success": success}


class Expert:
    """Proportional controller to the goal that cancels the wind (reads both from the obs)."""

    def act(self, obs):
        return np.clip(4.0 * (obs[:, 2:4] - obs[:, 0:2]) - obs[:, 4:6] / STEP, -1, 1
                       ).astype(np.float32)


class Constant:
    """A teacher that always answers `value` (tells the tasks' teachers apart)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def act(self, obs):
        return np.full((len(obs), 2), self.value, np.float32)


def _job(tmp_path, teachers=None, perturbed=True, tasks=("a", "b", "c"), seed=0):
    def student(shapes):
        assert shapes == {"obs": (7,)}
        return build_student(StudentConfig(hidden=[64, 64]), OBS, ACT)
    return DaggerJob(make_env=functools.partial(PointEnv, perturbed=perturbed), tasks=list(tasks),
                     build_student=student,
                     load_teacher=teachers or (lambda task: Expert()),
                     out_dir=Path(tmp_path), seed=seed)


def _cfg(**kw):
    base = dict(n_envs=3, vector="sync", rounds=3, steps_per_round=30, updates_per_round=20,
                batch_size=64, eval_episodes=2, buffer_size=5000,
                beta=BetaConfig(schedule="linear", start=1.0, end=0.0, horizon=300))
    base.update(kw)
    return DaggerConfig(**base)


def test_task_assignment_round_robin_and_weights():
    assert assign_tasks(["a", "b"], 5) == ["a", "b", "a", "b", "a"]
    assert assign_tasks(["a", "b", "c"], 8, [2, 1, 1]) == ["a"] * 4 + ["b"] * 2 + ["c"] * 2
    with pytest.raises(ValueError, match="n_envs is 2 but the run has 3 tasks"):
        assign_tasks(["a", "b", "c"], 2)
    with pytest.raises(ValueError, match="task_weights has 2 values for 3 tasks"):
        assign_tasks(["a", "b", "c"], 4, [1, 1])


def test_router_sends_each_env_to_its_own_tasks_teacher_loaded_once():
    loads = []

    def load(task):
        loads.append(task)
        return Constant({"a": 0.1, "b": 0.2, "c": 0.3}[task])
    env_tasks = assign_tasks(["a", "b", "c"], 7, [1, 2, 1])
    router = TeacherRouter(env_tasks, load, act_dim=2, gaussian=False)
    for _ in range(5):
        mean, std = router.label(np.zeros((7, 5), np.float32))
    want = [{"a": 0.1, "b": 0.2, "c": 0.3}[t] for t in env_tasks]
    assert np.allclose(mean[:, 0], want) and std is None
    assert sorted(loads) == ["a", "b", "c"], f"teachers loaded {loads}, once each expected"
    assert router.queries == 35


@pytest.mark.parametrize("vector", ["sync", "async"])
def test_every_stored_state_is_labelled_by_its_envs_task_teacher(tmp_path, vector):
    values = {"a": -0.5, "b": 0.25, "c": 0.75}
    job = _job(tmp_path, teachers=lambda task: Constant(values[task]))
    cfg = _cfg(n_envs=5, vector=vector, rounds=1, updates_per_round=1,
               beta=BetaConfig(schedule="constant", start=0.5))
    train_dagger(cfg, job)
    state = torch.load(tmp_path / "latest.pt", weights_only=False)
    obs, mean = state["buffer"]["obs"]["obs"], state["buffer"]["mean"]
    assert len(mean) == 5 * 30
    task_of_state = [sorted(GOALS)[int(i)] for i in obs[:, 6]]
    assert np.allclose(mean[:, 0], [values[t] for t in task_of_state]), \
        "a state was labelled by another task's teacher"
    for k in range(3):
        assert np.unique(obs[state["buffer"]["task"] == k, 6]).tolist() == [k], \
            "the stored task index disagrees with the state's env"


def test_teacher_query_budget_stops_the_run_and_curves_are_reported(tmp_path):
    job = _job(tmp_path)
    job.report_dir = tmp_path / "report"
    out = train_dagger(_cfg(rounds=50, max_teacher_queries=200), job)
    assert out["stopped_by_budget"] and out["teacher_queries"] <= 200
    assert out["teacher_queries"] > 200 - 3, "stopped earlier than the budget needed"
    assert out["rounds"] == 3, "30 steps x 3 envs per round: the budget ends round 3"
    curves = json.loads((tmp_path / "report" / "dagger_curves.json").read_text())
    assert [c["queries"] for c in curves] == [90, 180, 198]
    assert all(0.0 <= c["success"] <= 1.0 for c in curves)
    assert (tmp_path / "report" / "dagger_curves.png").read_bytes()[:4] == b"\x89PNG"
    again = train_dagger(_cfg(rounds=50, max_teacher_queries=200), _job(tmp_path))
    assert again["teacher_queries"] == out["teacher_queries"], "a finished run collected more"


def test_the_optimiser_steps_with_the_decayed_learning_rate(tmp_path):
    train_dagger(_cfg(learning_rate=1e-3, learning_rate_final=1e-4), _job(tmp_path))
    state = torch.load(tmp_path / "latest.pt", weights_only=False)
    assert [g["lr"] for g in state["optimizer"]["param_groups"]] == pytest.approx([1e-4])


def test_evaluation_returns_sum_each_counted_episodes_rewards():
    def env(steps):   # reward 1 per step: an episode's return is its length
        return gym.wrappers.TransformReward(PointEnv("a", steps=steps), lambda r: 1.0)
    envs = gym.vector.SyncVectorEnv([functools.partial(env, 5), functools.partial(env, 8)])
    wins, finished, returns = evaluation_counts(
        envs, lambda g: np.zeros((2, 2), np.float32), [], 3, [1, 2])
    envs.close()
    assert finished.tolist() == [3, 3] and returns.tolist() == [15.0, 24.0]


def test_keep_best_hands_on_the_weights_of_the_best_evaluation_not_the_last(tmp_path):
    """Without a family validation the score is the evaluation episodes' mean return."""
    cfg = _cfg(rounds=6, eval_every=1, eval_episodes=1, keep="best",
               learning_rate=3e-3, beta=BetaConfig(schedule="constant", start=0.5))
    out = train_dagger(cfg, _job(tmp_path))
    state = torch.load(tmp_path / "latest.pt", weights_only=False)
    scores = [row["score"] for row in state["curves"]]
    assert scores == [row["mean_return"] for row in state["curves"]]
    assert len(scores) == 6 and all(r < 0 for r in scores)   # minus distances: negative
    best = int(np.argmax(scores))
    assert out["kept_round"] == state["best"]["round"] == best + 1
    kept = trained_student(tmp_path, _job(tmp_path).build_student).state_dict()
    for key, value in state["best"]["student"].items():
        assert torch.equal(kept[key], value)
    assert best + 1 < 6, "this seed's last round is its best: the test shows nothing"
    assert any(not torch.equal(state["student"][k], v) for k, v in kept.items())
    with pytest.raises(ValueError, match="dagger.keep must be one of"):
        _cfg(keep="best_return")


def test_keep_best_ranks_by_the_familys_validation_when_it_has_one(tmp_path):
    seen = []

    def validate(student):   # a score that peaks at the second evaluation (round 4)
        seen.append({k: v.clone() for k, v in student.state_dict().items()})
        return [1.0, 5.0, 2.0][len(seen) - 1]
    job = dataclasses.replace(_job(tmp_path), validate=validate)
    out = train_dagger(_cfg(rounds=6, eval_every=2, eval_episodes=1, keep="best"), job)
    assert out["kept_round"] == 4 and len(seen) == 3
    kept = trained_student(tmp_path, job.build_student).state_dict()
    assert all(torch.equal(kept[k], v) for k, v in seen[1].items())


def test_action_noise_moves_the_visited_states_but_labels_stay_the_teachers(tmp_path):
    def buffer(name, noise):
        cfg = _cfg(rounds=2, updates_per_round=1, action_noise=noise,
                   beta=BetaConfig(schedule="constant", start=1.0))
        train_dagger(cfg, _job(tmp_path / name, perturbed=False))
        state = torch.load(tmp_path / name / "latest.pt", weights_only=False)["buffer"]
        return np.asarray(state["obs"]["obs"]), np.asarray(state["mean"])

    (clean, _), (noisy, labels), (again, _) = (buffer("clean", 0.0), buffer("noisy", 0.3),
                                               buffer("again", 0.3))
    assert np.array_equal(noisy, again), "the noise is not seeded"
    np.testing.assert_allclose(labels, Expert().act(noisy), atol=1e-6)
    spread = np.abs(noisy[:, :2] - clean[:, :2]).max()
    assert spread > 0.05, f"noise of 0.3 moved the states by at most {spread:.3f} m"


CHILD = """
import logging, sys
sys.path.insert(0, {here!r})
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
from test_dagger_run import _cfg, _job
from distill_ros.distill.dagger.runner import train_dagger
import torch; torch.set_num_threads(1)
train_dagger(_cfg(rounds={rounds}, steps_per_round=60, updates_per_round=60,
                  buffer_mode="reservoir", buffer_size=300), _job({out!r}))
"""


def _strip(curves):
    return [{k: v for k, v in row.items() if k != "wall_s"} for row in curves]


def test_resume_after_sigkill_ends_with_the_same_numbers(tmp_path):
    rounds = 20  # the kill lands after round 3: the child cannot finish first under load
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    code = CHILD.format(here=str(Path(__file__).parent), rounds=rounds, out=str(killed))
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "dagger round 3:" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen[-20:])
    done = torch.load(killed / "latest.pt", weights_only=False)["round"]
    assert 3 <= done < rounds, f"killed after round {done}: not mid-run"
    cfg = _cfg(rounds=rounds, steps_per_round=60, updates_per_round=60,
               buffer_mode="reservoir", buffer_size=300)
    resumed = train_dagger(cfg, _job(killed))
    straight = train_dagger(cfg, _job(clean))
    a = torch.load(killed / "latest.pt", weights_only=False)
    b = torch.load(clean / "latest.pt", weights_only=False)
    for name, p in a["student"].items():
        assert torch.equal(p, b["student"][name]), f"{name} differs after resume"
    assert _strip(a["curves"]) == _strip(b["curves"])
    assert np.array_equal(a["buffer"]["mean"], b["buffer"]["mean"])
    assert resumed["teacher_queries"] == straight["teacher_queries"] == rounds * 180


def _success(out_dir, perturbed, episodes=30):
    """Success of the student saved in `out_dir`, in calm or perturbed episodes."""
    student = trained_student(out_dir, lambda shapes: build_student(
        StudentConfig(hidden=[64, 64]), OBS, ACT))
    wins = 0
    for task in GOALS:
        env = PointEnv(task, perturbed)
        for ep in range(episodes):
            obs, info = env.reset(seed=10_000 + ep)
            done = False
            while not done:
                obs, _, _, trunc, info = env.step(student.act(obs[None])[0])
                done = trunc or info["is_success"]
            wins += info["is_success"]
    return wins / (episodes * len(GOALS))


def test_dagger_recovers_where_the_offline_student_fails(tmp_path):
    """Teacher demos in calm episodes; evaluation in perturbed ones (wide starts, wind).

    Offline: the student learns only from the teacher's own calm trajectories (β = 1), so
    perturbed states are states it never saw. DAgger: the student drives (β decays to 0) in
    perturbed episodes and the teachers label where it goes.
    """
    common = dict(rounds=12, steps_per_round=50, updates_per_round=150, batch_size=128)
    offline = train_dagger(_cfg(**common, beta=BetaConfig(schedule="constant", start=1.0)),
                           _job(tmp_path / "offline", perturbed=False))
    dagger = train_dagger(_cfg(**common, beta=BetaConfig(schedule="linear", start=1.0, end=0.0,
                                                         horizon=900)),
                          _job(tmp_path / "dagger", perturbed=True))
    assert offline["teacher_queries"] == dagger["teacher_queries"] == 12 * 150
    narrow = _success(tmp_path / "offline", False)
    s_off, s_dag = _success(tmp_path / "offline", True), _success(tmp_path / "dagger", True)
    assert narrow > 0.9, f"the offline student should solve its own start states ({narrow:.2f})"
    assert s_off < 0.5, f"the offline student should fail in perturbed episodes ({s_off:.2f})"
    assert s_dag > 0.85, f"DAgger success {s_dag:.2f} in perturbed episodes"
    assert s_dag > s_off + 0.3, f"DAgger {s_dag:.2f} vs offline {s_off:.2f}"


class GaussianExpert(Expert):
    """The expert's action as the mean of a Gaussian of std 0.1 (as SB3 PPO/SAC teachers)."""

    def act_distribution(self, obs):
        return self.act(obs), np.full((len(obs), 2), 0.1, np.float32)


@pytest.mark.parametrize("loss", ["forward_kl", "reverse_kl"])
def test_kl_losses_learn_the_teachers_mean_and_std(tmp_path, loss):
    out = train_dagger(_cfg(loss=loss, rounds=8, steps_per_round=50, updates_per_round=150,
                            learning_rate=3e-3,
                            batch_size=128), _job(tmp_path, teachers=lambda t: GaussianExpert()))
    head = torch.load(tmp_path / "latest.pt", weights_only=False)["head"]
    std = torch.exp(head["log_std"])   # normalised units: the action span is 2, so also 0.1
    assert torch.allclose(std, torch.full((2,), 0.1), rtol=0.3), f"student std {std}"
    assert out["success"] > 0.8, f"{loss}: student mean success {out['success']:.2f}"


def test_warm_start_from_the_offline_student(tmp_path):
    torch.manual_seed(7)
    offline = build_student(StudentConfig(hidden=[64, 64]), OBS, ACT)
    offline.set_normalizer(np.random.default_rng(0).normal(size=(50, 7)))
    job = _job(tmp_path)
    with pytest.raises(ValueError, match="init is 'offline' but this run has no offline"):
        train_dagger(_cfg(init="offline", rounds=1, updates_per_round=0), job)
    job.init_student = lambda student: student.load_state_dict(offline.state_dict())
    train_dagger(_cfg(init="offline", rounds=1, updates_per_round=0), job)
    saved = torch.load(tmp_path / "latest.pt", weights_only=False)["student"]
    for name, p in offline.state_dict().items():
        assert torch.equal(saved[name], p), f"{name}: not the offline student's (or refitted)"


def test_random_push_moves_the_start_reproducibly():
    from distill_ros.distill.dagger.perturb import RandomPush

    calm = PointEnv("a", perturbed=False)
    pushed = RandomPush(PointEnv("a", perturbed=False), push_steps=5)
    starts = [pushed.reset(seed=s)[0][:2] for s in (1, 1, 2)]
    assert np.array_equal(starts[0], starts[1]), "same seed, different push"
    assert not np.array_equal(starts[0], starts[2])
    moved = np.linalg.norm(starts[0] - calm.reset(seed=1)[0][:2])
    assert 0.05 < moved <= 5 * STEP * np.sqrt(2) + 1e-6, f"push moved the start {moved:.3f} m"
    with pytest.raises(ValueError, match="ended during a 30-step push"):
        RandomPush(PointEnv("a"), push_steps=30).reset(seed=0)

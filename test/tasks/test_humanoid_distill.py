"""The humanoid pipeline: shipped or user teachers, the DAgger multi-mode student, its export
(a `command` and a `command_mask` input) and the per clip x mode evaluation, on tiny budgets.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO

from distill_ros.config import load_config
from distill_ros.executor import ProcessExecutor
from distill_ros.pipeline import run_stages
from distill_ros.rundir import STAGES, RunDir
from distill_ros.tasks.base import get_family
from distill_ros.tasks.humanoid.commands import EVAL_MODES
from distill_ros.tasks.humanoid.evaluate import eval_jobs, run_eval_job
from distill_ros.teachers import load_teacher, teacher_file
from distill_ros.teachers.deepmimic import DeepMimicTeacher

TINY = {
    "name": "humanoid_tiny", "family": "humanoid", "tasks": ["walk", "jump"],
    "held_out": ["run"], "seed": 0,
    "teachers": {"eval_episodes": 1},
    "student": {"arch": "mlp", "hidden": [32, 32]},
    "distill": {"algorithm": "dagger"},
    "eval": {"episodes": 1},
    "dagger": {"n_envs": 2, "vector": "sync", "teacher_groups": ["state", "heading"],
               "student_groups": ["proprio", "command", "heading"],
               "beta": {"schedule": "linear", "horizon": 40}, "rounds": 2,
               "steps_per_round": 15, "updates_per_round": 10, "batch_size": 16,
               "eval_every": 2, "eval_episodes": 1},
}


def _config(tmp_path, **changes):
    data = {**TINY, **changes}
    path = tmp_path / "humanoid_tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Every stage of the tiny DAgger run (about 1,000 control steps in all)."""
    tmp = tmp_path_factory.mktemp("humanoid")
    cfg = _config(tmp)
    run = run_stages(cfg, tmp / "run", list(STAGES))
    return cfg, run.root


def test_teachers_are_the_shipped_deepmimic_checkpoints(tiny_run):
    cfg, root = tiny_run
    for clip in cfg.tasks:
        report = json.loads((root / "teachers" / clip / "eval.json").read_text())
        assert report["source"].endswith(f"humanoid3d_{clip}.ckpt.index"), report
        assert not (root / "teachers" / clip / "teacher.zip").exists(), "trained one instead"
    fam = get_family("humanoid")
    walk = load_teacher(teacher_file(root, {}, "walk", "humanoid"), fam.obs_spec, fam.act_spec)
    state = np.random.default_rng(0).normal(size=(3, 197)).astype(np.float32)
    np.testing.assert_array_equal(walk.act(state), DeepMimicTeacher.for_clip("walk").act(state))
    # a clip with no shipped policy falls back to a teacher trained in the run
    assert teacher_file(root, {}, "run", "humanoid") == root / "teachers" / "run" / "teacher.zip"


def test_a_users_torchscript_teacher_replaces_the_shipped_one(tmp_path):
    dm = DeepMimicTeacher.for_clip("jump")
    layers = []
    for i, (w, b) in enumerate(dm.weights):
        lin = torch.nn.Linear(*w.shape)
        lin.weight.data, lin.bias.data = torch.from_numpy(w.T.copy()), torch.from_numpy(b)
        layers += [lin] + ([torch.nn.ReLU()] if i < len(dm.weights) - 1 else [])

    class Actor(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(*layers)
            for name in ("s_mean", "s_std", "a_mean", "a_std"):
                self.register_buffer(name, torch.from_numpy(getattr(dm, name)))

        def forward(self, s):
            return self.net((s - self.s_mean) / self.s_std) * self.a_std + self.a_mean

    path = tmp_path / "my_jump.pt"
    torch.jit.save(torch.jit.script(Actor()), str(path))
    cfg = _config(tmp_path, tasks=["jump"], teachers={"eval_episodes": 1,
                                                      "sources": {"jump": str(path)}})
    run_stages(cfg, tmp_path / "run", ["teachers"])
    report = json.loads((tmp_path / "run" / "teachers" / "jump" / "eval.json").read_text())
    assert report["source"] == str(path)
    fam = get_family("humanoid")
    mine = load_teacher(teacher_file(tmp_path, cfg.teachers.sources, "jump", "humanoid"),
                        fam.obs_spec, fam.act_spec)
    state = np.random.default_rng(1).normal(size=(4, 197)).astype(np.float32)
    np.testing.assert_allclose(mine.act(state), dm.act(state), atol=1e-4)


def test_student_reads_proprio_and_a_masked_command_and_exports_with_parity(tiny_run):
    import onnx

    cfg, root = tiny_run
    model = onnx.load(str(root / "export" / "policy.onnx"))
    inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim][1:]
              for i in model.graph.input}
    assert inputs == {"proprio": [196], "command": [51], "command_mask": [51], "heading": [1]}
    with RunDir(root, cfg) as run:
        export = run.ledger["stages"]["export"]
    assert export["max_abs_diff_random"] <= 1e-4 and export["max_abs_diff_real"] <= 1e-4
    state = torch.load(root / "student" / "dagger" / "latest.pt", weights_only=False)
    assert state["queries"] == 2 * 2 * 15  # every step of both envs labelled


def test_per_env_routing_gives_each_clip_its_own_steered_teacher(tiny_run, tmp_path):
    from distill_ros.distill.dagger.routing import TeacherRouter, assign_tasks
    from distill_ros.distill.dagger.stages import dagger_job
    from distill_ros.tasks.humanoid.steering import SteeredTeacher

    cfg, root = tiny_run
    with RunDir(root, cfg) as run:
        job = dagger_job(run, cfg)
    envs = assign_tasks(cfg.tasks, cfg.dagger.n_envs)
    router = TeacherRouter(envs, job.load_teacher, 36, gaussian=False)
    # teacher_groups [state, heading]: the state, then the heading error (rad)
    inputs = np.random.default_rng(2).normal(size=(2, 198)).astype(np.float32)
    inputs[:, -1] = [0.05, -0.1]
    labels, _ = router.label(inputs)
    for row, clip in enumerate(envs):
        expert = DeepMimicTeacher.for_clip(clip)
        np.testing.assert_allclose(labels[row], SteeredTeacher(expert).act(inputs[row]),
                                   atol=1e-6)
        assert np.abs(labels[row] - expert.act(inputs[row, :197])).max() > 1e-3


def test_a_masked_command_element_cannot_change_the_action(tiny_run):
    """The student gets the mask and zeroed values: what is masked has no way in."""
    from distill_ros.runtime.onnx_policy import OnnxPolicy

    _, root = tiny_run
    policy = OnnxPolicy(root / "export" / "policy.onnx", want_gpu=False)
    rng = np.random.default_rng(3)
    n = 64
    obs = {"proprio": rng.normal(size=(n, 196)).astype(np.float32),
           "command": rng.normal(size=(n, 51)).astype(np.float32),
           "command_mask": (rng.random((n, 51)) < 0.5).astype(np.float32),
           "heading": rng.normal(scale=0.2, size=(n, 1)).astype(np.float32)}
    base = policy.act(obs)
    hidden = dict(obs, command=np.where(obs["command_mask"] > 0, obs["command"],
                                        rng.normal(scale=100.0, size=(n, 51))).astype(np.float32))
    np.testing.assert_array_equal(policy.act(hidden), base)
    shown = dict(obs, command=np.where(obs["command_mask"] > 0, obs["command"] + 5.0,
                                       obs["command"]).astype(np.float32))
    assert np.abs(policy.act(shown) - base).max() > 1e-3, "commanded elements had no effect"


def test_eval_on_two_worker_processes_gives_the_serial_rows(tiny_run):
    """The eval stage is per-policy, per-mode jobs; a process pool must not change a number."""
    cfg, root = tiny_run
    serial = json.loads((root / "report" / "eval.json").read_text())["rows"]
    jobs = eval_jobs(root, cfg, EVAL_MODES)
    assert len(jobs) == 2 * 2 + 3 * 3, "teacher and steered teacher per seen clip, 3 modes x 3"
    pool = ProcessExecutor(2)
    try:
        rows = pool.map(run_eval_job, jobs)
    finally:
        pool.shutdown()
    assert rows == serial


def test_eval_reports_every_clip_and_mode_for_teachers_and_student(tiny_run):
    _, root = tiny_run
    report = json.loads((root / "report" / "eval.json").read_text())
    keys = {(r["policy"], r["clip"], r["mode"]) for r in report["rows"]}
    modes = ("full", "upper_joints_root_velocity", "head_hands")
    assert keys == ({(t, c, "any") for t in ("teacher", "steered teacher")
                     for c in ("walk", "jump")}
                    | {("student", c, m) for c in ("walk", "jump", "run") for m in modes})
    for r in report["rows"]:
        assert 0.0 <= r["fall_rate"] <= 1.0 and 0.0 <= r["reward"] <= 1.0
        assert r["mpjpe_mm"] >= 0 and r["joint_err_rad"] >= 0 and r["root_vel_err"] >= 0
        assert r["split"] == ("held-out" if r["clip"] == "run" else "seen")
    table = (root / "report" / "eval.md").read_text()
    assert "| teacher | walk | seen | any |" in table and "MPJPE (mm)" in table
    assert (root / "report" / "eval.png").stat().st_size > 0
    teacher = {r["clip"]: r for r in report["rows"] if r["policy"] == "teacher"}
    assert teacher["walk"]["reward"] > 0.4, "the shipped walk policy imitates its clip"


@pytest.mark.slow  # ~25 s: expert episodes of 20 s each, on 2 workers
def test_margin_bench_reads_the_run_and_its_noise_reaches_the_expert(tiny_run, tmp_path):
    """bench_humanoid_margin: sigma 0 is the eval stage's expert; a huge sigma fells it."""
    cfg, root = tiny_run
    config = tmp_path / "humanoid_tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "bench_humanoid_margin.py"),
                           "--config", str(config), "--run-dir", str(root), "--clips", "jump",
                           "--sigmas", "0.5", "--draws", "1", "--processes", "2"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)["clips"]["jump"]  # stdout is the JSON alone
    rows = json.loads((root / "report" / "eval.json").read_text())["rows"]
    teacher = next(r for r in rows if r["policy"] == "teacher" and r["clip"] == "jump")
    student = next(r for r in rows if r["policy"] == "student" and r["clip"] == "jump"
                   and r["mode"] == "full")
    assert out["expert"]["0.0"]["falls"] == teacher["fall_rate"] * cfg.eval.episodes
    assert out["student_falls"] == round(student["fall_rate"] * cfg.eval.episodes)
    assert out["report_student_falls"] == out["student_falls"], "the same starts, re-run"
    # the rewards are the eval stage's too (per step of the whole episodes)
    assert out["expert_reward"] == pytest.approx(teacher["reward"], abs=1e-3)
    assert out["student_reward"] == pytest.approx(student["reward"], abs=1e-3)
    assert out["reward_ratio"] == pytest.approx(student["reward"] / teacher["reward"], abs=1e-3)
    assert out["student_rms"] > 0.01, "a 2-round student cannot act as the expert does"
    assert out["expert"]["0.5"] == {"falls": 1.0, "draws": 1, "by_start": {"0": 1}}
    assert set(out["expert"]) == {"0.0", str(out["student_rms"]), "0.5"}
    plain = subprocess.run(proc.args[:-6] + ["--plain", "--processes", "2"],
                           capture_output=True, text=True, timeout=600, cwd=REPO)
    assert plain.returncode == 0, plain.stderr[-3000:]
    lean = json.loads(plain.stdout)["clips"]["jump"]
    assert set(lean["expert"]) == {"0.0"}, "--plain: no noise levels"
    assert {k: lean[k] for k in ("student_reward", "expert_reward", "student_falls")} == {
        k: out[k] for k in ("student_reward", "expert_reward", "student_falls")}

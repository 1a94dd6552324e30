"""The dressing student: PointNet over the camera's points, ONNX parity, DAgger, the report."""

import json

import numpy as np
import pytest
from conftest import load_bench, needs_open3d
import torch
import yaml

pytest.importorskip("pybullet")
pytest.importorskip("onnxruntime")
pytestmark = [pytest.mark.usefixtures("garment_cache"), needs_open3d]   # test/conftest.py

from distill_ros.config import load_config  # noqa: E402
from distill_ros.export.metadata import PolicyMetadata  # noqa: E402
from distill_ros.export.onnx_export import export_student  # noqa: E402
from distill_ros.pipeline import STAGES, run_stages  # noqa: E402
from distill_ros.runtime.onnx_policy import OnnxPolicy  # noqa: E402
from distill_ros.spec import ObsSpec  # noqa: E402
from distill_ros.students.config import StudentConfig  # noqa: E402
from distill_ros.students.factory import build_student  # noqa: E402
from distill_ros.tasks.dressing.env import CONTROL_RATE_HZ, DressingEnv  # noqa: E402
from distill_ros.tasks.dressing.evaluate import (  # noqa: E402
    format_table, pick_teachers, picked_jobs, plan, tabulate)
from distill_ros.tasks.dressing.expert import expert_action  # noqa: E402
from distill_ros.tasks.dressing.family import ACT_SPEC, obs_groups  # noqa: E402


def _real_observations(n_points: int, steps: int) -> dict:
    env = DressingEnv("f2e1", groups=("state", "points", "proprio"), n_points=n_points)
    try:
        obs, _ = env.reset(seed=2)
        frames = [obs]
        for _ in range(steps):
            obs, *_ = env.step(expert_action(obs["state"]))
            frames.append(obs)
    finally:
        env.close()
    return {g: np.stack([f[g] for f in frames]) for g in ("points", "proprio")}


def test_point_cloud_student_exports_with_a_points_input(tmp_path):
    torch.manual_seed(0)
    groups = {g.name: g for g in obs_groups(128).groups}
    spec = ObsSpec((groups["points"], groups["proprio"]))   # as dagger.student_groups
    student = build_student(StudentConfig(hidden=[64, 64]), spec, ACT_SPEC)
    real = _real_observations(128, 3)
    student.set_normalizer(real)
    path = tmp_path / "student.onnx"
    export_student(student, path, PolicyMetadata(spec, ACT_SPEC, CONTROL_RATE_HZ, "dressing"))
    policy = OnnxPolicy(path, want_gpu=False)
    assert list(policy.groups.input_names) == ["points", "proprio"]
    assert policy.groups.input_shapes()["points"] == (128, 4)
    want = student.act(real)
    np.testing.assert_allclose(policy.act(real), want, atol=1e-5)
    # PointNet pools over points: their order does not matter, in torch or in the ONNX graph
    shuffled = dict(real, points=real["points"][:, np.random.default_rng(0).permutation(128)])
    np.testing.assert_allclose(policy.act(shuffled), want, atol=1e-5)
    # ... but what the points show does
    moved = dict(real, points=real["points"] + np.array([0.1, 0, 0, 0], np.float32))
    assert np.abs(policy.act(moved) - want).max() > 1e-4


def _result(task, policy, ratios, purpose="eval"):
    return {"task": task, "policy": policy, "purpose": purpose, "ratios": ratios,
            "successes": [r >= 0.8 for r in ratios]}


def test_report_compares_each_range_with_its_teacher_and_held_out_with_the_pick():
    """The held-out teacher is picked on the selection seeds, then judged on the eval seeds."""
    results = [
        _result("f0e0", "f0e0", [1.0, 0.8]), _result("f0e0", "student", [0.9, 0.7]),
        _result("f1e0", "f1e0", [0.5, 0.5]), _result("f1e0", "student", [0.5, 0.45]),
        # on the selection seeds f0e0 is the better teacher of f2e2 ...
        _result("f2e2", "f0e0", [0.7, 0.7], "select"),
        _result("f2e2", "f1e0", [0.6, 0.4], "select"),
        # ... so it is the one judged on the eval seeds, though f1e0 would score more there
        _result("f2e2", "f0e0", [0.4, 0.4]), _result("f2e2", "f1e0", [0.9, 0.9]),
        _result("f2e2", "student", [0.7, 0.5]),
    ]
    rows, summary = tabulate(results, ["f0e0", "f1e0"], ["f2e2"])
    seen = {r["task"]: r for r in rows if r["split"] == "seen"}
    assert seen["f0e0"]["student_over_teacher"] == pytest.approx(0.8 / 0.9)
    assert seen["f1e0"]["student_over_teacher"] == pytest.approx(0.95)
    held = rows[-1]
    assert held["best_teacher"] == "f0e0"
    assert held["best_teacher_selection"] == pytest.approx(0.7)
    assert held["selection"] == pytest.approx({"f0e0": 0.7, "f1e0": 0.5})
    assert held["teacher"] == pytest.approx(0.4), "the pick's ratio on the student's seeds"
    # each episode's ratio, seed by seed, beside the means (a cell's spread)
    assert seen["f0e0"]["teacher_ratios"] == [1.0, 0.8]
    assert seen["f0e0"]["student_ratios"] == [0.9, 0.7]
    assert held["teacher_ratios"] == [0.4, 0.4] and held["student_ratios"] == [0.7, 0.5]
    assert summary["seen_at_target"] == 1 and summary["held_out_student_beats_best"] == 1
    assert summary["student_over_teacher_min"] == pytest.approx(0.8 / 0.9)
    assert "| f2e2 | f0e0 (0.700) | 0.400 (0.00) | 0.600 (0.00) |" in format_table(
        rows, summary, 2)


def test_held_out_teachers_are_picked_on_seeds_apart_from_the_eval_seeds(tmp_path):
    """Every teacher runs on a held-out task's selection seeds; only the pick on its eval seeds."""
    cfg = {"name": "dress", "family": "dressing", "tasks": ["f0e0", "f1e0"],
           "held_out": ["f2e2", "f0e0@gown_long"], "eval": {"episodes": 3}}
    (path := tmp_path / "dress.yaml").write_text(yaml.safe_dump(cfg))
    cfg = load_config(path)
    jobs = plan(tmp_path, cfg)
    student = {j.task: set(j.seeds) for j in jobs if j.policy == "student"}
    assert all(j.purpose == "eval" for j in jobs if j.task in cfg.tasks)
    for task in cfg.held_out:
        select = [j for j in jobs if j.task == task and j.policy != "student"]
        assert sorted(j.policy for j in select) == cfg.tasks
        assert all(j.purpose == "select" and len(j.seeds) == 3 for j in select)
        assert len(student[task]) == 3 and not student[task] & set(select[0].seeds)
    results = [{"task": j.task, "policy": j.policy, "purpose": j.purpose,
                "ratios": [0.9 if j.policy == "f1e0" else 0.2], "successes": [False]}
               for j in jobs]
    picks = pick_teachers(results, cfg.tasks, cfg.held_out)
    assert {t: who for t, (who, _) in picks.items()} == {t: "f1e0" for t in cfg.held_out}
    picked = picked_jobs(tmp_path, cfg, picks)
    assert [(j.task, j.policy, j.purpose) for j in picked] == [
        ("f2e2", "f1e0", "eval"), ("f0e0@gown_long", "f1e0", "eval")]
    assert all(set(j.seeds) == student[j.task] for j in picked)


@pytest.mark.slow
def test_dagger_point_cloud_student_through_the_pipeline(tmp_path, capsys):
    """Scripted teacher, one range, two tiny DAgger rounds: every stage runs for real. Then
    bench/bench_dressing_heldout.py on the run replays the eval stage's held-out seeds."""
    cfg = {"name": "dress", "family": "dressing", "tasks": ["f0e2"], "held_out": ["f2e2"],
           "seed": 0, "teachers": {"algo": "scripted", "eval_episodes": 1},
           "student": {"hidden": [32, 32], "points_frame": "proprio"},   # as the configs
           "distill": {"algorithm": "dagger"},
           "dagger": {"n_envs": 1, "vector": "sync", "teacher_groups": ["state"],
                      "student_groups": ["points", "proprio"], "rounds": 2,
                      "steps_per_round": 6, "updates_per_round": 20, "batch_size": 8,
                      "eval_every": 2, "eval_episodes": 1,
                      "beta": {"schedule": "constant", "start": 1.0, "end": 1.0}},
           "eval": {"episodes": 1}}
    (path := tmp_path / "dress.yaml").write_text(yaml.safe_dump(cfg))
    run = run_stages(load_config(path), tmp_path / "run", list(STAGES))
    stages = json.loads((run.root / "run.json").read_text())["stages"]
    assert all(s["status"] == "complete" for s in stages.values()), stages
    assert stages["distill"]["teacher_queries"] == 12
    assert stages["export"]["max_abs_diff_real"] <= 1e-4
    policy = OnnxPolicy(run.root / "export" / "policy.onnx", want_gpu=False)
    assert list(policy.groups.input_names) == ["points", "proprio"]
    report = json.loads((run.root / "report" / "eval.json").read_text())
    seen, held = report["per_task"]
    assert seen["task"] == "f0e2" and seen["teacher"] >= 0.8      # the scripted teacher
    assert 0.0 <= seen["student"] <= 1.0
    assert held["task"] == "f2e2" and held["best_teacher"] == "f0e2"
    assert "| f2e2 | f0e2 (" in (run.root / "report" / "eval.md").read_text()
    capsys.readouterr()
    load_bench("bench_dressing_heldout").main(
        ["--config", str(path), "--run-dir", str(run.root), "--episodes", "1",
         "--selection", "1", "--processes", "1"])
    bench = json.loads(capsys.readouterr().out)["tasks"]["f2e2"]
    assert bench["best_teacher"] == "f0e2"
    # its first eval seed is the eval stage's: the same episodes, bit for bit
    assert bench["policies"]["student"]["ratios"] == [round(held["student_ratios"][0], 3)]
    assert bench["policies"]["best teacher"]["ratios"] == [round(held["teacher_ratios"][0], 3)]
    # a range beyond the grid joins; the config's held-out task keeps its seeds
    load_bench("bench_dressing_heldout").main(
        ["--config", str(path), "--run-dir", str(run.root), "--episodes", "1",
         "--selection", "1", "--processes", "1", "--held-out", "f3e3,f2e2"])
    beyond = json.loads(capsys.readouterr().out)["tasks"]
    assert list(beyond) == ["f3e3", "f2e2"]
    assert beyond["f2e2"]["policies"]["student"]["ratios"] == bench["policies"]["student"][
        "ratios"]
    assert beyond["f3e3"]["any_single_teacher"] == beyond["f3e3"]["selection"]["f0e2"]

"""`distill.algorithm: dagger` through the pipeline on the toy family (seconds), as a plug-in."""

import json

import pytest
import torch
import yaml

from distill_ros.config import load_config
from distill_ros.pipeline import STAGES, run_stages
from distill_ros.teachers.scripted import save_toy_expert


@pytest.fixture(scope="module")
def toy_expert(tmp_path_factory):
    """The toy family's analytic expert as a TorchScript teacher file."""
    save_toy_expert(str(path := tmp_path_factory.mktemp("toy") / "toy_expert.pt"))
    return path


def _config(tmp_path, expert, **dagger):
    cfg = {"name": "dag", "family": "toy", "tasks": ["goal_0", "goal_1"],
           "held_out": ["goal_2"], "seed": 1,
           "teachers": {"sources": {"goal_0": str(expert), "goal_1": str(expert)},
                        "eval_episodes": 4},
           "collect": {"episodes_per_task": 8, "shard_episodes": 8},
           "distill": {"algorithm": "dagger", "epochs": 5}, "eval": {"episodes": 8},
           "student": {"hidden": [64, 64]},
           "dagger": {"n_envs": 2, "vector": "sync", "rounds": 6, "steps_per_round": 40,
                      "updates_per_round": 100, "batch_size": 128, "eval_every": 3,
                      "eval_episodes": 2, "max_teacher_queries": 400, **dagger}}
    path = tmp_path / "dag.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path)


def test_dagger_runs_every_stage_within_its_query_budget(tmp_path, toy_expert):
    cfg = _config(tmp_path, toy_expert)
    assert cfg.dagger.max_teacher_queries == 400 and cfg.to_dict()["dagger"]["rounds"] == 6
    run = run_stages(cfg, tmp_path / "run", list(STAGES))
    stages = json.loads((run.root / "run.json").read_text())["stages"]
    assert all(s["status"] == "complete" for s in stages.values()), stages
    assert stages["collect"]["skipped"] and not (run.root / "data").exists()
    assert stages["distill"]["stopped_by_budget"] and stages["distill"]["teacher_queries"] == 400
    assert stages["export"]["max_abs_diff_real"] <= 1e-4, "parity not checked on DAgger states"
    curves = json.loads((run.root / "report" / "dagger_curves.json").read_text())
    assert curves[-1]["queries"] == 400 and curves[-1]["success"] >= 0.75
    summary = json.loads((run.root / "report" / "eval.json").read_text())["summary"]
    assert summary["student_mean_seen"] >= 0.75, summary


def test_warm_start_trains_the_offline_student_first(tmp_path, toy_expert):
    cfg = _config(tmp_path, toy_expert, init="offline", rounds=1, max_teacher_queries=0)
    run = run_stages(cfg, tmp_path / "run", ["teachers", "collect", "distill"])
    stages = json.loads((run.root / "run.json").read_text())["stages"]
    assert stages["collect"]["total_steps"] > 0, "the warm start needs the offline data"
    assert stages["distill"]["offline"]["epochs"] == 5
    assert torch.load(run.root / "student" / "best.pt", weights_only=False)["source"] == "dagger"


def test_a_typo_in_the_dagger_section_names_the_key(tmp_path, toy_expert):
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['dagger.round'\]"):
        _config(tmp_path, toy_expert, round=3)
    with pytest.raises(ValueError, match=r"dagger.beta.schedule must be one of"):
        _config(tmp_path, toy_expert, beta={"schedule": "cosine"})


def test_grasp_dagger_config_loads_and_budgets_half_of_offline_collection():
    from conftest import REPO

    dag = load_config(REPO / "config" / "grasp_dagger.yaml")
    full = load_config(REPO / "config" / "grasp_full.yaml")
    assert dag.distill.algorithm == "dagger" and dag.tasks == full.tasks
    assert dag.held_out == full.held_out
    from distill_ros.tasks.base import get_family

    steps = get_family("grasp").max_episode_steps   # an offline episode labels at most these
    offline_labels = full.collect.episodes_per_task * len(full.tasks) * steps
    assert 0 < dag.dagger.max_teacher_queries <= offline_labels // 2
    assert dag.dagger.n_envs >= len(dag.tasks), "each env holds one task"


def test_grasp_quick_dagger_config_shares_grasp_quicks_teachers_and_episodes():
    from conftest import REPO

    dag = load_config(REPO / "config" / "grasp_quick_dagger.yaml")
    quick = load_config(REPO / "config" / "grasp_quick.yaml")
    assert dag.distill.algorithm == "dagger" and dag.dagger.init == "scratch"
    # a finished grasp_quick run's teachers/ can be copied in; eval runs the same episodes
    assert (dag.tasks, dag.held_out, dag.seed) == (quick.tasks, quick.held_out, quick.seed)
    assert dag.teachers == quick.teachers and dag.eval == quick.eval
    from distill_ros.tasks.base import get_family

    most = quick.collect.episodes_per_task * len(quick.tasks) * get_family("grasp") \
        .max_episode_steps   # teacher queries of grasp_quick's collection, at most
    assert 0 < dag.dagger.max_teacher_queries <= most // 2
    assert dag.dagger.n_envs >= len(dag.tasks)


def test_tasks_whose_teacher_fails_its_check_get_no_env(tmp_path, toy_expert):
    from distill_ros.distill.dagger.stages import routed_tasks
    from distill_ros.rundir import RunDir
    from distill_ros.teachers.jobs import report_path

    cfg = _config(tmp_path, toy_expert, min_teacher_success=0.5, task_weights=[1.0, 3.0])
    with RunDir(tmp_path / "run", cfg) as run:
        assert routed_tasks(run, cfg) == (["goal_0", "goal_1"], [1.0, 3.0]), "unmeasured: kept"
        for task, success in (("goal_0", 0.9), ("goal_1", 0.0)):
            report_path(run.root, task).parent.mkdir(parents=True, exist_ok=True)
            report_path(run.root, task).write_text(json.dumps({"success": success}))
        assert routed_tasks(run, cfg) == (["goal_0"], [1.0])
        assert routed_tasks(run, _config(tmp_path, toy_expert))[0] == ["goal_0", "goal_1"]
        with pytest.raises(ValueError, match="no teacher reaches it"):
            routed_tasks(run, _config(tmp_path, toy_expert, min_teacher_success=0.95))
    with pytest.raises(ValueError, match=r"min_teacher_success is a success rate in \[0, 1\]"):
        _config(tmp_path, toy_expert, min_teacher_success=1.5)


def test_a_teacher_that_fails_its_check_labels_nothing(tmp_path, toy_expert):
    from distill_ros.teachers.scripted import ScriptedToyExpert

    backwards = tmp_path / "backwards.pt"   # walks away from the goal: fails every episode
    torch.jit.save(torch.jit.script(ScriptedToyExpert(gain=-8.0)), str(backwards))
    cfg = _config(tmp_path, toy_expert, min_teacher_success=0.5, rounds=2)
    cfg.teachers.sources["goal_1"] = str(backwards)
    run = run_stages(cfg, tmp_path / "run", ["teachers", "collect", "distill"])
    stages = json.loads((run.root / "run.json").read_text())["stages"]
    assert stages["teachers"]["success"] == {"goal_0": 1.0, "goal_1": 0.0}
    assert list(stages["distill"]["success_per_task"]) == ["goal_0"], "goal_1 got an env"


def test_finetuning_runs_in_the_distill_stage_and_is_what_gets_exported(tmp_path, toy_expert,
                                                                        monkeypatch):
    import numpy as np
    import onnxruntime as ort

    from distill_ros.distill.dagger.finetune import finetuned
    from distill_ros.distill.dagger.runner import trained_student
    from distill_ros.distill.dagger.stages import dagger_job
    from distill_ros.rundir import RunDir

    live = []  # what run.json said while the stage ran (the distill_trainer node reads it)
    mark = RunDir.mark

    def spy(self, stage, status, **info):
        mark(self, stage, status, **info)
        if status == "running" and "progress" in info:
            live.append(json.loads(self.ledger_path.read_text())["stages"][stage]["progress"])
    monkeypatch.setattr(RunDir, "mark", spy)

    finetune = {"iterations": 4, "warmup": 1, "steps": 40, "episode_steps": 20,
                "batch_size": 64, "epochs": 2, "noise": 0.1, "learning_rate": 1e-3,
                "critic_hidden": [32]}
    cfg = _config(tmp_path, toy_expert, max_teacher_queries=0, finetune=finetune)
    run = run_stages(cfg, tmp_path / "run", list(STAGES))
    stages = json.loads((run.root / "run.json").read_text())["stages"]
    assert stages["distill"]["finetune"]["iterations"] == 4, stages["distill"]
    curves = json.loads((run.root / "report" / "finetune_curves.json").read_text())
    assert [c["iteration"] for c in curves] == [1, 2, 3, 4]
    for row in curves:  # per task too, and the tasks' counts add up to the iteration's
        assert sorted(row["tasks"]) == sorted(cfg.tasks), row
        assert sum(t["episodes"] for t in row["tasks"].values()) == row["episodes"] > 0, row
    assert (run.root / "report" / "finetune_curves.png").is_file()
    tuning = [p for p in live if "finetune_iteration" in p]
    assert [p["finetune_iteration"] for p in tuning] == [1, 2, 3, 4], live
    assert tuning[-1]["finetune_iterations"] == 4
    assert tuning[-1]["failure_rate"] == round(curves[-1]["failure_rate"], 4)
    assert "finetune_iteration" not in stages["distill"].get("progress", {}), "gone at the end"
    job = dagger_job(run, cfg)
    distilled = trained_student(job.out_dir, job.build_student)
    tuned = finetuned(job.out_dir, trained_student(job.out_dir, job.build_student))
    x = torch.as_tensor(np.random.default_rng(0).uniform(-0.5, 0.5, (16, 9)), dtype=torch.float32)
    with torch.no_grad():
        want, before = tuned(x).numpy(), distilled(x).numpy()
    assert np.abs(want - before).max() > 1e-3, "the fine-tuning did not move the student"
    session = ort.InferenceSession(str(run.root / "export" / "policy.onnx"))
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)  # the export is the fine-tuned student
    assert stages["eval"]["status"] == "complete"

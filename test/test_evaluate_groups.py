"""The eval stage on a student with several observation groups (real ONNX Runtime).

A DAgger run on the toy family: the teachers read the privileged ``state`` group, the student
reads a point cloud and a command with its mask. The pipeline's eval stage and `distill-ros
eval` on held-out tasks must feed each side its own groups from one grouped env.
"""

import json

import numpy as np
import pytest
import yaml

from distill_ros.config import load_config
from distill_ros.distill.dagger.views import ObservationViews
from distill_ros.evaluate import evaluate_rows, evaluate_run
from distill_ros.pipeline import STAGES, run_stages
from distill_ros.rollout import episode_seed, run_episode
from distill_ros.runtime.onnx_policy import OnnxPolicy
from distill_ros.tasks.toy import ToyEnv
from distill_ros.teachers.scripted import save_toy_expert

STUDENT = ["points", "command"]


def _config(root, expert, **dagger):
    cfg = {"name": "groups", "family": "toy", "tasks": ["goal_0", "goal_1"],
           "held_out": ["goal_2"], "seed": 3,
           "teachers": {"sources": {"goal_0": str(expert), "goal_1": str(expert)},
                        "eval_episodes": 2},
           "distill": {"algorithm": "dagger"}, "eval": {"episodes": 6},
           "student": {"hidden": [64, 64]},
           "dagger": {"n_envs": 2, "vector": "sync", "rounds": 8, "steps_per_round": 60,
                      "updates_per_round": 150, "batch_size": 128, "eval_every": 8,
                      "eval_episodes": 2, "teacher_groups": ["state"],
                      "student_groups": STUDENT,
                      "beta": {"schedule": "linear", "horizon": 400}, **dagger}}
    path = root / f"groups_{len(list(root.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path)


@pytest.fixture(scope="module")
def grouped_run(tmp_path_factory):
    """A finished DAgger run whose student reads points + command (+ mask)."""
    root = tmp_path_factory.mktemp("eval_groups")
    save_toy_expert(str(expert := root / "toy_expert.pt"))
    cfg = _config(root, expert)
    run = run_stages(cfg, root / "run", list(STAGES))
    return root, expert, cfg, run


def test_views_come_from_the_algorithm_section(grouped_run):
    root, expert, cfg, _ = grouped_run
    views = ObservationViews.of(cfg)
    assert views.env_groups == ("state", "points", "command") and views.grouped
    flat = ObservationViews.of(_config(root, expert, teacher_groups=[], student_groups=[]))
    assert not flat.grouped and flat.student_input("x") == "x"


def test_eval_stage_feeds_the_student_its_groups_through_onnx(grouped_run):
    root, _, cfg, run = grouped_run
    policy = OnnxPolicy(run.root / "export" / "policy.onnx", want_gpu=False)
    assert policy.groups.input_names == ("points", "command", "command_mask")
    report = json.loads((run.root / "report" / "eval.json").read_text())
    rows = {r["task"]: r for r in report["per_task"]}
    assert [r["split"] for r in rows.values()] == ["seen", "seen", "held-out"]
    assert rows["goal_0"]["teacher"] == rows["goal_1"]["teacher"] == 1.0, \
        "the expert reads the flattened state group; it solves every toy episode"
    assert report["summary"]["student_mean_seen"] >= 0.8, report["summary"]
    # the same episodes by hand: the ONNX student on the cloud and the command only
    env = ToyEnv("goal_1", groups=("state", *STUDENT))
    wins = [run_episode(env, lambda o: policy.act({k: o[k] for k in policy.groups.input_names}),
                        episode_seed(cfg.eval.seed, 1, ep)).success for ep in range(6)]
    assert rows["goal_1"]["student"] == pytest.approx(np.mean(wins))


def test_eval_command_runs_a_grouped_student_on_held_out_tasks(grouped_run):
    root, _, cfg, run = grouped_run
    kept = (run.root / "report" / "eval.json").read_bytes()
    folder = evaluate_run(cfg, run.root, ["goal_2", "goal_5"], episodes=3)
    rows = json.loads((folder / "eval.json").read_text())["per_task"]
    assert [r["task"] for r in rows] == ["goal_2", "goal_5"]
    assert all(r["teacher"] is None and r["episodes"] == 3 for r in rows)
    assert (run.root / "report" / "eval.json").read_bytes() == kept


def test_a_config_with_other_student_groups_is_refused_by_name(grouped_run):
    root, expert, _, run = grouped_run
    other = _config(root, expert, student_groups=["proprio", "command"])
    with pytest.raises(ValueError, match=r"student reads inputs \['points', 'command', "
                                         r"'command_mask'\].*student_groups \['proprio'"):
        evaluate_rows(run, other, ["goal_2"], 1)

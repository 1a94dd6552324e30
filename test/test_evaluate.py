"""Evaluation: 95% intervals in every report, and a finished run evaluated on new objects."""

import json
import subprocess
import sys

import pytest

from conftest import REPO, write_config
from distill_ros.config import load_config
from distill_ros.evaluate import wilson_interval
from distill_ros.pipeline import run_stages

MESH = {"path": "cube.obj", "scale": 0.05}


def test_wilson_interval_matches_the_textbook_values():
    # Wilson (1927); e.g. Brown, Cai & DasGupta (2001): 0/10 -> [0, 0.278], 5/10 -> [.237, .763]
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    lo, hi = wilson_interval(45, 50)
    assert lo < 0.9 < hi and hi - lo < wilson_interval(9, 10)[1] - wilson_interval(9, 10)[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, expert_file):
    """A finished tiny run whose seen tasks include a user's mesh object."""
    root = tmp_path_factory.mktemp("eval")
    overrides = dict(tasks=["cube", "mybox"], held_out=["rand009"], objects={"mybox": MESH},
                     teachers={"sources": {t: str(expert_file) for t in ("cube", "mybox")},
                               "eval_episodes": 2},
                     collect={"episodes_per_task": 10, "shard_episodes": 10},
                     distill={"epochs": 20}, eval={"episodes": 4})
    cfg = load_config(write_config(root / "c.yaml", **overrides))
    run_stages(cfg, root / "run", ["teachers", "collect", "distill", "export", "eval"])
    return root, overrides


def test_report_shows_intervals_and_episode_counts(finished_run):
    root, _ = finished_run
    report = json.loads((root / "run" / "report" / "eval.json").read_text())
    for row in report["per_task"]:
        assert row["episodes"] == 4
        lo, hi = row["student_ci"]
        assert lo <= row["student"] <= hi and (lo, hi) == pytest.approx(
            wilson_interval(round(row["student"] * 4), 4))
        assert (row["teacher_ci"] is None) == (row["split"] == "held-out")
    table = (root / "run" / "report" / "eval.md").read_text()
    assert "| teacher [95% CI] | student [95% CI] | episodes |" in table, table
    mybox = next(line for line in table.splitlines() if line.startswith("| mybox |"))
    assert mybox.count("[") == 2 and mybox.endswith("| 4 |"), mybox


def test_eval_command_evaluates_a_finished_run_on_new_objects(finished_run):
    root, overrides = finished_run
    run = root / "run"
    kept = {p: p.read_bytes() for p in (run / "run.json", run / "student" / "best.pt",
                                        run / "report" / "eval.json")}
    user = {**overrides["objects"], "rand050": {"path": "random_urdfs/050/050.urdf",
                                                "scale": 0.6}}
    cfg2 = write_config(root / "c2.yaml", **{**overrides, "held_out": [], "objects": user})
    proc = subprocess.run([sys.executable, "-m", "distill_ros.cli", "eval", str(cfg2),
                           "--run-dir", str(run), "--held-out", "rand009,rand050",
                           "--episodes", "4"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    folder = run / "report" / "eval_rand009-rand050_n4_s100000"
    assert f"report: {folder}" in proc.stdout, proc.stdout
    report = json.loads((folder / "eval.json").read_text())
    rows = {r["task"]: r for r in report["per_task"]}
    assert list(rows) == ["rand009", "rand050"] and rows["rand050"]["teacher"] is None
    first = json.loads(kept[run / "report" / "eval.json"])["per_task"]
    assert rows["rand009"]["student"] == next(r["student"] for r in first
                                              if r["task"] == "rand009"), \
        "an object evaluated again gets the run's own seeds"
    assert (folder / "eval.png").stat().st_size > 1000 and "| rand050 |" in proc.stdout
    for path, data in kept.items():
        assert path.read_bytes() == data, f"{path.name} changed: the run was retrained"

    changed = write_config(root / "c3.yaml", **{**overrides, "distill": {"epochs": 21}})
    proc = subprocess.run([sys.executable, "-m", "distill_ros.cli", "eval", str(changed),
                           "--run-dir", str(run), "--held-out", "rand009", "--episodes", "2"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "changed: ['distill.epochs']" in proc.stderr, proc.stderr


def test_task_index_keeps_a_configs_tasks_in_place_and_puts_others_after():
    from types import SimpleNamespace

    from distill_ros.rollout import task_index

    cfg = SimpleNamespace(tasks=["cube", "lego"], held_out=["mug"])
    assert [task_index(cfg, t, j) for j, t in enumerate(["mug", "lego", "duck"])] == [2, 1, 5]
    assert task_index(cfg, "duck", 0) == 3   # asked for alone: right after the config's

"""bench/bench_dressing_heldout.py refuses a run with no student, and tasks it cannot judge."""

from pathlib import Path

import pytest
from conftest import load_bench

CONFIG = Path(__file__).resolve().parents[2] / "config" / "dressing_quick.yaml"


def _bench():
    return load_bench("bench_dressing_heldout")


def test_a_run_without_an_exported_student_is_refused_naming_the_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        _bench().main(["--config", str(CONFIG), "--run-dir", str(tmp_path), "--episodes", "1"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "export" / "policy.onnx") in err and "run the pipeline first" in err


def test_held_out_tasks_must_be_the_familys_held_out_ones(tmp_path, capsys):
    """A training range, or a name the family lacks, is refused before anything runs."""
    for bad, says in (("f0e0", "['f0e0'] are training tasks"),
                      ("f9e9", "unknown task(s) ['f9e9']")):
        with pytest.raises(SystemExit) as stop:
            _bench().main(["--config", str(CONFIG), "--run-dir", str(tmp_path),
                           "--held-out", f"f3e1,{bad}"])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert says in err, err
    assert "f3e3" in err   # the valid choices are listed


def test_a_held_out_garment_pools_its_tasks_episodes_seed_by_seed():
    """Per garment, every task that wears it: counts add up, the means are over all episodes."""
    def result(ratios):
        return {"ratios": ratios, "successes": [r >= 0.8 for r in ratios]}
    results = {("f1e1", "best teacher"): result([0.1]), ("f1e1", "student"): result([0.9]),
               ("f1e1@gown_long", "best teacher"): result([0.82, 0.81]),
               ("f1e1@gown_long", "student"): result([0.83, 0.78]),
               ("f3e3@gown_long", "best teacher"): result([0.3, 0.81]),
               ("f3e3@gown_long", "student"): result([0.85, 0.79])}
    pooled = _bench().by_garment(results, ["f1e1", "f1e1@gown_long", "f3e3@gown_long"],
                                 ["student"])
    assert list(pooled) == ["gown_long"]      # a task with training garments is not pooled
    row = pooled["gown_long"]
    assert row["tasks"] == ["f1e1@gown_long", "f3e3@gown_long"]
    teacher, student = row["policies"]["best teacher"], row["policies"]["student"]
    assert teacher["success"] == pytest.approx(0.75) and student["success"] == pytest.approx(0.5)
    assert teacher["ratio"] == pytest.approx(0.685) and student["ratio"] == pytest.approx(0.8125)
    # fewer successes but the higher mean: it beats the teachers by the mean, 2 seeds of 4
    assert student["beats_best_teacher"] and student["seeds_above_teacher"] == 2
    assert student["seeds_below_teacher"] == 2

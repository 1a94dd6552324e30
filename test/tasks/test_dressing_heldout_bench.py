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

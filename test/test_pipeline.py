"""End to end: teachers -> data -> one student -> ONNX -> eval, and resume after a real kill."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, write_config
from distill_ros.config import load_config
from distill_ros.pipeline import run_stages


def test_student_distilled_from_user_teachers_grasps_seen_and_unseen_objects(
        tmp_path, expert_file):
    """User TorchScript teachers per object -> the ONNX student lifts the objects too."""
    tasks = ["cube", "duck", "mug"]
    cfg = load_config(write_config(
        tmp_path / "c.yaml", tasks=tasks, held_out=["rand009"],
        teachers={"sources": {t: str(expert_file) for t in tasks}, "eval_episodes": 5},
        collect={"episodes_per_task": 30, "shard_episodes": 15},
        distill={"epochs": 40}, eval={"episodes": 10}))
    run = run_stages(cfg, tmp_path / "run", ["teachers", "collect", "distill", "export", "eval"])
    report = json.loads((run.root / "report" / "eval.json").read_text())
    summary = report["summary"]
    assert summary["teacher_mean_seen"] >= 0.9, report
    assert summary["student_mean_seen"] >= 0.7, f"student too weak on seen objects: {report}"
    assert summary["student_mean_held_out"] is not None
    for name in ("eval.md", "eval.png"):
        assert (run.root / "report" / name).stat().st_size > 100, name
    ledger = json.loads((run.root / "run.json").read_text())
    assert all(s["status"] == "complete" for s in ledger["stages"].values()), ledger["stages"]
    assert ledger["stages"]["export"]["max_abs_diff_real"] < 1e-4
    curves = json.loads((run.root / "student" / "curves.json").read_text())
    assert curves[-1]["train_loss"] < curves[0]["train_loss"]
    assert (run.root / "student" / "curves.png").is_file()
    assert any((run.root / "student" / "tb").iterdir()), "no TensorBoard event file"


def _cli(args, cwd, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_MININTERVAL": "2"}
    return subprocess.Popen([sys.executable, "-m", "distill_ros.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **kwargs)


@pytest.mark.slow  # a minute or more: trains two PPO teachers, kills, resumes, evaluates
def test_killed_run_resumes_without_losing_finished_work(tmp_path):
    cfg_path = write_config(tmp_path / "c.yaml",
                            teachers={"algo": "ppo", "n_envs": 2, "n_steps": 128,
                                      "timesteps": 3072, "checkpoint_every": 512},
                            collect={"episodes_per_task": 6, "shard_episodes": 3, "keep": "all"},
                            distill={"epochs": 3}, eval={"episodes": 2})
    run_dir = tmp_path / "run"
    proc = _cli(["run", str(cfg_path), "--run-dir", str(run_dir)], REPO)
    first = run_dir / "teachers" / "cube" / "teacher.zip"
    second_ckpt = run_dir / "teachers" / "lego" / "checkpoint.zip"
    deadline = time.monotonic() + 240
    while not second_ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed:\n" + proc.stdout.read()
    os.kill(proc.pid, signal.SIGKILL)            # no chance to clean up
    proc.wait()
    kept = first.read_bytes()
    mtime = first.stat().st_mtime_ns
    ledger = json.loads((run_dir / "run.json").read_text())
    assert ledger["stages"]["teachers"]["status"] == "running"

    again = _cli(["run", str(cfg_path), "--run-dir", str(run_dir)], REPO)
    out, _ = again.communicate(timeout=400)
    assert again.returncode == 0, out
    assert "teacher cube: already trained" in out, out
    assert "teacher lego: resuming from" in out, out
    assert "was interrupted earlier" in out, out
    assert first.read_bytes() == kept and first.stat().st_mtime_ns == mtime, \
        "a finished teacher was rewritten"
    assert "| cube | seen |" in out, "the eval table is printed at the end"
    assert not list(run_dir.rglob("*.tmp")), "temporary files left behind"

    third = _cli(["run", str(cfg_path), "--run-dir", str(run_dir)], REPO)
    out, _ = third.communicate(timeout=120)
    assert third.returncode == 0 and out.count("complete in an earlier run, skipped") == 5, out

    (run_dir / "export" / "policy.onnx").unlink()   # a user moved the policy away
    fourth = _cli(["run", str(cfg_path), "--run-dir", str(run_dir)], REPO)
    out, _ = fourth.communicate(timeout=120)
    assert fourth.returncode == 0 and "export/policy.onnx is missing: running it again" in out
    assert (run_dir / "export" / "policy.onnx").is_file() and out.count("skipped") == 4, out


def test_cli_errors_exit_2_with_the_fix(tmp_path):
    bad = write_config(tmp_path / "c.yaml", teachers={"timestep": 3})
    proc = _cli(["run", str(bad)], tmp_path)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "unknown key(s) ['teachers.timestep']" in out, out
    good = write_config(tmp_path / "d.yaml")
    proc = _cli(["export", str(good), "--run-dir", str(tmp_path / "r")], tmp_path)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "distill-ros distill CONFIG" in out, out
    changed = write_config(tmp_path / "d.yaml", seed=3)
    proc = _cli(["export", str(changed), "--run-dir", str(tmp_path / "r")], tmp_path)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "different config (changed: ['seed'])" in out, out


def test_launch_argument_errors_exit_2_without_a_traceback(tmp_path):
    proc = _cli(["launch", "sim_demo", "model=x.onnx"], tmp_path)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "Traceback" not in out, out
    assert "NAME:=VALUE" in out and "'model=x.onnx'" in out, out


def test_node_command_line_errors_exit_without_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "distill_ros.nodes.policy_inference",
                           "--ros-args", "-p", "model_path"], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "-p expects name:=value" in proc.stderr, proc.stderr


def test_artefacts_get_the_usual_file_mode(tmp_path):
    from distill_ros.atomic import atomic_write_text

    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644, "others cannot read it"


def test_every_subcommand_has_help(capsys):
    from distill_ros.cli import STAGE_HELP, build_parser
    from distill_ros.rundir import STAGES

    parser = build_parser()
    assert tuple(STAGE_HELP) == STAGES, "every stage has its own subcommand"
    for cmd in ("run", *STAGES):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([cmd, "--help"])
        out = capsys.readouterr().out
        assert exit_.value.code == 0, (cmd, out)
        assert out.startswith(f"usage: distill-ros {cmd} "), out
        for option in ("--run-dir", "--force", "--processes"):
            assert option in out, (cmd, option, out)
        if cmd in STAGE_HELP:
            assert " ".join(STAGE_HELP[cmd].split()[:4]) in " ".join(out.split()), out
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["distil", "--help"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "invalid choice: 'distil'" in err, err

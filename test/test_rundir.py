"""The run folder: one process at a time, no temporary files left, honest --force, errors."""

import logging
import os
import re
import resource
import signal
import subprocess
import sys

import pytest
import torch

from conftest import REPO, write_config
from distill_ros.config import load_config
from distill_ros.pipeline import run_stages
from distill_ros.rundir import LOCK_FILE, RunDir, RunFolderBusy

HOLD = """
import sys, time
from distill_ros.config import load_config
from distill_ros.rundir import RunDir
run = RunDir(sys.argv[2], load_config(sys.argv[1]))
print("locked", flush=True)
time.sleep(600)
"""


def _cli(args, **kwargs):
    return subprocess.run([sys.executable, "-m", "distill_ros.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, **kwargs)


def test_second_process_on_a_run_folder_stops_at_once_naming_the_holder(tmp_path):
    cfg_path = write_config(tmp_path / "c.yaml")
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(cfg_path), str(run_dir)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = _cli(["run", str(cfg_path), "--run-dir", str(run_dir)])
        assert second.returncode == 3, second.stderr
        assert f"in use by another distill-ros process (pid {holder.pid})" in second.stderr
        assert "Traceback" not in second.stderr, second.stderr
        assert not (run_dir / "teachers").exists(), "the second run started working"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (run_dir / LOCK_FILE).read_text().strip() == str(holder.pid), "lock file kept"
    with RunDir(run_dir, load_config(cfg_path)) as run:  # a killed holder's lock is stale
        assert (run.root / LOCK_FILE).read_text().strip() == str(os.getpid())


def test_lock_is_held_until_closed_in_one_process_too(tmp_path):
    cfg = load_config(write_config(tmp_path / "c.yaml"))
    first = RunDir(tmp_path / "run", cfg)
    with pytest.raises(RunFolderBusy, match=f"pid {os.getpid()}"):
        RunDir(tmp_path / "run", cfg)
    first.close()
    RunDir(tmp_path / "run", cfg).close()


def test_temporary_files_of_a_killed_run_are_removed_on_start(tmp_path):
    cfg = load_config(write_config(tmp_path / "c.yaml"))
    RunDir(tmp_path / "run", cfg).close()
    stale = [tmp_path / "run" / "student" / ".latest.pt.k2j3h4.tmp",
             tmp_path / "run" / "teachers" / "lego" / ".checkpoint_replay.pkl.x81z.tmp"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a file")
    keep = tmp_path / "run" / "student" / "notes.tmp"  # not one of ours: no leading dot
    keep.write_text("mine")
    RunDir(tmp_path / "run", cfg).close()
    assert not any(p.exists() for p in stale), "stale temporary files survived a restart"
    assert keep.read_text() == "mine"


def test_force_redoes_teachers_collect_and_distill_from_scratch(tmp_path, expert_file, caplog):
    cfg = load_config(write_config(
        tmp_path / "c.yaml", tasks=["cube"], held_out=[],
        teachers={"sources": {"cube": str(expert_file)}, "eval_episodes": 2},
        collect={"episodes_per_task": 4, "shard_episodes": 2}, distill={"epochs": 3}))
    stages = ["teachers", "collect", "distill"]
    run = run_stages(cfg, tmp_path / "run", stages)
    outputs = {"teachers": run.root / "teachers" / "cube" / "eval.json",
               "collect": run.root / "data" / "cube" / "shard_0000.npz",
               "distill": run.root / "student" / "latest.pt"}
    before = {stage: path.stat().st_mtime_ns for stage, path in outputs.items()}
    (run.root / "data" / "cube" / "shard_0001.npz").unlink()  # must come back too
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="distill_ros"):
        run_stages(cfg, tmp_path / "run", stages, force=True)
    text = caplog.text
    for phrase in ("already trained", "kept", "resuming", "complete in an earlier run"):
        assert phrase not in text, f"--force resumed instead of redoing ({phrase!r}):\n{text}"
    for stage, path in outputs.items():
        assert path.stat().st_mtime_ns != before[stage], f"--force left {stage} as it was"
    assert (run.root / "data" / "cube" / "shard_0001.npz").is_file()
    assert torch.load(outputs["distill"], weights_only=False)["epoch"] == 3


def test_force_keeps_the_users_teacher_files(tmp_path, expert_file):
    cfg = load_config(write_config(
        tmp_path / "c.yaml", tasks=["cube"], held_out=[],
        teachers={"sources": {"cube": str(expert_file)}, "eval_episodes": 1}))
    kept = expert_file.read_bytes()
    run_stages(cfg, tmp_path / "run", ["teachers"], force=True)
    assert expert_file.read_bytes() == kept


def test_a_file_in_the_way_of_the_run_folder_is_one_line_and_exit_1(tmp_path):
    cfg_path = write_config(tmp_path / "c.yaml")
    (tmp_path / "f").write_text("a file, not a folder")
    proc = _cli(["collect", str(cfg_path), "--run-dir", str(tmp_path / "f" / "run")])
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Not a directory" in proc.stderr and str(tmp_path / "f") in proc.stderr, proc.stderr


def test_a_full_disk_is_one_line_and_exit_1(tmp_path):
    """A file size limit makes writes fail as a full disk does (EFBIG instead of ENOSPC)."""
    cfg_path = write_config(tmp_path / "c.yaml")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))  # run.json is larger
    proc = _cli(["collect", str(cfg_path), "--run-dir", str(tmp_path / "run")],
                preexec_fn=limit, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "File too large" in proc.stderr and "run.json" in proc.stderr, proc.stderr
    assert not list((tmp_path / "run").glob(".*.tmp")), "a partial file was left"


def test_a_read_only_run_folder_is_one_line_and_exit_1(tmp_path):
    cfg_path = write_config(tmp_path / "c.yaml")
    folder = tmp_path / "run"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    elif subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        undo = ["chattr", "-i", str(folder)]   # root ignores modes, not the immutable flag
    else:
        pytest.skip("running as root on a filesystem without chattr +i: nothing is read-only")
    try:
        proc = _cli(["collect", str(cfg_path), "--run-dir", str(folder)])
    finally:
        subprocess.run(undo, check=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert ("Permission denied" in proc.stderr or "Operation not permitted" in proc.stderr) \
        and str(folder) in proc.stderr and "writable --run-dir" in proc.stderr, proc.stderr


def test_one_torch_thread_per_process_unless_configured(tmp_path, expert_file, monkeypatch):
    base = dict(tasks=["cube"], held_out=[], collect={"episodes_per_task": 1, "shard_episodes": 1},
                teachers={"sources": {"cube": str(expert_file)}, "eval_episodes": 1})
    torch.set_num_threads(2)
    try:
        run_stages(load_config(write_config(tmp_path / "a.yaml", **base)), tmp_path / "a",
                   ["collect"])
        assert torch.get_num_threads() == 1, "the default is one thread per process"
        two = load_config(write_config(tmp_path / "b.yaml", threads=2, **base))
        run_stages(two, tmp_path / "b", ["collect"])
        assert torch.get_num_threads() == 2, "threads: 2 in the config"
        monkeypatch.setenv("DISTILL_ROS_THREADS", "1")
        run_stages(two, tmp_path / "b", ["collect"], force=True)
        assert torch.get_num_threads() == 1, "$DISTILL_ROS_THREADS overrides the config"
    finally:
        torch.set_num_threads(1)


def test_progress_bars_do_not_flood_a_log_file(tmp_path, expert_file):
    cfg_path = write_config(tmp_path / "c.yaml", tasks=["cube"], held_out=[],
                            teachers={"sources": {"cube": str(expert_file)}, "eval_episodes": 40})
    env = {k: v for k, v in os.environ.items() if not k.startswith("TQDM_")}
    proc = _cli(["teachers", str(cfg_path), "--run-dir", str(tmp_path / "run")], env=env)
    assert proc.returncode == 0, proc.stderr
    redraws = len(re.findall(r"teachers: +\d+%\|", proc.stderr))  # the stage's one bar
    assert 1 <= redraws <= 3, f"{redraws} redraws of one bar in a log:\n{proc.stderr}"


def test_setup_py_has_no_unknown_options():
    proc = subprocess.run([sys.executable, "setup.py", "--name"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "distill_ros", proc.stderr
    assert "Unknown distribution option" not in proc.stderr, proc.stderr


def test_force_on_onestep_distill_retrains_its_diffusion_teacher_too(tmp_path):
    from distill_ros.pipeline import stage_outputs

    cfg = load_config(write_config(tmp_path / "c.yaml", distill={"algorithm": "onestep"}))
    assert stage_outputs(cfg, "distill") == ["teachers/diffusion", "student"]
    assert "teachers/demonstrators" in stage_outputs(cfg, "teachers")
    assert stage_outputs(cfg, "eval") == []

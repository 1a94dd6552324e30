"""A run killed with SIGKILL ends exactly where an unkilled run with the same seed ends."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import torch

from conftest import REPO, write_config


def _run(cfg_path, run_dir):
    return subprocess.Popen([sys.executable, "-m", "distill_ros.cli", "run", str(cfg_path),
                             "--run-dir", str(run_dir)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _finish(proc, timeout=900):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def _kill_when(proc, ready, what, timeout=600):
    deadline = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before {what}:\n{proc.stdout.read()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _policy(path):
    from stable_baselines3 import SAC

    return SAC.load(str(path), device="cpu").policy.state_dict()


# not marked slow (30 s): exact resume after SIGKILL is a promise of the README
def test_run_killed_during_teacher_training_and_distill_ends_as_the_unkilled_run(tmp_path):
    # SAC starts learning at 2000 steps: the third checkpoint (2400) holds optimiser state,
    # a replay buffer, environments mid-episode and SAC's own random generators.
    cfg_path = write_config(tmp_path / "c.yaml", tasks=["cube"], held_out=["duck"],
                            teachers={"timesteps": 3000, "checkpoint_every": 800,
                                      "eval_episodes": 2},
                            collect={"episodes_per_task": 10, "shard_episodes": 5,
                                     "keep": "all"},
                            distill={"epochs": 300}, eval={"episodes": 6})
    ref, run = tmp_path / "ref", tmp_path / "run"
    _finish(_run(cfg_path, ref))

    ckpt = run / "teachers" / "cube" / "checkpoint.zip"
    seen = set()

    def third_checkpoint():
        try:
            seen.add(ckpt.stat().st_mtime_ns)
        except FileNotFoundError:
            pass
        return len(seen) >= 3
    _kill_when(_run(cfg_path, run), third_checkpoint, "its third teacher checkpoint")
    assert not (run / "teachers" / "cube" / "teacher.zip").exists(), "killed too late"
    _kill_when(_run(cfg_path, run), (run / "student" / "latest.pt").is_file,
               "the student's first checkpoint")
    out = _finish(_run(cfg_path, run))
    assert "[distill] was interrupted earlier" in out or "[distill] complete" in out, out

    a, b = _policy(ref / "teachers/cube/teacher.zip"), _policy(run / "teachers/cube/teacher.zip")
    assert all(torch.equal(a[k], b[k]) for k in a), "the resumed teacher differs"
    for shard in sorted((ref / "data" / "cube").glob("*.npz")):
        with np.load(shard) as x, np.load(run / "data" / "cube" / shard.name) as y:
            assert all(np.array_equal(x[k], y[k]) for k in x.files), shard.name
    sa = torch.load(ref / "student" / "best.pt", weights_only=False)["student"]
    sb = torch.load(run / "student" / "best.pt", weights_only=False)["student"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa), "the resumed student differs"
    assert (run / "report" / "eval.json").read_text() == \
        (ref / "report" / "eval.json").read_text()
    assert not list(run.rglob("*.tmp")), "temporary files left behind"

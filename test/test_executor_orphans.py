"""A killed driver leaves no pool worker (or progress manager) running on as an orphan."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from conftest import REPO

JOBS = textwrap.dedent("""
    import os
    import time
    from pathlib import Path


    def sleeper(path):
        Path(path).write_text(str(os.getpid()))
        time.sleep(120)  # far longer than the test waits: only its parent's death ends it
""")

DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path

    sys.path.insert(0, sys.argv[1])
    from distill_ros.executor import ProcessExecutor
    from orphan_jobs import sleeper

    folder = Path(sys.argv[1])
    executor = ProcessExecutor(2)
    executor.channel()  # starts the progress manager
    (folder / "manager").write_text(str(executor._manager._process.pid))
    executor.map(sleeper, [str(folder / "worker0"), str(folder / "worker1")])
""")


def _running(pid: int) -> bool:
    """Alive and not a zombie (a container's pid 1 may never reap the orphans it adopts)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _wait_for(files, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while not all(f.exists() and f.read_text() for f in files):
        assert time.monotonic() < deadline, f"the driver never started {files}"
        time.sleep(0.05)
    return [int(f.read_text()) for f in files]


def test_sigkill_of_the_driver_ends_its_busy_workers_and_manager(tmp_path):
    (tmp_path / "orphan_jobs.py").write_text(JOBS)
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        pids = _wait_for([tmp_path / "manager", tmp_path / "worker0", tmp_path / "worker1"])
    except AssertionError:
        driver.kill()
        raise AssertionError(driver.communicate()[0]) from None
    assert all(_running(pid) for pid in pids)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    deadline = time.monotonic() + 10.0
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in pids if _running(pid)]
    for pid in left:  # do not leave them to the rest of the test session
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes {left} of {pids} (manager, workers) outlived their driver"

"""A pipeline run in the background: one ``distill-ros <stage>`` process per stage.

Each stage runs as the CLI runs it, in a child process, so ``stop`` is a Ctrl-C the
CLI already handles (the run stays resumable) and a crash in training never takes the
ROS node down. Progress is read from the run's ``run.json`` ledger. No ROS inside.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional, Sequence

log = logging.getLogger(__name__)


class TrainingJob:
    """Runs ``stages`` of pipeline ``config`` in ``run_dir``, one CLI process per stage."""

    def __init__(self, config: str, run_dir: Path, stages: Sequence[str]) -> None:
        self.config, self.run_dir, self.stages = config, Path(run_dir), list(stages)
        self.state = "idle"        # idle | running | stopping | stopped | failed | complete
        self.current: Optional[str] = None
        self.error = ""
        self.started = 0.0
        self._proc: Optional[subprocess.Popen] = None
        self._stop = threading.Event()
        self._lock = threading.Lock()   # a stop and the start of a stage never interleave
        self._thread: Optional[threading.Thread] = None

    @property
    def running(self) -> bool:
        """Whether stages are still being run."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start running the stages in a background thread."""
        if self.running:
            raise ValueError(f"already running stage {self.current} of {self.config}")
        self._stop.clear()
        self.state, self.error, self.started = "running", "", time.monotonic()
        self._thread = threading.Thread(target=self._run, name="distill-trainer", daemon=True)
        self._thread.start()

    def stop(self, wait: bool = False, grace_s: float = 20.0) -> None:
        """Interrupt the running stage (Ctrl-C; the run stays resumable).

        A stage still alive ``grace_s`` later gets SIGTERM, then SIGKILL after as long
        again, from a watcher thread; ``wait`` blocks until the stages have ended.
        """
        with self._lock:
            self._stop.set()
            proc = self._proc
            if proc is not None and proc.poll() is None:
                self.state = "stopping"
                proc.send_signal(signal.SIGINT)
                threading.Thread(target=_escalate, args=(proc, grace_s), daemon=True).start()
        if wait and self._thread is not None:
            self._thread.join(3 * grace_s)

    def _run(self) -> None:
        for stage in self.stages:
            if self._stop.is_set():
                break
            self.current = stage
            cmd = [sys.executable, "-m", "distill_ros.cli", stage, self.config,
                   "--run-dir", str(self.run_dir)]
            log_path = self.run_dir / "logs" / f"{stage}.log"   # the stage's whole stderr
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "a") as stage_log:
                with self._lock:
                    if self._stop.is_set():
                        break
                    self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                                  stderr=stage_log, text=True)
                self._proc.wait()
            if self._stop.is_set():
                self.state = "stopped"
                return
            if self._proc.returncode != 0:
                self.state = "failed"
                lines = log_path.read_text(errors="replace").strip().splitlines()
                self.error = (f"stage {stage} exited {self._proc.returncode}: "
                              f"{(lines or ['no output'])[-1][:300]} (whole log: {log_path})")
                log.error("%s", self.error)
                return
        self.current = None
        self.state = "stopped" if self._stop.is_set() else "complete"

    def _ledger_stages(self) -> dict:
        try:
            ledger = json.loads((self.run_dir / "run.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            ledger = {}
        return ledger.get("stages", {})

    def progress(self) -> dict[str, str]:
        """Status of every requested stage, from ``run.json`` (``pending`` before it exists)."""
        stages = self._ledger_stages()
        return {s: stages.get(s, {}).get("status", "pending") for s in self.stages}

    def jobs_progress(self) -> dict[str, object]:
        """The bar of the last stage that fanned out jobs, from ``progress.json`` ({} if none).

        The same numbers as the stage's own tqdm bar: jobs finished, work done (episodes or
        env steps) over the total, rate, ETA, the executor and the Ray dashboard if up.
        """
        from distill_ros.progress import read_progress

        bar = read_progress(self.run_dir)
        if not bar:
            return {}
        return {"jobs_stage": bar["stage"], "jobs": f"{bar['jobs_done']}/{bar['jobs_total']}",
                "work": f"{bar['done']}/{bar['total']} {bar['unit']}",
                "rate_per_s": bar["rate_per_s"], "eta_s": bar["eta_s"],
                "executor": bar["executor"], "ray_dashboard": bar["dashboard_url"]}

    def live_figures(self) -> dict[str, object]:
        """The running stages' latest figures (``<stage>.<name>``), e.g. a DAgger round's.

        A stage publishes them as ``progress`` in its ``run.json`` entry while it runs (the
        DAgger distill stage after every round); they are gone once the stage ends.
        """
        return {f"{stage}.{name}": value
                for stage, entry in self._ledger_stages().items() if stage in self.stages
                and entry.get("status") == "running"
                for name, value in (entry.get("progress") or {}).items()}

    def fraction(self) -> float:
        """Share of the requested stages complete (a running stage counts half)."""
        weights = {"complete": 1.0, "running": 0.5}
        statuses = self.progress().values()
        return sum(weights.get(s, 0.0) for s in statuses) / max(1, len(self.stages))


def _escalate(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM, then SIGKILL, a stage that ignores Ctrl-C for ``grace_s`` seconds each."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            proc.wait(grace_s)
            return
        except subprocess.TimeoutExpired:
            log.warning("stage process %d still running: sending %s", proc.pid, sig.name)
            proc.send_signal(sig)

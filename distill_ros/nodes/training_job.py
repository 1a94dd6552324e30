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

    def stop(self, timeout_s: float = 30.0) -> None:
        """Interrupt the running stage (Ctrl-C; the run stays resumable) and wait."""
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self.state = "stopping"
            proc.send_signal(signal.SIGINT)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        for stage in self.stages:
            if self._stop.is_set():
                break
            self.current = stage
            cmd = [sys.executable, "-m", "distill_ros.cli", stage, self.config,
                   "--run-dir", str(self.run_dir)]
            self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True)
            _, err = self._proc.communicate()
            if self._stop.is_set():
                self.state = "stopped"
                return
            if self._proc.returncode != 0:
                self.state = "failed"
                self.error = f"stage {stage} exited {self._proc.returncode}: " + (
                    err.strip().splitlines() or ["no output"])[-1][:300]
                log.error("%s", self.error)
                return
        self.current = None
        self.state = "stopped" if self._stop.is_set() else "complete"

    def progress(self) -> dict[str, str]:
        """Status of every requested stage, from ``run.json`` (``pending`` before it exists)."""
        try:
            ledger = json.loads((self.run_dir / "run.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            ledger = {}
        stages = ledger.get("stages", {})
        return {s: stages.get(s, {}).get("status", "pending") for s in self.stages}

    def fraction(self) -> float:
        """Share of the requested stages complete (a running stage counts half)."""
        weights = {"complete": 1.0, "running": 0.5}
        statuses = self.progress().values()
        return sum(weights.get(s, 0.0) for s in statuses) / max(1, len(self.stages))

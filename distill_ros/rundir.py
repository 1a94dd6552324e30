"""The run directory and its ledger: every stage records its status in run.json.

Layout (DESIGN.md): run.json, teachers/<task>/, data/, student/, export/policy.onnx, report/.
Artefacts are written atomically (`distill_ros.atomic`), so a rerun resumes from what is on
disk. The folder is locked while a process works in it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import platform
import shutil
import time
import weakref
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from distill_ros import __version__
from distill_ros.atomic import (  # noqa: F401  (atomic_*: re-exported for older imports)
    atomic_path, atomic_savez, atomic_torch_save, atomic_write, atomic_write_json,
    atomic_write_text)

log = logging.getLogger(__name__)

STAGES = ("teachers", "collect", "distill", "export", "eval")
LOCK_FILE = ".lock"


class RunConfig(Protocol):
    """What the ledger needs of a run's config (`config.PipelineConfig` is one)."""

    seed: int

    def to_dict(self) -> dict:
        """The settings as run.json records them."""

    def digest(self) -> str:
        """A short hash of `to_dict()`."""


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder's lock."""


class RunDir:
    """A run's folder and its `run.json` ledger of stage status."""

    def __init__(self, root: str | Path, config: RunConfig,
                 view: Callable[[dict], dict] | None = None) -> None:
        """Lock and open the run folder `root` (a new one gets a new run.json).

        With `view`, the run must exist and only what `view` keeps of the two configs must
        match (a new evaluation of a finished run may change its held-out objects).
        """
        self.root = Path(root)
        self.config = config
        self._view = view
        self.ledger_path = self.root / "run.json"
        self._lock_fd = _lock(self.root)
        # the lock is the process's until close() or, at the latest, this object's end
        self._unlock = weakref.finalize(self, os.close, self._lock_fd)
        _remove_stale_temp_files(self.root)
        self.ledger = self._open_ledger()
        self.next_stages: tuple[str, ...] = ()  # what this invocation runs after this stage

    def close(self) -> None:
        """Release the run folder's lock (another process may then open it)."""
        self._unlock()

    def __enter__(self) -> "RunDir":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def clear(self, outputs: list[str]) -> None:
        """Delete a stage's outputs (paths relative to the run folder) so it starts afresh."""
        for rel in outputs:
            path = self.root / rel
            if path.is_dir():
                shutil.rmtree(path)
                log.info("--force: removed %s/", path)
            elif path.exists():
                path.unlink()
                log.info("--force: removed %s", path)

    def _open_ledger(self) -> dict:
        digest = self.config.digest()
        if self.ledger_path.exists():
            try:
                ledger = json.loads(self.ledger_path.read_text())
            except json.JSONDecodeError as err:
                raise ValueError(f"{self.ledger_path} is not valid JSON ({err}); move the run "
                                 "folder aside or delete run.json to start over") from None
            old, new = ledger.get("config", {}), self.config.to_dict()
            if self._view is not None:
                changed = _changed_keys(self._view(old), self._view(new))
            else:
                changed = _changed_keys(old, new) if ledger.get("config_hash") != digest else []
            if changed or (self._view is None and ledger.get("config_hash") != digest):
                raise ValueError(
                    f"{self.root} was made with a different config (changed: {changed}). "
                    "Use a new run name (config 'name' or --run-dir), or delete the folder.")
            return ledger
        if self._view is not None:
            raise FileNotFoundError(f"{self.root} holds no run (no run.json); run `distill-ros "
                                    "run CONFIG` first or give its --run-dir")
        ledger = {
            "config": self.config.to_dict(), "config_hash": digest, "seed": self.config.seed,
            "versions": _versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "stages": {s: {"status": "pending"} for s in STAGES},
        }
        atomic_write_json(self.ledger_path, ledger)
        return ledger

    def path(self, *parts: str) -> Path:
        """A path inside the run folder (parents created)."""
        p = self.root.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def done(self, stage: str) -> bool:
        """Whether `stage` finished in an earlier invocation."""
        return self.ledger["stages"][stage]["status"] == "complete"

    def mark(self, stage: str, status: str, **info: object) -> None:
        """Record a stage's status (and figures such as wall time) in run.json."""
        self.ledger["stages"][stage] = {"status": status, **info,
                                        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write_json(self.ledger_path, self.ledger)


def _lock(root: Path) -> int:
    """Take the run folder's exclusive lock, or raise naming the process that holds it.

    An `fcntl.flock` lock belongs to the open file: the kernel drops it when its holder
    exits, however it ends (SIGKILL included), so a stale lock file never blocks a run.
    """
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunFolderBusy(
            f"{root} is in use by another distill-ros process (pid {holder}); wait for it "
            f"to finish or stop it (kill {holder}), or use another --run-dir") from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _remove_stale_temp_files(root: Path) -> None:
    """Delete temporary files a killed run left (`atomic_path`'s `.NAME.*.tmp`).

    Safe only under the lock: no other process can be writing one of them now.
    """
    stale = [p for p in root.rglob(".*.tmp") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log.info("removed %d temporary file(s) left by an interrupted run", len(stale))


def _versions() -> dict:
    import gymnasium
    import torch

    return {"distill_ros": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__,
            "gymnasium": gymnasium.__version__}


def _changed_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _changed_keys(a, b, f"{prefix}{k}.")
        elif a != b:
            keys.append(f"{prefix}{k}")
    return keys

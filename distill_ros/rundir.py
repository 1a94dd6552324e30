"""The run directory and its ledger: every stage records its status in run.json.

Layout (DESIGN.md): run.json, teachers/<task>/, data/, student/, export/policy.onnx, report/.
Artefacts are written atomically (`distill_ros.atomic`), so a rerun resumes from what is on
disk.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from pathlib import Path

import numpy as np

from distill_ros import __version__
from distill_ros.atomic import atomic_write_json
from distill_ros.config import PipelineConfig

log = logging.getLogger(__name__)

STAGES = ("teachers", "collect", "distill", "export", "eval")


class RunDir:
    """A run's folder and its `run.json` ledger of stage status."""

    def __init__(self, root: str | Path, config: PipelineConfig) -> None:
        self.root = Path(root)
        self.config = config
        self.ledger_path = self.root / "run.json"
        self.ledger = self._open_ledger()

    def _open_ledger(self) -> dict:
        digest = self.config.digest()
        if self.ledger_path.exists():
            try:
                ledger = json.loads(self.ledger_path.read_text())
            except json.JSONDecodeError as err:
                raise ValueError(f"{self.ledger_path} is not valid JSON ({err}); move the run "
                                 "folder aside or delete run.json to start over") from None
            if ledger.get("config_hash") != digest:
                changed = _changed_keys(ledger.get("config", {}), self.config.to_dict())
                raise ValueError(
                    f"{self.root} was made with a different config (changed: {changed}). "
                    "Use a new run name (config 'name' or --run-dir), or delete the folder.")
            return ledger
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

"""Atomic files: a killed process leaves either the old file or the new one, never half a file.

Every artefact of a run (checkpoints, shards, reports, the exported policy) is written through
`atomic_path`: a temporary file beside the target, renamed over it once complete.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` for the block to write; renamed over `path` after it.

    The file gets the mode a plain ``open`` would give (0666 & ~umask, not ``mkstemp``'s
    0600): exported policies are read by other accounts (the robot's, a container's). If
    the block raises, the temporary file is removed and `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:  # a write to an open file
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise


def remove_stale_temporaries(folder: str | Path) -> int:
    """Delete what killed writers left in `folder` and below: `atomic_path`'s temporary files.

    Call it only when no writer can be at work there (e.g. after a stage's jobs have all
    ended). Returns how many files were removed.
    """
    stale = [p for p in Path(folder).rglob(".*.tmp") if p.is_file()] if Path(folder).is_dir() \
        else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Call `write(f)` on a temporary file beside `path`, fsync it, then rename over `path`."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    """Atomically write a text file."""
    atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write_json(path: str | Path, data: object) -> None:
    """Atomically write JSON (indented, keys sorted, for diffable reports)."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def atomic_savez(path: str | Path, **arrays: np.ndarray) -> None:
    """Atomically write a compressed npz."""
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))


def atomic_torch_save(path: str | Path, obj: object) -> None:
    """Atomically write a torch checkpoint."""
    import torch

    atomic_write(path, lambda f: torch.save(obj, f))

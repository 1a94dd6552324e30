"""Distillation algorithms as plug-ins: one folder each, found through one registry.

An algorithm's package defines ``ALGORITHM``, an :class:`Algorithm` record: its stages
(one function per pipeline stage, imported only when the pipeline runs) and the dataclass
of its own settings, read from the config section named after the algorithm. A built-in
is one entry in ``ALGORITHMS``; a user's is named in the config as
``distill.algorithm: my_pkg.my_module:ALGORITHM``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

from distill_ros.plugins import is_import_path, load_object

#: stage name -> function(run, cfg, executor) -> dict of figures for run.json
StageTable = Mapping[str, Callable[..., dict]]

ALGORITHMS: dict[str, str] = {  # built-in name -> the package that defines ALGORITHM
    "offline": "distill_ros.distill.offline",
    "onestep": "distill_ros.distill.onestep",
    "dagger": "distill_ros.distill.dagger",
}


@dataclass(frozen=True)
class Algorithm:
    """A distillation algorithm: its stages and the dataclass of its own config section."""

    name: str
    stages: Callable[[], StageTable]   # imports and returns the stage functions
    config_cls: Optional[type] = None  # settings under the top-level key `name`, if any
    #: (cfg, stage) -> paths `--force` deletes before the stage reruns; None: the default
    outputs: Optional[Callable[..., list[str]]] = None


def get_algorithm(name: str, key: str = "distill.algorithm") -> Algorithm:
    """The algorithm registered as `name`, or the user's `module:ALGORITHM`."""
    if is_import_path(name):
        algo = load_object(name, key, "algorithm")
        if not isinstance(algo, Algorithm):
            raise ValueError(f"{key}: {name!r} is a {type(algo).__name__}, not a "
                             "distill_ros.distill.Algorithm")
        return algo
    if name not in ALGORITHMS:
        raise ValueError(f"{key} must be one of {list(ALGORITHMS)} or my_pkg.my_module:NAME, "
                         f"got {name!r}")
    return importlib.import_module(ALGORITHMS[name]).ALGORITHM

"""Plug-ins named by import path: `my_pkg.my_module:NAME` in a config names a user's object."""

from __future__ import annotations

import importlib


def is_import_path(name: str) -> bool:
    """Whether `name` has the `module:attribute` form of a user's plug-in."""
    return ":" in name


def load_object(path: str, key: str, what: str) -> object:
    """Import `module:attribute` for config key `key`, with the fix in every error."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{key}: {path!r} is not of the form my_pkg.my_module:NAME")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{key}: cannot import {module_name!r} for {what} {path!r} ({err}); "
                         "install the package or put it on PYTHONPATH") from None
    if not hasattr(module, attr):
        raise ValueError(f"{key}: module {module_name!r} has no {attr!r}; it must define "
                         f"the {what} {path!r}")
    return getattr(module, attr)

"""Value checks for the components' settings dataclasses (each validates its own fields).

Every message names the dotted key, the bad value and what is valid; `config.load_config`
adds the file. This module imports nothing of the package, so any component can use it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable


def choice(key: str, value: object, choices: Iterable[object]) -> None:
    """Refuse `value` unless it is one of `choices`."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{key} must be one of {choices}, got {value!r}")


def positive(owner: str, **values: float) -> None:
    """Refuse any value that is not > 0 (and finite); keys are `owner.<name>`."""
    for name, value in values.items():
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{owner}.{name} must be > 0, got {value!r}")


def in_range(key: str, value: float, low: float, high: float, low_open: bool = False,
             high_open: bool = False) -> None:
    """Refuse `value` outside [low, high]; `low_open`/`high_open` exclude an end."""
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below and math.isfinite(value)):
        interval = (f"{'(' if low_open else '['}{_number(low)}, {_number(high)}"
                    f"{')' if high_open else ']'}")
        raise ValueError(f"{key} must be in {interval}, got {value!r}")


def positive_entries(key: str, values: Iterable[float]) -> None:
    """Refuse an empty list or any entry that is not > 0 (layer widths, sizes)."""
    values = list(values)
    if not values or any(not v > 0 for v in values):
        raise ValueError(f"{key} must list values > 0, got {values!r}")


def asdict_without_defaults(settings: object, late_keys: Iterable[str]) -> dict:
    """A settings dataclass as a dict, less the `late_keys` left at their defaults.

    For keys added after runs existed: not recording them at their defaults keeps those
    runs' config hashes (and resumes) valid.
    """
    d = dataclasses.asdict(settings)
    for f in dataclasses.fields(settings):
        if f.name not in late_keys:
            continue
        default = (f.default_factory() if f.default is dataclasses.MISSING
                   else f.default)  # a nested section's default: its own defaults
        if dataclasses.is_dataclass(default):
            default = dataclasses.asdict(default)
        if d[f.name] == default:
            d.pop(f.name)
    return d


def _number(value: float) -> str:
    """An integer in full (seeds), anything else short."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"

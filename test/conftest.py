"""Shared test fixtures: tiny configs, a scripted expert file, one torch thread."""

from __future__ import annotations

from pathlib import Path

import os

import pytest
import yaml

# Before anything imports distill_ros.ros (the backend is chosen at import time): every DDS
# process of the test session, children included, talks to 127.0.0.1 only, multicast off,
# on a random private domain.
os.environ["DISTILL_ROS_BACKEND"] = os.environ.get("DISTILL_ROS_TEST_BACKEND", "dds")
os.environ.setdefault("DISTILL_ROS_DISTRO", "humble")
try:
    from distill_ros.ros.dds_config import isolate_for_tests
except ImportError:  # cyclonedds absent (e.g. `colcon test` linters on the system Python)
    pass
else:
    isolate_for_tests()

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config) -> None:
    """One torch thread per test process: the machines are shared and small."""
    try:
        import torch
    except ImportError:  # `colcon test` runs the lint tests with the system Python
        return
    torch.set_num_threads(1)


def write_config(path: Path, **overrides) -> Path:
    """A tiny grasp pipeline config (two objects, one held out), with overrides merged in."""
    cfg = {
        "name": "tiny", "family": "grasp", "tasks": ["cube", "lego"], "held_out": ["rand009"],
        "seed": 0,
        "teachers": {"timesteps": 2000, "checkpoint_every": 1000, "eval_episodes": 2},
        "collect": {"episodes_per_task": 20, "shard_episodes": 10},
        "distill": {"epochs": 25},
        "eval": {"episodes": 10},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="session")
def expert_file(tmp_path_factory) -> Path:
    """The scripted grasp expert saved as a user TorchScript teacher."""
    from distill_ros.teachers.scripted import save_scripted_expert

    path = tmp_path_factory.mktemp("expert") / "expert.pt"
    save_scripted_expert(str(path))
    return path

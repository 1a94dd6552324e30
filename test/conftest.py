"""Shared test fixtures: tiny configs, a scripted expert file, one torch thread."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

import pytest
import yaml

# Before anything imports distill_ros.ros (the backend is chosen at import time). The backend
# under test: DISTILL_ROS_TEST_BACKEND=dds|rclpy, else dds (rclpy where the dds extra is
# missing). scripts/test.sh runs everything on dds, then test/ros and test/nodes on rclpy.
# Every DDS process of the session, children included, talks to 127.0.0.1 only, multicast
# off, on a random private domain.


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


TEST_BACKEND = os.environ.get("DISTILL_ROS_TEST_BACKEND", "").strip().lower() or (
    "rclpy" if not _importable("cyclonedds") and _importable("rclpy") else "dds")
MIDDLEWARE = {"dds": "cyclonedds", "rclpy": "rclpy"}.get(TEST_BACKEND, TEST_BACKEND)
os.environ["DISTILL_ROS_BACKEND"] = TEST_BACKEND
os.environ.setdefault("DISTILL_ROS_DISTRO", "humble")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_cyclonedds_cpp")  # the rmw the tests configure
try:
    from distill_ros.ros.dds_config import isolate_for_tests  # (imports the backend)
except ImportError:  # no middleware here (e.g. `colcon test` linters on the system Python)
    pass
else:
    isolate_for_tests()


def importorskip_middleware() -> None:
    """Skip the calling test module when the backend under test cannot be imported."""
    pytest.importorskip(MIDDLEWARE, reason=(
        f"the {TEST_BACKEND} backend needs {MIDDLEWARE}: pip install 'distill_ros[dds]'"
        if TEST_BACKEND == "dds" else
        f"the {TEST_BACKEND} backend needs {MIDDLEWARE}: source /opt/ros/humble/setup.bash"))


REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config) -> None:
    """One torch thread per test process: the machines are shared and small."""
    if TEST_BACKEND not in ("dds", "rclpy"):
        raise pytest.UsageError(f"DISTILL_ROS_TEST_BACKEND must be dds or rclpy, got "
                                f"{TEST_BACKEND!r}")
    if TEST_BACKEND == "rclpy" and not _importable("rclpy"):
        raise pytest.UsageError("DISTILL_ROS_TEST_BACKEND=rclpy but rclpy does not import: "
                                "source /opt/ros/humble/setup.bash first")
    try:
        import torch
    except ImportError:  # `colcon test` runs the lint tests with the system Python
        return
    torch.set_num_threads(1)


def load_bench(name: str):
    """The module of ``bench/<name>.py`` (benches are scripts, not a package)."""
    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import would: dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


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


def write_toy_config(folder: Path, tasks: list[str], **sections) -> Path:
    """A seconds-long toy config in `folder`: the analytic expert (TorchScript) teaches all."""
    from distill_ros.teachers.scripted import save_toy_expert

    expert = folder / "toy_expert.pt"
    save_toy_expert(str(expert))
    cfg = {"name": "toy", "family": "toy", "tasks": tasks,
           "teachers": {"sources": {t: str(expert) for t in tasks}, "eval_episodes": 2},
           "eval": {"episodes": 2}, **sections}
    path = folder / "toy.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def garment_cache(tmp_path_factory):
    """Dressing garment meshes go to a temporary cache, not the user's."""
    from distill_ros.tasks.dressing.garments import CACHE_ENV

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("garments")))
        yield


#: tests that need open3d (point-cloud preprocessing) skip without it, saying how to install it
needs_open3d = pytest.mark.skipif(importlib.util.find_spec("open3d") is None,
                                  reason="open3d is not installed: pip install "
                                  "'distill_ros[pointcloud]'")

"""The real ROS 2 tools (``ros2`` CLI, ``ros2 launch``) for interop tests.

``ros2`` runs on ``/usr/bin/python3`` with ``/opt/ros/humble`` sourced; it inherits the
test session's loopback-only Cyclone settings and private ``ROS_DOMAIN_ID`` (set by
``test/conftest.py``). :func:`package_prefix` makes an install prefix that shows this
checkout's ``distill_ros`` to ``ros2 launch``, with the executables of the test venv.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, Optional

import pytest

ROS_SETUP = Path(os.environ.get("DISTILL_ROS_TEST_ROS_SETUP", "/opt/ros/humble/setup.bash"))
REPO = Path(__file__).resolve().parents[2]

needs_ros2 = pytest.mark.skipif(
    not ROS_SETUP.is_file(),
    reason=f"ROS 2 is not installed ({ROS_SETUP} missing): bash ../shared/ros2/install.sh")


@functools.lru_cache(maxsize=1)
def _sourced() -> Dict[str, str]:
    out = subprocess.run(["bash", "-c", f"source {ROS_SETUP} && env -0"], capture_output=True,
                         check=True, timeout=60, env={"HOME": os.environ.get("HOME", "/tmp"),
                                                      "PATH": "/usr/bin:/bin"})
    return dict(item.split("=", 1) for item in out.stdout.decode().split("\0") if "=" in item)


def ros2_env(**extra: str) -> Dict[str, str]:
    """This process's environment plus a sourced ROS 2 (paths prepended), on Cyclone DDS."""
    env = dict(os.environ)
    for key, value in _sourced().items():
        if key in ("PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "AMENT_PREFIX_PATH"):
            env[key] = os.pathsep.join(v for v in (value, os.environ.get(key, "")) if v)
        elif key.startswith("ROS_") and key != "ROS_DOMAIN_ID":
            env[key] = value
    env.setdefault("ROS_LOG_DIR", os.path.join(tempfile.gettempdir(), "distill_ros_test_ros_log"))
    env.update(RMW_IMPLEMENTATION="rmw_cyclonedds_cpp", PYTHONUNBUFFERED="1", **extra)
    return env


def ros2(*args: str, timeout_s: float = 60.0, check: bool = True,
         env: Optional[Dict[str, str]] = None) -> str:
    """Run ``ros2 ARGS`` and return its stdout (stderr too when ``check`` fails)."""
    out = subprocess.run(["ros2", *args], capture_output=True, text=True, timeout=timeout_s,
                         env=env or ros2_env())
    if check:
        assert out.returncode == 0, (f"ros2 {' '.join(args)} exited {out.returncode}:\n"
                                     f"{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out.stdout + ("" if check else out.stderr)


def stop_daemon() -> None:
    """End the ``ros2`` daemon of this session's domain (the CLI starts one)."""
    ros2("daemon", "stop", check=False)


def package_prefix(root: Path) -> Path:
    """An install prefix under ``root`` for ``ros2 launch distill_ros ...`` (AMENT_PREFIX_PATH).

    It holds what ``colcon build`` installs for an ament_python package: the ament index
    entry, ``share/distill_ros`` (launch, config, rviz, package.xml) and
    ``lib/distill_ros/<executable>``; the executables are this venv's console scripts,
    so the nodes run with the test venv's packages.
    """
    share = root / "share" / "distill_ros"
    share.mkdir(parents=True)
    index = root / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    (index / "distill_ros").write_text("")
    for name in ("launch", "config", "rviz"):   # copies: ros2 launch does not follow links
        shutil.copytree(REPO / name, share / name)
    shutil.copy2(REPO / "package.xml", share / "package.xml")
    lib = root / "lib" / "distill_ros"
    lib.mkdir(parents=True)
    for exe in ("sim_robot", "policy_inference", "distill_trainer", "motion_command"):
        script = Path(sys.prefix) / "bin" / exe
        assert script.is_file(), f"{script} missing: pip install -e . in this venv"
        (lib / exe).symlink_to(script)
    return root

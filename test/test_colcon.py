"""The package builds, installs and tests with colcon the way a ROS 2 workspace does."""

import os
import shutil
import site
import subprocess
import sys
from xml.etree import ElementTree

import pytest

from conftest import REPO

pytestmark = pytest.mark.skipif(
    shutil.which("colcon") is None,
    reason="colcon is not installed here (apt install colcon python3-colcon-ros)")


def _colcon(ws, *args, env=None):
    out = subprocess.run(["colcon", *args], cwd=ws, capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, f"colcon {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def test_colcon_build_installs_what_ros2_run_and_launch_need(tmp_path):
    src = tmp_path / "src" / "distill_ros"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    _colcon(tmp_path, "build")
    install = tmp_path / "install" / "distill_ros"
    share = install / "share" / "distill_ros"
    assert (install / "lib" / "distill_ros" / "distill-ros").is_file(), "ros2 run finds nothing"
    assert (share / "package.xml").is_file()
    assert (install / "share" / "ament_index" / "resource_index" / "packages" /
            "distill_ros").is_file(), "package not registered in the ament index"
    for folder in ("config", "launch"):
        if not (REPO / folder).is_dir():  # git keeps no empty folders
            continue
        expected = sorted(p.name for p in (REPO / folder).iterdir() if p.is_file()
                          and p.suffix in (".yaml", ".py"))
        assert sorted(p.name for p in (share / folder).iterdir()) == expected, folder

    # colcon test runs the package's linters; deps come from this interpreter's environment
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(site.getsitepackages())}
    _colcon(tmp_path, "test", "--packages-select", "distill_ros", "--pytest-args", "-m",
            "linter", env=env)
    result = _colcon(tmp_path, "test-result", "--all")
    assert "0 errors, 0 failures" in result, result
    # modules whose optional dependency is missing count as "collection skipped"; the three
    # linters must have run and passed
    cases = ElementTree.parse(tmp_path / "build" / "distill_ros" / "pytest.xml").iter("testcase")
    linters = {c.get("name"): [child.tag for child in c] for c in cases
               if c.get("classname", "").endswith("test_lint")}
    assert linters == {"test_flake8": [], "test_pep257": [], "test_xmllint_package_xml": []}, \
        f"{linters}\n{result}"


def test_the_suite_collects_without_the_dds_extra(tmp_path):
    # as `colcon test` on a ROS 2 machine without `pip install distill_ros[dds]`: modules
    # that need the missing middleware skip with a reason instead of failing to import
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text("import sys\nsys.modules['cyclonedds'] = None\n"
                       "sys.modules['rosbags'] = None\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("DISTILL_ROS_TEST_BACKEND", None)
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-rs",
                          "-p", "no:cacheprovider", "test/ros", "test/nodes"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "ERROR collecting" not in out.stdout, out.stdout[-3000:]
    assert "test_wire.py" in out.stdout and "pip install 'distill_ros[dds]'" in out.stdout, \
        out.stdout[-2000:]

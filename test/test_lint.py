"""ROS 2 package hygiene as `colcon test` runs it: flake8 (99 columns), pep257, xmllint."""

import importlib.util
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conftest import REPO

SOURCES = ["distill_ros", "test", "bench", "launch", "setup.py"]


def _require(module):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed for {sys.executable} (pip install "
                    f"'distill_ros[test]' or apt install python3-{module})")


@pytest.mark.linter
def test_flake8():
    _require("flake8")
    present = [s for s in SOURCES if (REPO / s).exists()]
    out = subprocess.run([sys.executable, "-m", "flake8", *present], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 0, f"flake8 found problems:\n{out.stdout}{out.stderr}"


@pytest.mark.linter
def test_pep257():
    _require("pydocstyle")
    out = subprocess.run([sys.executable, "-m", "pydocstyle", "distill_ros", "setup.py"],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, f"pydocstyle found problems:\n{out.stdout}{out.stderr}"


@pytest.mark.linter
def test_xmllint_package_xml():
    path = REPO / "package.xml"
    if shutil.which("xmllint"):
        out = subprocess.run(["xmllint", "--noout", str(path)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    root = ET.parse(path).getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("export/build_type") == "ament_python"
    deps = {e.text for e in root.findall("exec_depend")}
    needed = {"rclpy", "std_msgs", "sensor_msgs", "std_srvs", "trajectory_msgs",
              "diagnostic_msgs", "visualization_msgs", "lifecycle_msgs"}
    assert needed <= deps, f"package.xml lacks exec_depend {sorted(needed - deps)}"
    assert root.findtext("name") == "distill_ros"

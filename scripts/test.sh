#!/usr/bin/env bash
# Set up, then run the test suite on both ROS backends (Cyclone DDS stays on loopback: see
# test/conftest.py):
#   1. everything on the DDS backend (the ros2 CLI / ros2 launch interop tests use
#      /opt/ros/humble when it is installed, and skip with the reason when it is not);
#   2. when ROS 2 Humble is installed, the ROS-facing tests (test/ros, test/nodes) again on
#      real rclpy: /opt/ros/humble sourced, DISTILL_ROS_TEST_BACKEND=rclpy.
# Without arguments both runs leave out the tests marked `slow` (end-to-end runs of minutes:
# Ray clusters, kills and resumes, the humanoid and dressing students trained from scratch);
# `--slow` runs everything in both runs (scripts/test.sh --slow). Other arguments go to pytest
# and run step 1 only, slow tests included (e.g. scripts/test.sh test/ros -x).
# ../shared/ros2/install.sh, where present (CI), installs ROS 2 Humble first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROS_SETUP=/opt/ros/humble/setup.bash
SELECT=(-m "not slow")
if [ "${1:-}" = "--slow" ]; then
  SELECT=()
  shift
fi
if [ $# -gt 0 ]; then
  SELECT=()
fi
if [ -f ../shared/ros2/install.sh ]; then
  bash ../shared/ros2/install.sh
fi
bash scripts/setup.sh
# students that several tests train (test/humanoid_students.py) are trained once for both runs
DISTILL_ROS_TEST_CACHE=$(mktemp -d -t distill_ros_tests.XXXXXX)
export DISTILL_ROS_TEST_CACHE
trap 'rm -rf "$DISTILL_ROS_TEST_CACHE"' EXIT
.venv/bin/python -m pytest -q --durations=15 "${SELECT[@]}" "$@"
if [ $# -gt 0 ]; then
  exit 0
fi
if [ ! -f "$ROS_SETUP" ]; then
  echo "test.sh: $ROS_SETUP missing: the rclpy-backend run is skipped (bash ../shared/ros2/install.sh)"
  exit 0
fi
if ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "test.sh: the rclpy-backend run is skipped: ROS 2 Humble's rclpy here is built for" \
       "CPython 3.11 and .venv has $(.venv/bin/python -V) (PYTHON=python3.11 bash scripts/setup.sh)"
  exit 0
fi
echo "test.sh: test/ros and test/nodes again on the rclpy backend ($ROS_SETUP)"
set +u  # setup.bash reads unset variables
# shellcheck disable=SC1090
source "$ROS_SETUP"
set -u
export RMW_IMPLEMENTATION=rmw_cyclonedds_cpp DISTILL_ROS_TEST_BACKEND=rclpy
.venv/bin/python -m pytest -q --durations=15 "${SELECT[@]}" test/ros test/nodes

#!/usr/bin/env bash
# Set up everything from nothing: Debian packages (when root or sudo is available), a virtualenv
# in .venv, and distill_ros with its DDS, test and Ray extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3-venv libusb-1.0-0 colcon python3-colcon-ros libxml2-utils)
if command -v apt-get >/dev/null; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"
  if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
    missing=()
    for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
      echo "setup: apt installing ${missing[*]}"
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
  else
    echo "setup: not root and no sudo; skipping apt (${APT_PACKAGES[*]}): colcon checks will skip"
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# The CPU build of torch, pinned here (not in setup.py): a bare `torch` pulls CUDA wheels.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dds,test,ray,pointcloud]"  # ray: its tests take ~20 s; open3d: point clouds
echo "setup: ready ($(.venv/bin/python -c 'import torch, onnxruntime, pybullet; print("torch", torch.__version__, "onnxruntime", onnxruntime.__version__)' 2>/dev/null | tail -1))"

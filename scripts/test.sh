#!/usr/bin/env bash
# Set up, then run the whole test suite (Cyclone DDS stays on loopback: see test/ros/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"

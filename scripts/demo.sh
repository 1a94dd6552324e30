#!/usr/bin/env bash
# Set up, then run the whole pipeline on the built-in quick grasping config.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/distill-ros run "${1:-config/grasp_quick.yaml}"

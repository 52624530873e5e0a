#!/usr/bin/env bash
# Set-up, then the built-in demo: a local mesh with real traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/meshcore demo "$@"

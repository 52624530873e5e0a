#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up, then pytest, which also
# runs the C core's unit tests (plain and under ASan/UBSan) and the linters.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"

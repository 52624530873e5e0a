"""bench_mtls.py's checks of a pair before its runs: the GET through it, the probes of the
server side over mTLS, and the TLS counters of its admin API.
"""
from __future__ import annotations

import re
import socket
import ssl

from common import (
    EXPECTED_BODY,
    BenchError,
    admin_counters,
    check_get,
)
from mtls_certs import CLIENT_ID, INTRUDER_ID
from mtls_configs import ADMIN_PAIRS
from mtls_results import Result

# The probes of the server side, in the order shown.
PROBES = ("client cert", "no cert", "other SPIFFE ID")


def check_request(port: int, procs: dict, timeout: float = 3.0) -> None:
    """GET / through the pair must come back 200 with the upstream's body
    (common.check_get); both proxies of the pair must stay alive."""
    def alive():
        for p in procs.values():
            p.check_alive()

    check_get(port, alive, f"the pair (port {port})", timeout)


def mtls_get(port: int, certs: dict, identity: str | None, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET / over TLS 1.3 straight to a server sidecar, presenting `identity`'s
    certificate ("client", "intruder") or none. (status, body); raises OSError
    (ssl.SSLError included) when the server refuses."""
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.check_hostname = False  # a SPIFFE ID, no host name
    tls.minimum_version = ssl.TLSVersion.TLSv1_3
    tls.load_verify_locations(certs["root"])
    tls.set_alpn_protocols(["http/1.1"])
    if identity:
        tls.load_cert_chain(certs[f"{identity}_cert"], certs[f"{identity}_key"])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw, \
            tls.wrap_socket(raw) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    parts = head.split(None, 2)
    status = int(parts[1]) if head.startswith(b"HTTP/") and len(parts) > 1 else 0
    return status, body


def probe(port: int, certs: dict, identity: str | None) -> tuple[bool, str]:
    """(served, what happened) for one mtls_get."""
    try:
        status, body = mtls_get(port, certs, identity)
    except ssl.SSLEOFError:
        return False, "refused: closed"
    except ssl.SSLError as e:
        # e.g. TLSV13_ALERT_CERTIFICATE_REQUIRED -> "alert certificate required"
        reason = (e.reason or str(e)).lower().replace("_", " ")
        reason = re.sub(r"^(sslv3|tlsv1|tlsv13) ", "", reason)
        return False, f"refused: {reason[:60]}"
    except OSError as e:
        return False, f"refused: {type(e).__name__}"
    if status == 200 and body == EXPECTED_BODY:
        return True, "200 ok"
    if status == 0:
        return False, "refused: closed, no response"
    return False, f"answered {status} {body[:40]!r}"


def run_probes(name: str, port: int, certs: dict, res: Result) -> None:
    """The server side must serve the client's certificate, refuse a missing
    one and, where it can match SPIFFE IDs (meshcore, Envoy), refuse another
    workload's. Any other outcome fails the pair."""
    served, what = probe(port, certs, "client")
    res.probes["client cert"] = what
    if not served:
        raise BenchError(f"the server side (port {port}) did not serve a client presenting "
                         f"{CLIENT_ID}: {what}")
    served, what = probe(port, certs, None)
    res.probes["no cert"] = what
    if served:
        raise BenchError(f"the server side (port {port}) served a client without a certificate")
    served, what = probe(port, certs, "intruder")
    if name in ADMIN_PAIRS:
        res.probes["other SPIFFE ID"] = what
        if served:
            raise BenchError(f"the server side (port {port}) served {INTRUDER_ID}, though its "
                             f"validation context matches only {CLIENT_ID}")
    else:
        res.probes["other SPIFFE ID"] = what + (" (no URI SAN matching)" if served else "")


def tls_keys(ctx: dict) -> dict[str, str]:
    """The admin counters that show the pair's TLS: the server listener's and
    the client cluster's (Envoy's names; meshcore uses the same)."""
    return {"server": f"listener.127.0.0.1_{ctx['ports']['server_port']}.ssl.",
            "client": "cluster.server-sidecar.ssl."}


# Envoy's process-wide and admin-listener scopes: not about the pair's traffic.
NOT_SHOWN = ("server.", "runtime.", "cluster_manager.", "listener_manager.", "http.admin.",
             "listener.admin.", "admin.")


def read_counters(ctx: dict) -> dict[str, dict[str, int]]:
    """Both sides' counters of interest: TLS, requests, connections, errors."""
    keep = re.compile(r"(ssl\.(handshake|connection_error|fail_|no_certificate|session_reused|"
                      r"versions\.|curves\.|ciphers\.)|downstream_rq_total|downstream_cx_total|"
                      r"upstream_cx_total|upstream_rq_total|_5xx|reset|timeout|fail|error)")
    out = {}
    for role in ("server", "client"):
        raw = admin_counters(ctx[f"{role}_admin_port"])
        out[role] = {k: v for k, v in sorted(raw.items())
                     if v and keep.search(k) and not k.startswith(NOT_SHOWN)}
    return out


def check_tls_counters(ctx: dict) -> dict[str, dict[str, int]]:
    counters = read_counters(ctx)
    for role, prefix in tls_keys(ctx).items():
        if not counters[role].get(prefix + "handshake"):
            raise BenchError(f"the {role} side's admin API shows no TLS handshake "
                             f"({prefix}handshake) after the check request")
    return counters


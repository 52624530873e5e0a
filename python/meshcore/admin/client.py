"""The admin API's client: what `meshcore proxy-config` and `meshcore stat`
use to read a running proxy (or an Envoy) over its admin HTTP API.

    admin = Admin(admin_address("127.0.0.1:15000"))
    admin.get("/config_dump")          # JSON, or a MeshcoreError naming the address

http.client is imported on the first request, not here: `meshcore proxy`
builds the CLI's parser too, and pays for nothing it does not use.
"""
from __future__ import annotations

import argparse
import json
import socket

from meshcore.errors import MeshcoreError


def admin_address(text: str) -> tuple[str, int]:
    """argparse type: "HOST:PORT", "[V6]:PORT", "http://HOST:PORT/" or "PORT" (127.0.0.1)."""
    t = text.strip()
    if "://" in t:
        t = t.split("://", 1)[1]
    t = t.rstrip("/")
    if t.isdigit():
        host, port = "127.0.0.1", t
    else:
        host, sep, port = t.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit():
            raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT or a port")
    if not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: port out of range")
    return host, int(port)


def show_address(addr: tuple[str, int]) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Admin:
    """GETs JSON from one admin API; every failure is a MeshcoreError naming the address."""

    def __init__(self, addr: tuple[str, int], timeout: float = 5.0):
        self.addr = addr
        self.timeout = timeout

    def fetch(self, path: str, headers: dict | None = None) -> tuple[int, str, str]:
        """(status, reason, body) of GET path; an unreachable admin API is a
        MeshcoreError naming it (`meshcore stat` scrapes through this too)."""
        import http.client  # here, not at import: `meshcore proxy` builds this parser too (admin/server.py: RSS)

        conn = http.client.HTTPConnection(*self.addr, timeout=self.timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.reason, resp.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as e:
            reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
            if isinstance(e, socket.timeout):
                reason = f"no answer within {self.timeout:g}s"
            raise MeshcoreError(f"cannot reach the admin API at {show_address(self.addr)}: {reason}") from None
        finally:
            conn.close()

    def get(self, path: str, missing_ok: bool = False):
        """The JSON document at path; None for a 404 when missing_ok."""
        where = show_address(self.addr)
        status, reason, body = self.fetch(path, {"Accept": "application/json"})
        if status == 404 and missing_ok:
            return None
        if status != 200:
            line = body.strip().splitlines()[0] if body.strip() else ""
            raise MeshcoreError(f"admin API at {where}: GET {path}: {status} {reason}"
                                + (f": {line}" if line else ""))
        try:
            return json.loads(body)
        except ValueError:
            raise MeshcoreError(f"admin API at {where}: GET {path}: not JSON "
                                f"(is {where} a meshcore or Envoy admin API?)") from None

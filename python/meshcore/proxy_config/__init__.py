"""`meshcore proxy-config listeners|routes|clusters|endpoints|secrets ADMIN_ADDR`.

What a running proxy holds, one row per thing, from its admin API (as
`istioctl proxy-config` reads a sidecar's Envoy):

    listeners  a row per listener and filter chain: bound address, chain match,
               terminal filter (route config or tcp_proxy clusters), TLS, RBAC
    routes     a row per route: route config, virtual host domains, match,
               action (cluster, weighted clusters, redirect, direct response),
               timeout, retry policy
    clusters   a row per cluster: type, load balancer, endpoints, circuit-breaker
               thresholds against the live gauges, outlier detection, TLS
    endpoints  a row per endpoint: health, weight, active requests/connections,
               success rate
    secrets    a row per static secret: certificate or trust bundle, SPIFFE ID,
               serial, validity; never key material

Sources: /config_dump, /config_dump?resource=static_secrets, /certs,
/clusters?format=json, /stats?format=json, /listeners?format=json and
/server_info. `-o json` (or yaml) prints the rows as data: the same facts as
the table, unabbreviated. Rows are built by pure functions of the admin
documents (``*_rows``), so they can be tested without a proxy.

This package builds the rows (one module per kind: listeners.py, routes.py,
clusters.py for clusters and endpoints, secrets.py; dump.py reads the dump
and prints tables); the command itself is meshcore/cli/proxy_config.py. An
unreachable admin API is a MeshcoreError naming the address (exit 1); bad
arguments exit 2 (argparse).
"""
from __future__ import annotations

import urllib.parse

from meshcore.admin.client import Admin, show_address
from meshcore.errors import MeshcoreError

from .clusters import CLUSTER_COLUMNS, ENDPOINT_COLUMNS, cluster_rows, endpoint_rows
from .dump import render, render_table, socket_address  # noqa: F401 (render, render_table: for the CLI)
from .listeners import LISTENER_COLUMNS, listener_rows
from .routes import ROUTE_COLUMNS, route_clusters, route_rows
from .secrets import SECRET_COLUMNS, secret_rows

KINDS = ("listeners", "routes", "clusters", "endpoints", "secrets")


def _stats(admin: Admin, pattern: str) -> dict:
    doc = admin.get("/stats?format=json&filter=" + urllib.parse.quote(pattern))
    return {s["name"]: s["value"] for s in doc.get("stats", []) if "name" in s}


def collect(kind: str, admin: Admin) -> list[dict]:
    """The rows of one kind, from the admin API."""
    if kind == "secrets":
        dump = admin.get("/config_dump?resource=static_secrets", missing_ok=True)
        if dump is not None and not dump.get("configs"):  # an xDS-fed proxy: its own, as Envoy shows SDS secrets
            dump = admin.get("/config_dump?resource=dynamic_active_secrets", missing_ok=True) or dump
        if dump is None:
            raise MeshcoreError(f"admin API at {show_address(admin.addr)} does not list secrets "
                                "(/config_dump?resource=static_secrets)")
        certs = admin.get("/certs", missing_ok=True) or {}
        return secret_rows(dump, certs)
    dump = admin.get("/config_dump")
    if kind == "listeners":
        doc = admin.get("/listeners?format=json")
        bound = {ls.get("name", ""): socket_address(ls.get("local_address"))
                 for ls in doc.get("listener_statuses", [])}
        return listener_rows(dump, bound)
    if kind == "routes":
        return route_rows(dump)
    stats = _stats(admin, r"^cluster\.")
    clusters_json = admin.get("/clusters?format=json")
    if kind == "clusters":
        return cluster_rows(dump, stats, clusters_json)
    return endpoint_rows(dump, clusters_json, stats)


def select(kind: str, rows: list[dict], args) -> list[dict]:
    """Applies the kind's filters (--name, --port, --cluster, ...)."""
    def keep(r):
        name = getattr(args, "name", None)
        if kind == "listeners":
            port = str(args.port) if args.port is not None else None
            return ((name is None or r["listener"] == name)
                    and (port is None or port in (r["address"].rsplit(":", 1)[-1],
                                                  r["configured_address"].rsplit(":", 1)[-1]))
                    and (args.address is None or r["address"].rsplit(":", 1)[0].strip("[]") == args.address))
        if kind == "routes":
            return ((name is None or r["route_config"] == name)
                    and (args.cluster is None or args.cluster in route_clusters(r))
                    and (args.domain is None or args.domain in r["domains"]))
        if kind == "clusters":
            return name is None or r["name"] == name
        if kind == "endpoints":
            host, _, port = r["address"].rpartition(":")
            return ((args.cluster is None or r["cluster"] == args.cluster)
                    and (args.address is None or host.strip("[]") == args.address)
                    and (args.port is None or port == str(args.port))
                    and (args.status is None or r["health"] == args.status))
        return name is None or r["name"] == name
    return [r for r in rows if keep(r)]


COLUMNS = {"listeners": LISTENER_COLUMNS, "routes": ROUTE_COLUMNS, "clusters": CLUSTER_COLUMNS,
           "endpoints": ENDPOINT_COLUMNS, "secrets": SECRET_COLUMNS}

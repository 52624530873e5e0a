"""Envoy v3 bootstrap documents (dicts in the YAML shape) for the tests.

Every listener binds 127.0.0.1 port 0; tests read the bound port back from
the engine or the admin API.
"""
from __future__ import annotations

import os
import pathlib
import tempfile

import yaml

TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
CONN_LIMIT = "type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit"


def tcp_proxy_listener(name: str, cluster: str | None = None, *, weighted: dict | None = None,
                       stat_prefix: str | None = None, idle_timeout: str | None = None,
                       max_connect_attempts: int | None = None, connection_limit: int | None = None,
                       port: int = 0, address: str = "127.0.0.1") -> dict:
    """A listener whose chain is [connection_limit] + tcp_proxy.

    cluster: one cluster; weighted: {cluster name: weight} instead."""
    tp = {"@type": TCP_PROXY, "stat_prefix": stat_prefix or f"{name}_tcp"}
    if weighted:
        tp["weighted_clusters"] = {"clusters": [{"name": n, "weight": w} for n, w in weighted.items()]}
    else:
        tp["cluster"] = cluster
    if idle_timeout is not None:
        tp["idle_timeout"] = idle_timeout
    if max_connect_attempts is not None:
        tp["max_connect_attempts"] = max_connect_attempts
    filters = []
    if connection_limit is not None:
        filters.append({"name": "envoy.filters.network.connection_limit",
                        "typed_config": {"@type": CONN_LIMIT, "stat_prefix": f"{name}_limit",
                                         "max_connections": connection_limit}})
    filters.append({"name": "envoy.filters.network.tcp_proxy", "typed_config": tp})
    return {"name": name,
            "address": {"socket_address": {"address": address, "port_value": port}},
            "filter_chains": [{"filters": filters}]}


def static_cluster(name: str, endpoints, *, lb_policy: str = "ROUND_ROBIN",
                   connect_timeout: str = "1s") -> dict:
    """endpoints: ports, or (port, weight) pairs, all on 127.0.0.1."""
    lb = []
    for ep in endpoints:
        port, weight = ep if isinstance(ep, tuple) else (ep, None)
        item = {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}
        if weight is not None:
            item["load_balancing_weight"] = weight
        lb.append(item)
    return {"name": name, "type": "STATIC", "connect_timeout": connect_timeout, "lb_policy": lb_policy,
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": lb}]}}


def bootstrap(listeners: list, clusters: list, admin_port: int | None = None) -> dict:
    doc = {"node": {"id": "integration-test", "cluster": "tests"},
           "static_resources": {"listeners": listeners, "clusters": clusters}}
    if admin_port is not None:
        doc["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}}
    return doc


def simple(upstream_ports, *, listener: str = "ingress", cluster: str = "backend", **listener_kw) -> dict:
    """One tcp_proxy listener to one ROUND_ROBIN cluster of the given ports."""
    return bootstrap([tcp_proxy_listener(listener, cluster, **listener_kw)],
                     [static_cluster(cluster, upstream_ports)])


def dump(doc: dict) -> str:
    return yaml.safe_dump(doc, sort_keys=False)


def write_config(path, doc_or_text) -> pathlib.Path:
    """Writes the file atomically (a reload never reads a half-written file)."""
    path = pathlib.Path(path)
    text = doc_or_text if isinstance(doc_or_text, str) else dump(doc_or_text)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path

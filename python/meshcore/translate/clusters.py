"""DestinationRule traffic policy -> Envoy Cluster (dicts in Envoy's JSON shape).

Clusters are named as Istio names them, `outbound|<port>|<subset>|<host>`.
A cluster's policy is the DestinationRule's trafficPolicy, overridden by its
portLevelSettings for the port, then by the subset's trafficPolicy and its
portLevelSettings (Istio's MergeTrafficPolicy: each of connectionPool,
loadBalancer, outlierDetection and tls is replaced whole).
"""
from __future__ import annotations

from meshcore.durations import MS, go_duration_ns
from meshcore.xds_types import UPSTREAM_HTTP_OPTIONS, type_url

from . import registry as reg

SECTIONS = ("connectionPool", "loadBalancer", "outlierDetection", "tls")
DEFAULT_CONNECT_TIMEOUT = "10s"  # Istio's mesh default connectTimeout
MAX_U32 = 2**32 - 1  # Istio's circuit breaker defaults: effectively unlimited
LB_POLICIES = {"ROUND_ROBIN": "ROUND_ROBIN", "LEAST_CONN": "LEAST_REQUEST", "LEAST_REQUEST": "LEAST_REQUEST",
               "RANDOM": "RANDOM", "UNSPECIFIED": "LEAST_REQUEST"}
DEFAULT_LB = "LEAST_REQUEST"  # Istio's default since 1.14


def cluster_name(port: int, subset: str, host: str) -> str:
    return f"outbound|{port}|{subset}|{host}"


def envoy_duration(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    if not rest:
        return f"{seconds}s"
    return f"{seconds}.{f'{rest:09d}'.rstrip('0')}s"


def duration(text) -> str:
    return envoy_duration(go_duration_ns(text))


def _port_settings(policy: dict, port: int):
    for pls in policy.get("portLevelSettings") or []:
        if ((pls.get("port") or {}).get("number")) == port:
            return pls
    return None


def _override(merged: dict, policy: dict | None):
    for k in SECTIONS:
        if policy and policy.get(k) is not None:
            merged[k] = policy[k]


def merged_policy(dr, port: int, subset: dict | None) -> dict:
    """The effective {connectionPool, loadBalancer, outlierDetection, tls} for (port, subset)."""
    merged = {k: None for k in SECTIONS}
    if dr is None:
        return merged
    top = dr.spec.get("trafficPolicy") or {}
    _override(merged, top)
    _override(merged, _port_settings(top, port))
    if subset is not None:
        sp = subset.get("trafficPolicy") or {}
        _override(merged, sp)
        _override(merged, _port_settings(sp, port))
    return merged


def consistent_hash(policy: dict):
    return (policy.get("loadBalancer") or {}).get("consistentHash")


def hash_policy(ch: dict | None) -> list:
    """RouteAction.hash_policy for a consistentHash (Istio's consistentHashToHashPolicy)."""
    if not ch:
        return []
    if ch.get("httpHeaderName"):
        return [{"header": {"header_name": ch["httpHeaderName"]}}]
    cookie = ch.get("httpCookie")
    if cookie:
        c = {"name": cookie["name"]}
        if cookie.get("path"):
            c["path"] = cookie["path"]
        if cookie.get("ttl") is not None:
            c["ttl"] = duration(cookie["ttl"])
        return [{"cookie": c}]
    if ch.get("useSourceIp"):
        return [{"connection_properties": {"source_ip": True}}]
    return []


def _lb(cluster: dict, lb: dict | None):
    if not lb:
        cluster["lb_policy"] = DEFAULT_LB
        return
    ch = lb.get("consistentHash")
    if ch is not None:
        cluster["lb_policy"] = "RING_HASH"
        ring = (ch.get("ringHash") or {}).get("minimumRingSize") or ch.get("minimumRingSize")
        if ring:
            cluster["ring_hash_lb_config"] = {"minimum_ring_size": ring}
        return
    simple = lb.get("simple") or "UNSPECIFIED"
    cluster["lb_policy"] = LB_POLICIES.get(simple, DEFAULT_LB)  # PASSTHROUGH is reported by validation


def _outlier(od: dict) -> dict:
    """Istio's applyOutlierDetection (consecutiveErrors, deprecated, is read as consecutive5xxErrors)."""
    out = {}
    c5 = od.get("consecutive5xxErrors")
    if c5 is None and od.get("consecutiveErrors"):
        c5 = od["consecutiveErrors"]
    if c5 is not None:
        out["consecutive_5xx"] = c5
        out["enforcing_consecutive_5xx"] = 100 if c5 > 0 else 0
    gw = od.get("consecutiveGatewayErrors")
    if gw is not None:
        out["consecutive_gateway_failure"] = gw
        # Envoy's enforcing_consecutive_gateway_failure defaults to 0: without
        # this the gateway-error counting would eject nothing.
        out["enforcing_consecutive_gateway_failure"] = 100 if gw > 0 else 0
    if od.get("interval"):
        out["interval"] = duration(od["interval"])
    if od.get("baseEjectionTime"):
        out["base_ejection_time"] = duration(od["baseEjectionTime"])
        if go_duration_ns(od["baseEjectionTime"]) > 300_000 * MS:
            # Envoy's max_ejection_time (300s) must not be below base_ejection_time.
            out["max_ejection_time"] = out["base_ejection_time"]
    if od.get("maxEjectionPercent"):
        out["max_ejection_percent"] = od["maxEjectionPercent"]
    return out


def is_h2(port: reg.Port, http: dict, mesh_upgrade: bool, outbound: bool = True) -> bool:
    """Whether the cluster speaks HTTP/2 upstream, as istiod decides: HTTP2, GRPC and
    GRPC-Web ports always (setUpstreamProtocol, inbound and outbound); an outbound
    cluster of an HTTP port when h2UpgradePolicy says UPGRADE (the DestinationRule's,
    else meshConfig's; shouldH2Upgrade)."""
    if port.protocol in reg.H2_PROTOCOLS:
        return True
    if not outbound or not port.is_http:
        return False
    policy = http.get("h2UpgradePolicy")
    if policy in ("UPGRADE", "DO_NOT_UPGRADE"):
        return policy == "UPGRADE"
    return mesh_upgrade


# KeepaliveSettings.timeout is required by Envoy; an http2KeepAlive without one
# gets gRPC's default keepalive timeout.
DEFAULT_KEEPALIVE_TIMEOUT = "20s"


def keepalive(http: dict) -> dict:
    """http2KeepAlive -> Http2ProtocolOptions.connection_keepalive (HTTP/2 clusters only:
    PINGs are an HTTP/2 frame). No interval: no PINGs, nothing to write."""
    ka = http.get("http2KeepAlive") or {}
    if not ka.get("interval"):
        return {}
    return {"connection_keepalive": {"interval": duration(ka["interval"]),
                                     "timeout": duration(ka.get("timeout") or DEFAULT_KEEPALIVE_TIMEOUT)}}


def http_options(port: reg.Port, http: dict, mesh_upgrade: bool = False, outbound: bool = True) -> dict:
    """The cluster's envoy.extensions.upstreams.http.v3.HttpProtocolOptions, as istiod's
    applyConnectionPool + setH2Options + setUseDownstreamProtocol write it (meshcore always
    states the protocol: explicit HTTP/1.1 where istiod leaves Envoy's default)."""
    common = {}
    if http.get("idleTimeout"):
        common["idle_timeout"] = duration(http["idleTimeout"])
    if http.get("maxRequestsPerConnection"):
        common["max_requests_per_connection"] = http["maxRequestsPerConnection"]
    options = {"@type": type_url(UPSTREAM_HTTP_OPTIONS)}
    if common:
        options["common_http_protocol_options"] = common
    if http.get("useClientProtocol") and port.protocol not in reg.H2_PROTOCOLS:
        options["use_downstream_protocol_config"] = {"http_protocol_options": {},
                                                     "http2_protocol_options": keepalive(http)}
    elif is_h2(port, http, mesh_upgrade, outbound):
        h2 = keepalive(http)
        if http.get("maxConcurrentStreams"):
            h2["max_concurrent_streams"] = http["maxConcurrentStreams"]
        options["explicit_http_config"] = {"http2_protocol_options": h2}
    else:
        options["explicit_http_config"] = {"http_protocol_options": {}}
    return options


def build_cluster(name: str, svc: reg.Service, port: reg.Port, endpoints: list, policy: dict, port_of=None,
                  mesh_upgrade: bool = False, outbound: bool = True) -> dict:
    """port_of(endpoint) -> the port to dial (default: the endpoint's port for `port`;
    security.py passes the sidecar's inbound port for endpoints that have one).
    mesh_upgrade: meshConfig.h2UpgradePolicy is UPGRADE."""
    pool = policy.get("connectionPool") or {}
    tcp, http = pool.get("tcp") or {}, pool.get("http") or {}
    cluster = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": duration(tcp["connectTimeout"]) if tcp.get("connectTimeout") else DEFAULT_CONNECT_TIMEOUT,
    }
    _lb(cluster, policy.get("loadBalancer"))
    thresholds = {"max_connections": MAX_U32, "max_pending_requests": MAX_U32, "max_requests": MAX_U32,
                  "max_retries": MAX_U32}
    for istio, envoy, section in (("maxConnections", "max_connections", tcp),
                                  ("http1MaxPendingRequests", "max_pending_requests", http),
                                  ("http2MaxRequests", "max_requests", http),
                                  ("maxRetries", "max_retries", http)):
        if section.get(istio):
            thresholds[envoy] = section[istio]
    cluster["circuit_breakers"] = {"thresholds": [thresholds]}
    od = policy.get("outlierDetection")
    if od is not None:
        cluster["outlier_detection"] = _outlier(od)
    if port.is_http:
        cluster["typed_extension_protocol_options"] = {
            UPSTREAM_HTTP_OPTIONS: http_options(port, http, mesh_upgrade, outbound)}
    lb_endpoints = []
    for e in endpoints:
        item = {"endpoint": {"address": {"socket_address": {"address": e.address,
                                                            "port_value": port_of(e) if port_of else
                                                            e.port_for(port)}}}}
        if e.weight:
            item["load_balancing_weight"] = e.weight
        lb_endpoints.append(item)
    cluster["load_assignment"] = {"cluster_name": name,
                                  "endpoints": [{"lb_endpoints": lb_endpoints}] if lb_endpoints else []}
    return cluster


def blackhole_cluster(name: str) -> dict:
    """A cluster with no endpoints (requests get 503): what a route to an
    unknown destination points at, so that the translation stays whole while
    the error is reported."""
    return {"name": name, "type": "STATIC", "connect_timeout": DEFAULT_CONNECT_TIMEOUT,
            "load_assignment": {"cluster_name": name, "endpoints": []}}


def tcp_idle_timeout(policy: dict) -> str | None:
    tcp = ((policy.get("connectionPool") or {}).get("tcp")) or {}
    return duration(tcp["idleTimeout"]) if tcp.get("idleTimeout") is not None else None

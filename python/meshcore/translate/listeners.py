"""Every listener a sidecar gets, built in this one module.

- outbound: one listener per service port (http_listener: an HCM with a
  virtual host per service; tcp_listener: a tcp_proxy), bound to the
  translation's outbound address;
- inbound: one listener per inbound port of the workload (inbound_listener:
  mTLS as PeerAuthentication says, the authorization filters, the local
  application's cluster).

build.py decides which listeners a workload gets and collects the findings;
routes.py, clusters.py, security.py (TLS contexts), authz.py (RBAC filters)
and telemetry.py (Istio's filters, tracing, access logs) supply their parts.
"""
from __future__ import annotations

from meshcore.xds_types import (
    FAULT_FILTER_NAME,
    HCM,
    HTTP_FAULT,
    ROUTER,
    TCP_PROXY,
    TLS_INSPECTOR,
    UPSTREAM_HTTP_OPTIONS,
    type_url,
)

from . import clusters as cl
from . import hosts
from . import meshconfig as mc
from . import security as sec
from . import telemetry as tm
from .routes import DEFAULT_STREAM_DURATION, VirtualServiceRoutes, default_route, tcp_destinations

# istiod's buildHTTPConnectionManager: WebSocket upgrades on every HTTP listener
WEBSOCKET_UPGRADE = {"upgrade_type": "websocket"}

# ---- outbound ----------------------------------------------------------------------------------


def virtual_service_claims(t, number, entries, virtual_services):
    """service host -> the VirtualService that routes it on this port (the most
    specific host wins; then the first VirtualService), and the VirtualService
    hosts that match no service."""
    best = {}
    unmatched = []
    for order, vs in enumerate(virtual_services):
        for h in vs.spec.get("hosts") or []:
            pattern = hosts.fqdn(h, vs.namespace)
            found = False
            for svc, _ in entries:
                if hosts.matches(svc.host, pattern):
                    found = True
                    rank = (-hosts.specificity(pattern), order)
                    if svc.host not in best or rank < best[svc.host][0]:
                        best[svc.host] = (rank, vs)
            if not found and not hosts.is_wildcard(pattern) and t.registry.service(pattern) is None:
                unmatched.append((vs, pattern))
    return {h: vs for h, (_, vs) in best.items()}, unmatched


def _address(t, number):
    return {"socket_address": {"address": t.address, "port_value": number}}


def http_listener(t, number, entries, virtual_services):
    """The outbound listener of an HTTP port: one virtual host per service (its VirtualService's
    routes, else a default route), through the workload's telemetry filters. t: the translator
    (build._Translator: proxy, address, tel, destination_rule, note/use_cluster for routes.py)."""
    claims, unmatched = virtual_service_claims(t, number, entries, virtual_services)
    vhosts, seen = [], set()

    def add_vhost(name, domains, routes):
        fresh = []
        for d in domains:
            if d.lower() not in seen:
                seen.add(d.lower())
                fresh.append(d)
        if fresh:
            vhosts.append({"name": name, "domains": fresh, "routes": routes})

    routed = set()
    for vs in virtual_services:
        mine = [(s, p) for s, p in entries if claims.get(s.host) is vs]
        extra = [h for v, h in unmatched if v is vs] if number == 80 else []
        if not mine and not extra:
            continue
        routes = VirtualServiceRoutes(vs, number, t).http_routes()
        if not routes:
            continue  # no route for this port: its services keep their default route (as Istio)
        for svc, _ in mine:
            add_vhost(f"{svc.host}:{number}", _domains(svc.host, number, t.proxy.namespace), routes)
            routed.add(svc.host)
        for h in extra:  # Istio serves VirtualService hosts outside the registry on port 80 only
            add_vhost(f"{h}:{number}", [h, f"{h}:{number}"], routes)
    for svc, _ in entries:
        if svc.host in routed:
            continue
        name = cl.cluster_name(number, "", svc.host)
        dr = t.destination_rule(svc.host)
        ch = None
        if dr is not None:
            top = dr.spec.get("trafficPolicy") or {}
            ch = cl.consistent_hash(top)
            for pls in top.get("portLevelSettings") or []:
                if (pls.get("port") or {}).get("number") == number and cl.consistent_hash(pls):
                    ch = cl.consistent_hash(pls)
        add_vhost(f"{svc.host}:{number}", _domains(svc.host, number, t.proxy.namespace),
                  [default_route(name, cl.hash_policy(ch))])
    filters = []
    if any(FAULT_FILTER_NAME in r.get("typed_per_filter_config", {}) for v in vhosts for r in v["routes"]):
        filters.append({"name": FAULT_FILTER_NAME, "typed_config": {"@type": type_url(HTTP_FAULT)}})
    router = {"name": "envoy.filters.http.router", "typed_config": {"@type": type_url(ROUTER)}}
    hcm = {
        "@type": type_url(HCM),
        "stat_prefix": f"outbound_{t.address}_{number}",
        "codec_type": "AUTO",
        "route_config": {"name": str(number), "virtual_hosts": vhosts},
        "upgrade_configs": [dict(WEBSOCKET_UPGRADE)],
        "http_filters": t.tel.http_filters(tm.OUTBOUND, filters, router),
        **t.tel.hcm_fields(tm.OUTBOUND),
        **t.tel.mc.hcm_path_fields(),
    }
    return {"name": f"{t.address}_{number}", "address": _address(t, number),
            "traffic_direction": tm.OUTBOUND,
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": hcm}]}]}


def tcp_listener(t, number, entry, virtual_services):
    """The outbound listener of a TCP port: tcp_proxy to the service's cluster, or its
    VirtualService's weighted destinations."""
    svc, port = entry
    claims, _ = virtual_service_claims(t, number, [entry], virtual_services)
    default = cl.cluster_name(number, "", svc.host)
    dests = None
    vs = claims.get(svc.host)
    if vs is not None:
        dests = tcp_destinations(vs, number, t)
    tp = {"@type": type_url(TCP_PROXY), "stat_prefix": default}
    if dests and len(dests) > 1:
        tp["weighted_clusters"] = {"clusters": [{"name": n, "weight": w} for n, w in dests]}
    else:
        tp["cluster"] = dests[0][0] if dests else default
    idle = cl.tcp_idle_timeout(cl.merged_policy(t.destination_rule(svc.host), number, None))
    if idle is not None:
        tp["idle_timeout"] = idle
    tp.update(t.tel.tcp_proxy_fields(tm.OUTBOUND))
    filters = t.tel.network_filters(tm.OUTBOUND, []) + [
        {"name": "envoy.filters.network.tcp_proxy", "typed_config": tp}]
    return {"name": f"{t.address}_{number}", "address": _address(t, number),
            "traffic_direction": tm.OUTBOUND, "filter_chains": [{"filters": filters}]}


def _domains(host, number, proxy_namespace):
    names = hosts.alt_names(host, proxy_namespace)
    return [d for n in names for d in (n, f"{n}:{number}")]


# ---- inbound -----------------------------------------------------------------------------------


def inbound_listener(address: str, ip: sec.InboundPort, filters_http, filters_tcp, telemetry=None) -> tuple[dict, dict]:
    """(Listener, Cluster) for one inbound port. filters_*: the RBAC filters; telemetry: the
    workload's (telemetry.WorkloadTelemetry: Istio's filters, tracing, access logs), or None."""
    cluster_name = f"inbound|{ip.app_port}||"
    if ip.is_http:
        router = {"name": "envoy.filters.http.router",
                  "typed_config": {"@type": type_url(ROUTER)}}
        hcm = {
            "@type": type_url(HCM),
            "stat_prefix": f"inbound_{address}_{ip.app_port}",
            "codec_type": "AUTO",
            "route_config": {"name": cluster_name, "virtual_hosts": [{
                "name": f"inbound|http|{ip.app_port}", "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "route": {
                    "cluster": cluster_name, "timeout": "0s",
                    "max_stream_duration": dict(DEFAULT_STREAM_DURATION)}}]}]},
            "upgrade_configs": [dict(WEBSOCKET_UPGRADE)],
            "http_filters": (telemetry.http_filters(tm.INBOUND, filters_http, router) if telemetry is not None
                             else list(filters_http) + [router]),
        }
        if telemetry is not None:
            hcm.update(telemetry.hcm_fields(tm.INBOUND))
        # before the RBAC filters see the path (meshConfig.pathNormalization; Istio's default BASE)
        hcm.update((telemetry.mc if telemetry is not None else mc.MeshConfig()).hcm_path_fields())
        filters = [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]
    else:
        tp = {"@type": type_url(TCP_PROXY),
              "stat_prefix": cluster_name, "cluster": cluster_name}
        network = list(filters_tcp)
        if telemetry is not None:
            tp.update(telemetry.tcp_proxy_fields(tm.INBOUND))
            network = telemetry.network_filters(tm.INBOUND, network)
        filters = network + [{"name": "envoy.filters.network.tcp_proxy", "typed_config": tp}]
    listener = {"name": f"inbound_{address}_{ip.listener_port}", "traffic_direction": "INBOUND",
                "address": {"socket_address": {"address": address, "port_value": ip.listener_port}}}
    tls = sec.downstream_tls(sec.ALPN_HTTP if ip.is_http else ())
    if ip.mode == "STRICT":
        listener["filter_chains"] = [{"filters": filters, "transport_socket": tls}]
    elif ip.mode == "PERMISSIVE":
        listener["listener_filters"] = [{"name": "envoy.filters.listener.tls_inspector",
                                         "typed_config": {"@type": type_url(TLS_INSPECTOR)}}]
        listener["filter_chains"] = [
            {"filter_chain_match": {"transport_protocol": "tls"}, "filters": filters,
             "transport_socket": tls},
            {"filter_chain_match": {"transport_protocol": "raw_buffer"}, "filters": filters},
        ]
    else:
        listener["filter_chains"] = [{"filters": filters}]
    cluster = {"name": cluster_name, "type": "STATIC", "connect_timeout": "10s",
               "load_assignment": {"cluster_name": cluster_name, "endpoints": [{"lb_endpoints": [
                   {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                                "port_value": ip.app_port}}}}]}]}}
    if ip.h2:  # istiod's setUpstreamProtocol: HTTP/2 to the application of an HTTP2/GRPC port
        cluster["typed_extension_protocol_options"] = {
            UPSTREAM_HTTP_OPTIONS: {"@type": type_url(UPSTREAM_HTTP_OPTIONS),
                                    "explicit_http_config": {"http2_protocol_options": {}}}}
    if ip.services:  # destination_service on the server side: the services of this port
        cluster["metadata"] = tm.service_metadata([svc for svc, _ in ip.services])
    return listener, cluster

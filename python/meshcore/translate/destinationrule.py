"""The DestinationRule schema: Istio's field rules (CRD schema, CEL, webhook)
and what meshcore does with each field (clusters.py translates it)."""
from __future__ import annotations

from . import findings as fnd
from . import hosts
from .rules import (
    check_percent_int,
    check_subset_name,
    export_to,
    nonneg,
    port_number,
    selector_labels,
    subset_labels,
)
from .schema import (
    Bool,
    Dur,
    Enum,
    Int,
    List,
    Map,
    Num,
    Obj,
    Str,
    Unsupported,
    Warned,
    join,
)

# ---- DestinationRule ----------------------------------------------------------------------------------



def _check_pool(v, path, out):
    if v.get("http") is None and v.get("tcp") is None:
        out.error(path, "connection pool must have at least one field")
    http = v.get("http") or {}
    if http.get("h2UpgradePolicy") == "UPGRADE" and http.get("useClientProtocol"):
        out.error(join(path, "http"), "use client protocol must not be true when H2UpgradePolicy is UPGRADE")


def _connection_pool():
    tcp = Obj(fields={
        "maxConnections": nonneg("max connections", "circuit_breakers.thresholds[0].max_connections"),
        "connectTimeout": Dur(to="Cluster.connect_timeout (default 10s, as Istio)"),
        "tcpKeepalive": Warned(Obj(fields={"probes": Int(lo=0), "time": Dur(), "interval": Dur()}),
                               "TCP keepalive is not configurable"),
        "maxConnectionDuration": Warned(Dur(), "connections have no maximum duration"),
        "idleTimeout": Dur(zero_ok=True, to="TcpProxy.idle_timeout of TCP listeners"),
    })
    http = Obj(fields={
        "http1MaxPendingRequests": nonneg("http1 max pending requests",
                                           "circuit_breakers.thresholds[0].max_pending_requests"),
        "http2MaxRequests": nonneg("http2 max requests", "circuit_breakers.thresholds[0].max_requests"),
        "maxRequestsPerConnection": nonneg(
            "max requests per connection",
            "HttpProtocolOptions.common_http_protocol_options.max_requests_per_connection"),
        "maxRetries": nonneg("max retries", "circuit_breakers.thresholds[0].max_retries"),
        "idleTimeout": Dur(to="HttpProtocolOptions.common_http_protocol_options.idle_timeout"),
        "h2UpgradePolicy": Enum(values=("DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"),
                                to="UPGRADE: HttpProtocolOptions.explicit_http_config.http2_protocol_options "
                                   "(outbound clusters of HTTP ports; default: meshConfig.h2UpgradePolicy)"),
        "useClientProtocol": Bool(to="HttpProtocolOptions.use_downstream_protocol_config"),
        "maxConcurrentStreams": nonneg("max concurrent streams",
                                       "http2_protocol_options.max_concurrent_streams (HTTP/2 clusters, as Istio)"),
        "http2KeepAlive": Obj(fields={
            "interval": Dur(to="http2_protocol_options.connection_keepalive.interval (HTTP/2 clusters)"),
            "timeout": Dur(to="http2_protocol_options.connection_keepalive.timeout (default 20s)")}),
    })
    return Obj(fields={"tcp": tcp, "http": http}, check=_check_pool)


def _check_consistent_hash(v, path, out):
    if v.get("minimumRingSize"):
        out.warn(join(path, "minimumRingSize"), "consistent hash MinimumRingSize is deprecated, use "
                                                "ConsistentHashLB's RingHash configuration instead", fnd.DEPRECATED)
        if v.get("ringHash") is not None or v.get("maglev") is not None:
            out.error(path, "only one of MinimumRingSize or Maglev/Ringhash can be specified")
    maglev = v.get("maglev")
    if isinstance(maglev, dict):
        size = maglev.get("tableSize")
        if not size:
            out.error(join(path, "maglev.tableSize"), "tableSize must be set for maglev")
        elif isinstance(size, int) and (size >= 5000011 or not _is_prime(size)):
            out.error(join(path, "maglev.tableSize"), "tableSize must be a prime number less than 5000011")


def _is_prime(x):
    if x < 4:
        return x != 0
    if x % 2 == 0:
        return False
    f = 3
    while f * f <= x:
        if x % f == 0:
            return False
        f += 2
    return True


def _check_simple_lb(v, path, out):
    if v == "PASSTHROUGH":
        out.unsupported(path, "PASSTHROUGH: there are no original-destination clusters in meshcore")


def _load_balancer():
    failover = List(Obj(fields={"from": Str(), "to": Str()}))
    locality = Obj(fields={
        "distribute": List(Obj(fields={"from": Str(), "to": Map(Int(lo=0))})),
        "failover": failover, "failoverPriority": List(Str()), "enabled": Bool(),
    })
    consistent = Obj(
        fields={
            "httpHeaderName": Str(to="RING_HASH + RouteAction.hash_policy header"),
            "httpCookie": Obj(
                fields={"name": Str(to="hash_policy cookie.name"), "path": Str(to="hash_policy cookie.path"),
                        "ttl": Dur(zero_ok=True, to="hash_policy cookie.ttl"),
                        "attributes": Warned(List(Obj(fields={"name": Str(), "value": Str()}, required=("name",))),
                                             "generated cookies carry no extra attributes")},
                required=("name",),
            ),
            "useSourceIp": Bool(to="RING_HASH + hash_policy connection_properties.source_ip"),
            "httpQueryParameterName": Unsupported(Str(), "the router cannot hash on a query parameter"),
            "ringHash": Obj(fields={"minimumRingSize": Int(lo=0, to="ring_hash_lb_config.minimum_ring_size")}),
            "maglev": Warned(Obj(fields={"tableSize": Int(lo=0)}), "meshcore uses a ring hash instead (RING_HASH)"),
            "minimumRingSize": Int(lo=0, to="ring_hash_lb_config.minimum_ring_size (deprecated)"),
        },
        exclusive=(("httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName"), ("ringHash", "maglev")),
        check=_check_consistent_hash,
        to="Cluster.lb_policy RING_HASH",
    )
    warmup = Obj(
        fields={"duration": Dur(), "minimumPercent": Num(lo=0, hi=100), "aggression": Num(lo=1)},
        required=("duration",),
    )
    zone = Obj(fields={"enabled": Bool(), "failover": failover, "failoverPriority": List(Str()),
                       "minClusterSize": Int(lo=1)})
    return Obj(
        fields={
            "simple": Enum(values=("UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN",
                                   "LEAST_REQUEST"),
                           check=_check_simple_lb,
                           to="Cluster.lb_policy (LEAST_CONN = LEAST_REQUEST; default LEAST_REQUEST as Istio)"),
            "consistentHash": consistent,
            "localityLbSetting": Warned(locality, "meshcore has no localities"),
            "warmup": Warned(warmup, "slow start is not implemented"),
            "warmupDurationSecs": Warned(Dur(), "slow start is not implemented"),
            "zoneAwareLbSetting": Warned(zone, "meshcore has no zones"),
        },
        exclusive=(("simple", "consistentHash"),),
    )


def _check_outlier(v, path, out):
    if v.get("consecutiveErrors"):
        out.warn(join(path, "consecutiveErrors"), "outlier detection consecutive errors is deprecated, use "
                 "consecutiveGatewayErrors or consecutive5xxErrors instead (meshcore reads it as consecutive5xxErrors)",
                 fnd.DEPRECATED)
    if not v.get("splitExternalLocalOriginErrors") and (v.get("consecutiveLocalOriginFailures") or 0) > 0:
        out.error(path, "outlier detection consecutive local origin failures is specified, but split external "
                        "local origin errors is set to false")



def _outlier_detection():
    node = Obj(
        fields={
            "consecutiveErrors": Int(to="OutlierDetection.consecutive_5xx (deprecated)"),
            "consecutive5xxErrors": Int(lo=0, to="OutlierDetection.consecutive_5xx + enforcing_consecutive_5xx 100"),
            "consecutiveGatewayErrors": Int(
                lo=0, to="OutlierDetection.consecutive_gateway_failure + enforcing_consecutive_gateway_failure 100"),
            "consecutiveLocalOriginFailures": Warned(Int(lo=0), "local-origin failures are not counted apart"),
            "splitExternalLocalOriginErrors": Warned(Bool(), "local-origin failures are not counted apart"),
            "interval": Dur(to="OutlierDetection.interval"),
            "baseEjectionTime": Dur(to="OutlierDetection.base_ejection_time"),
            "maxEjectionPercent": Int(check=check_percent_int, to="OutlierDetection.max_ejection_percent"),
            "minHealthPercent": Warned(Int(check=check_percent_int),
                                       "there is no panic threshold (as Istio's default of 0)"),
            "outlierDetectionHttpErrorCodes": Warned(List(Int(lo=100, hi=599)),
                                                     "only 5xx and gateway errors count as failures"),
        },
        check=_check_outlier,
        to="Cluster.outlier_detection",
    )
    return node


def _check_tls(v, path, out):
    mode = v.get("mode") or "DISABLE"
    if v.get("insecureSkipVerify"):
        if mode == "SIMPLE" and (v.get("caCertificates") or v.get("credentialName") or v.get("subjectAltNames")):
            out.error(path, "cannot specify CaCertificates or CredentialName or SubjectAltNames when "
                            "InsecureSkipVerify is set true")
        if mode == "MUTUAL" and (v.get("caCertificates") or v.get("subjectAltNames")):
            out.error(path, "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true")
    if mode in ("SIMPLE", "MUTUAL") and v.get("credentialName"):
        if any(v.get(k) for k in ("clientCertificate", "caCertificates", "privateKey", "caCrl")):
            out.error(path, "cannot specify client certificates or CA certificate or CA CRL If credentialName is set")
        return
    if mode == "MUTUAL":
        if not v.get("clientCertificate"):
            out.error(join(path, "clientCertificate"), "client certificate required for mutual tls")
        if not v.get("privateKey"):
            out.error(join(path, "privateKey"), "private key required for mutual tls")


def _tls_settings():
    return Obj(
        fields={
            "mode": Enum(values=("DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"),
                         to="Cluster.transport_socket: none, UpstreamTlsContext, with a client certificate, with "
                            "the workload's SVID (absent: auto mTLS to endpoints with a sidecar)"),
            "clientCertificate": Str(to="tls_certificates[0].certificate_chain.filename (MUTUAL)"),
            "privateKey": Str(to="tls_certificates[0].private_key.filename (MUTUAL)"),
            "caCertificates": Str(to="validation_context.trusted_ca.filename (default: the system's CA bundle)"),
            "credentialName": Unsupported(Str(), "certificates from Kubernetes Secrets (SDS) are not available: "
                                                 "use clientCertificate / privateKey / caCertificates files"),
            "subjectAltNames": List(Str(), to="match_typed_subject_alt_names (URI); for ISTIO_MUTUAL instead of the "
                                              "destination's SPIFFE IDs"),
            "sni": Str(to="UpstreamTlsContext.sni (ISTIO_MUTUAL default: outbound_.<port>_.<subset>_.<host>)"),
            "insecureSkipVerify": Bool(to="no validation_context: the server certificate is not verified"),
            "caCrl": Unsupported(Str(), "certificate revocation lists are not checked"),
        },
        check=_check_tls,
    )


def _check_port_policy(v, path, out):
    if all(v.get(k) is None for k in ("connectionPool", "loadBalancer", "outlierDetection", "tls")):
        out.error(path, "port traffic policy must have at least one field")


def _port_traffic_policy():
    return Obj(
        fields={
            "port": Obj(fields={"number": port_number()}, to="which service port the settings override"),
            "connectionPool": _connection_pool(),
            "loadBalancer": _load_balancer(),
            "outlierDetection": _outlier_detection(),
            "tls": _tls_settings(),
        },
        required=("port",),
        check=_check_port_policy,
    )


def _check_traffic_policy(v, path, out):
    if all(v.get(k) is None for k in ("outlierDetection", "connectionPool", "loadBalancer", "tls",
                                      "portLevelSettings", "tunnel", "proxyProtocol", "retryBudget")):
        out.error(path, "traffic policy must have at least one field")
    if v.get("tunnel") is not None and v.get("proxyProtocol") is not None:
        out.error(path, "tunnel and proxyProtocol must not be set together")


def _traffic_policy():
    return Obj(
        fields={
            "connectionPool": _connection_pool(),
            "loadBalancer": _load_balancer(),
            "outlierDetection": _outlier_detection(),
            "tls": _tls_settings(),
            "portLevelSettings": List(_port_traffic_policy(), max_items=4096,
                                      to="per-port overrides (whole sections replace)"),
            "proxyProtocol": Unsupported(Obj(fields={"version": Enum(values=("V1", "V2"))}),
                                         "meshcore does not send PROXY protocol headers upstream"),
            "tunnel": Unsupported(Obj(fields={"protocol": Str(), "targetHost": Str(), "targetPort": port_number()},
                                      required=("targetHost", "targetPort")),
                                  "tunneling upstream connections is not implemented"),
            "retryBudget": Warned(Obj(fields={"percent": Num(lo=0, hi=100), "minRetryConcurrency": Int(lo=0),
                                              "budgetInterval": Dur()}),
                                  "retries are limited by maxRetries only"),
        },
        check=_check_traffic_policy,
    )


def _check_subsets(subsets, path, out):
    seen = {}
    for i, s in enumerate(subsets):
        name = s.get("name") if isinstance(s, dict) else None
        if isinstance(name, str):
            if name in seen:
                out.error(f"{path}[{i}].name", f'Duplicate value: "{name}" (subsets[{seen[name]}] has it too)')
            seen.setdefault(name, i)


def _check_destination_rule(v, path, out):
    host = v.get("host")
    if isinstance(host, str):
        problem = hosts.host_problem(host)
        if problem:
            out.error(join(path, "host"), problem)


DESTINATION_RULE = Obj(
    fields={
        "host": Str(to="the service (short names resolve in the rule's namespace)"),
        "trafficPolicy": _traffic_policy(),
        "subsets": List(
            Obj(fields={"name": Str(check=check_subset_name, to="cluster outbound|port|name|host"),
                        "labels": subset_labels(),
                        "trafficPolicy": _traffic_policy()},
                required=("name",)),
            check=_check_subsets,
            to="one cluster per subset and port",
        ),
        "exportTo": export_to(),
        "workloadSelector": Obj(fields={"matchLabels": selector_labels()},
                                to="evaluated: the rule applies to the selected proxies only"),
    },
    required=("host",),
    check=_check_destination_rule,
)

"""Validation of Istio and Kubernetes resources, field by field.

The rules are those of Istio's CRD schemas (customresourcedefinitions.gen.yaml:
types, ranges, required fields, CEL rules) and of its validating webhook
(pilot's validation package), written here in code so that meshcore needs
no copy of either. Each field also says what meshcore does with it
(schema.py: translated, Warned, Unsupported, Pending). VirtualService and
DestinationRule have modules of their own; rules.py holds what they share.

validate_spec(kind, spec) -> Out with (severity, code, path, message) items whose
paths start at "spec".
"""
from __future__ import annotations

from . import findings as fnd
from . import hosts
from .destinationrule import DESTINATION_RULE
from .rules import export_to, port_number, selector_labels, workload_selector
from .schema import (
    Enum,
    Int,
    IntOrStr,
    List,
    Map,
    Obj,
    Opaque,
    Out,
    Pending,
    Str,
    Warned,
    join,
)
from .virtualservice import VIRTUAL_SERVICE

# ---- ServiceEntry and WorkloadEntry ------------------------------------------------------------------------

UNIX = "unix://"


def _check_endpoint(v, path, out):
    address = v.get("address")
    if not address and not v.get("network"):
        out.error(path, "Address is required")
    if isinstance(address, str) and address.startswith(UNIX):
        rest = address[len(UNIX):]
        if not rest.startswith(("/", "@")):
            out.error(join(path, "address"), "UDS must be an absolute path or abstract socket")
        elif rest.endswith("/"):
            out.error(join(path, "address"), "UDS may not be a dir")
        if v.get("ports"):
            out.error(join(path, "ports"), "UDS may not include ports")


def _endpoint(to_address):
    def port_key(k):
        return hosts.port_name_problem(k)

    return Obj(
        fields={
            "address": Str(max_len=256, to=to_address),
            "ports": Map(Int(lo=1, hi=65535, what="port must be between 1-65535"), key_check=port_key,
                         max_props=128, to="the endpoint's port for the service port of that name"),
            "labels": Map(Str(), key_check=hosts.label_key_problem, max_props=256,
                          to="matched by Service selectors and subset labels"),
            "network": Warned(Str(max_len=2048), "meshcore has no multi-network support"),
            "locality": Warned(Str(max_len=2048), "meshcore has no localities"),
            "weight": Int(lo=0, to="LbEndpoint.load_balancing_weight"),
            "serviceAccount": Str(max_len=253, to="recorded as the workload's identity (used by mTLS)"),
        },
        check=_check_endpoint,
    )


def _check_ports(ports, path, out):
    numbers, names = {}, {}
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            continue
        n, name = p.get("number"), p.get("name")
        if isinstance(n, int):
            if n in numbers:
                out.error(f"{path}[{i}].number", "port number cannot be duplicated")
            numbers.setdefault(n, i)
        if isinstance(name, str):
            if name in names:
                out.error(f"{path}[{i}].name", f'Duplicate value: "{name}"')
            names.setdefault(name, i)


def _check_se_host(v, path, out):
    if v == "*":
        out.error(path, "hostname cannot be wildcard")
    else:
        problem = hosts.host_problem(v)
        if problem:
            out.error(path, problem)


def _check_service_entry(v, path, out):
    resolution = v.get("resolution") or "NONE"
    if v.get("workloadSelector") is not None and v.get("endpoints") is not None:
        out.error(path, "only one of WorkloadSelector or Endpoints can be set")
    addresses = [a for a in v.get("addresses") or [] if isinstance(a, str)]
    if any("/" in a for a in addresses) and resolution not in ("STATIC", "NONE"):
        out.error(join(path, "addresses"), "CIDR addresses are allowed only for NONE/STATIC resolution types")
    for i, a in enumerate(addresses):
        if not (hosts.is_ip(a) or hosts.is_cidr(a)):
            out.error(f"{path}.addresses[{i}]", f'"{a}" is not an IP address or CIDR block')
    endpoints = v.get("endpoints")
    if resolution == "NONE" and endpoints is not None:
        out.error(join(path, "endpoints"), "NONE mode cannot set endpoints")
    if resolution == "DNS_ROUND_ROBIN" and len(endpoints or []) > 1:
        out.error(join(path, "endpoints"), "DNS_ROUND_ROBIN mode cannot have multiple endpoints")
    if resolution == "STATIC":
        for i, ep in enumerate(endpoints or []):
            address = ep.get("address") if isinstance(ep, dict) else None
            if isinstance(address, str) and address and not address.startswith(UNIX) and not hosts.is_ip(address):
                out.error(f"{path}.endpoints[{i}].address", f'endpoint address "{address}" is not a valid IP address')
            elif isinstance(address, str) and address.startswith(UNIX):
                out.unsupported(f"{path}.endpoints[{i}].address", "unix domain socket endpoints are not supported")
    else:
        out.warn(join(path, "resolution"),
                 f"not supported by meshcore: resolution {resolution} (only STATIC): these hosts get no "
                 "listener or cluster", fnd.UNSUPPORTED)
    for i, p in enumerate(v.get("ports") or []):
        if isinstance(p, dict) and isinstance(p.get("name"), str):
            problem = hosts.port_name_problem(p["name"])
            if problem:
                out.error(f"{path}.ports[{i}].name", problem)


SERVICE_ENTRY = Obj(
    fields={
        "hosts": List(Str(check=_check_se_host), min_items=1, max_items=256,
                      to="services (one per host) with clusters outbound|port||host"),
        "addresses": Warned(List(Str(max_len=64), max_items=256),
                            "outbound listeners bind --outbound-address:<port>, not service addresses"),
        "ports": List(
            Obj(fields={"number": port_number("port", to="listener port and the port in cluster names"),
                        "protocol": Str(max_len=256, to="HTTP, HTTP2, GRPC: HTTP listener; TCP, TLS, HTTPS...: TCP"),
                        "name": Str(max_len=256, to="matched by endpoint ports"),
                        "targetPort": port_number("port", to="the endpoint port when the endpoint names none")},
                required=("number", "name")),
            max_items=256, check=_check_ports,
        ),
        "location": Enum(values=("MESH_EXTERNAL", "MESH_INTERNAL"), to="accepted (matters for mTLS only)"),
        "resolution": Enum(values=("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"),
                           to="STATIC only (others are reported and not served)"),
        "endpoints": List(_endpoint("LbEndpoint address (IP only)"), max_items=4096,
                          to="the cluster's endpoints"),
        "workloadSelector": Obj(fields={"labels": selector_labels(256)},
                                to="endpoints = the WorkloadEntries it selects"),
        "exportTo": export_to(),
        "subjectAltNames": Pending(List(Str()), "peer identities are checked by the mTLS release"),
    },
    required=("hosts",),
    check=_check_service_entry,
)


def _check_workload_entry(v, path, out):
    address = v.get("address")
    if isinstance(address, str) and address and not hosts.is_ip(address):
        if address.startswith(UNIX):
            out.unsupported(join(path, "address"), "unix domain socket endpoints are not supported")
        elif hosts.host_problem(address, wildcard_ok=False):
            out.error(join(path, "address"), f'endpoint address "{address}" is not a valid FQDN or an IP address')
        else:
            out.unsupported(join(path, "address"), "meshcore needs an IP address (no DNS endpoints)")


def _check_workload_entry_all(v, path, out):
    _check_endpoint(v, path, out)
    _check_workload_entry(v, path, out)


WORKLOAD_ENTRY = _endpoint("LbEndpoint address (an IP)")
WORKLOAD_ENTRY.check = _check_workload_entry_all


# ---- security.istio.io (loaded, not yet enforced) ----------------------------------------------------------


def _mtls():
    return Obj(fields={"mode": Enum(values=("UNSET", "DISABLE", "PERMISSIVE", "STRICT"))})


def _check_pa_port(key):
    try:
        n = int(key)
    except ValueError:
        return f'type conversion error from string "{key}" to int: a port number is required'
    if not 0 < n <= 65535:
        return "port must be between 1-65535"
    return None


def _check_peer_authentication(v, path, out):
    if v.get("portLevelMtls") is not None:
        labels = ((v.get("selector") or {}).get("matchLabels")) or {}
        if not labels:
            out.error(join(path, "portLevelMtls"), "portLevelMtls requires selector")



PEER_AUTHENTICATION = Obj(
    fields={
        "selector": workload_selector(),
        "mtls": _mtls(),
        "portLevelMtls": Map(_mtls(), key_check=_check_pa_port, min_props=1),
    },
    check=_check_peer_authentication,
)


def _check_source(v, path, out):
    if v.get("serviceAccounts") is not None or v.get("notServiceAccounts") is not None:
        if any(v.get(k) is not None for k in ("principals", "notPrincipals", "namespaces", "notNamespaces")):
            out.error(path, "Cannot set serviceAccounts with namespaces or principals")


def _strings(max_items=None, max_len=None):
    return List(Str(max_len=max_len), max_items=max_items)


def _check_authorization_policy(v, path, out):
    if sum(v.get(k) is not None for k in ("selector", "targetRef", "targetRefs")) > 1:
        out.error(path, "only one of targetRefs or selector can be set")
    if v.get("provider") is not None and v.get("action") != "CUSTOM":
        out.error(join(path, "provider"), "provider is only allowed with action CUSTOM")


def _target_ref():
    return Obj(fields={"group": Str(max_len=253), "kind": Str(max_len=63), "name": Str(max_len=253),
                       "namespace": Str()}, required=("kind", "name"))


AUTHORIZATION_POLICY = Obj(
    fields={
        "selector": workload_selector(),
        "targetRef": _target_ref(),
        "targetRefs": List(_target_ref(), max_items=16),
        "action": Enum(values=("ALLOW", "DENY", "AUDIT", "CUSTOM")),
        "provider": Obj(fields={"name": Str()}),
        "rules": List(Obj(fields={
            "from": List(Obj(fields={"source": Obj(
                fields={k: _strings() for k in (
                    "principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces",
                    "notNamespaces", "ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks",
                    "trustDomains", "notTrustDomains")}
                | {"serviceAccounts": _strings(16, 320), "notServiceAccounts": _strings(16, 320)},
                check=_check_source)}), max_items=512),
            "to": List(Obj(fields={"operation": Obj(fields={k: _strings() for k in (
                "hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths")})})),
            "when": List(Obj(fields={"key": Str(), "values": _strings(), "notValues": _strings()},
                             required=("key",))),
        }), max_items=512),
    },
    check=_check_authorization_policy,
)


# ---- Kubernetes Service ------------------------------------------------------------------------------------


def _check_k8s_ports(ports, path, out):
    names = {}
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            continue
        name = p.get("name")
        if len(ports) > 1 and not name:
            out.error(f"{path}[{i}].name", "Required value (ports of a multi-port Service must be named)")
        if isinstance(name, str) and name:
            if name in names:
                out.error(f"{path}[{i}].name", f'Duplicate value: "{name}"')
            names.setdefault(name, i)
        target = p.get("targetPort")
        if isinstance(target, int) and not isinstance(target, bool) and not 1 <= target <= 65535:
            out.error(f"{path}[{i}].targetPort", "port must be between 1-65535")


def _check_k8s_service(v, path, out):
    if v.get("type") == "ExternalName":
        out.warn(join(path, "type"), "not supported by meshcore: ExternalName services get no cluster",
                 fnd.UNSUPPORTED)
    if v.get("sessionAffinity") == "ClientIP":
        out.warn(join(path, "sessionAffinity"),
                 "not supported by meshcore, ignored: use a DestinationRule consistentHash useSourceIp")


_K8S_PLUMBING = (
    "clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy", "externalTrafficPolicy",
    "publishNotReadyAddresses", "loadBalancerIP", "loadBalancerSourceRanges", "loadBalancerClass", "externalIPs",
    "healthCheckNodePort", "allocateLoadBalancerNodePorts", "externalName", "trafficDistribution",
    "sessionAffinityConfig", "sessionAffinity",
)

SERVICE = Obj(
    fields={
        "ports": List(
            Obj(fields={
                "name": Str(to="port name: its prefix (http, http2, grpc, tcp...) picks the protocol, as Istio"),
                "port": port_number("port", to="listener port and the port in cluster names"),
                "targetPort": IntOrStr(to="the endpoint port when the WorkloadEntry names none"),
                "protocol": Enum(values=("TCP", "UDP", "SCTP"), to="TCP (UDP and SCTP ports are skipped)"),
                "appProtocol": Str(to="the protocol, before the port name (http, http2, grpc, tcp...)"),
                "nodePort": Int(lo=0, hi=65535, to="ignored (not a mesh concern)"),
            }, required=("port",)),
            check=_check_k8s_ports,
        ),
        "selector": Map(Str(), key_check=hosts.label_key_problem, to="endpoints = WorkloadEntries with these labels"),
        "type": Enum(values=("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"),
                     to="all but ExternalName are served alike"),
    } | {k: Opaque(to="ignored (not a mesh concern)") for k in _K8S_PLUMBING},
    check=_check_k8s_service,
)


# ---- entry points ----------------------------------------------------------------------------------------

SPECS = {
    "VirtualService": VIRTUAL_SERVICE,
    "DestinationRule": DESTINATION_RULE,
    "ServiceEntry": SERVICE_ENTRY,
    "WorkloadEntry": WORKLOAD_ENTRY,
    "PeerAuthentication": PEER_AUTHENTICATION,
    "AuthorizationPolicy": AUTHORIZATION_POLICY,
    "Service": SERVICE,
}

# Kinds whose spec may be absent (everything optional).
SPEC_OPTIONAL = {"PeerAuthentication", "AuthorizationPolicy"}


def validate_spec(kind: str, spec) -> Out:
    out = Out()
    node = SPECS[kind]
    if spec is None:
        if kind not in SPEC_OPTIONAL:
            out.error("spec", "Required value")
        return out
    node.walk(spec, "spec", out)
    return out

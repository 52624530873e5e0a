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

import re

from . import findings as fnd
from . import hosts
from . import meshconfig as mc
from .destinationrule import DESTINATION_RULE
from .meshconfig import MESH_CONFIG
from .rules import export_to, port_number, selector_labels, target_ref
from .schema import (
    Enum,
    Int,
    IntOrStr,
    List,
    Map,
    Obj,
    Opaque,
    Out,
    Str,
    Warned,
    join,
)
from .telemetry import TELEMETRY
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
        "subjectAltNames": List(Str(), to="added to the SPIFFE IDs an ISTIO_MUTUAL upstream must present"),
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


# ---- security.istio.io ------------------------------------------------------------------------------------


def _mtls(to):
    return Obj(fields={"mode": Enum(values=("UNSET", "DISABLE", "PERMISSIVE", "STRICT"), to=to)})


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
        "selector": Obj(fields={"matchLabels": selector_labels()},
                        to="the workloads (in the policy's namespace) it applies to; none: the namespace, or the "
                           "mesh in the root namespace"),
        "mtls": _mtls("the inbound listeners: STRICT one TLS chain requiring a client certificate; PERMISSIVE "
                      "tls_inspector + TLS and plaintext chains; DISABLE plaintext; UNSET inherits"),
        "portLevelMtls": Map(_mtls("the inbound listener of that application port"), key_check=_check_pa_port,
                             min_props=1, int_keys=True),
    },
    check=_check_peer_authentication,
)


def _strings(max_items=None, max_len=None):
    return List(Str(max_len=max_len), max_items=max_items)


# Istio's security.ValidateAttribute: the `when` keys it knows (translated or not).
_WHEN_EXACT = {"source.ip", "remote.ip", "source.namespace", "source.serviceAccount", "source.principal",
               "source.trustDomain", "request.auth.principal", "request.auth.audiences", "request.auth.presenter",
               "destination.ip", "destination.port", "connection.sni"}
_WHEN_MAP = ("request.headers", "request.experimental.inline.headers", "request.auth.claims",
             "experimental.envoy.filters.")
_JWT = ("JWT is not implemented in meshcore (no RequestAuthentication): as in Istio without a JWT, this "
        "never matches")


def _map_key_problem(key):
    open_ = key.find("[")
    if key.endswith("]") and 0 < open_ < len(key) - 2:
        return None
    return f"bad key ({key}): should have format a[b]"


def _ip_problems(values):
    for v in values or []:
        if not isinstance(v, str):
            continue
        if "/" in v:
            if not hosts.is_cidr(v):
                yield f"bad CIDR range ({v})"
        elif not hosts.is_ip(v):
            yield f"bad IP address ({v})"


def _port_problems(values):
    for v in values or []:
        if not (isinstance(v, str) and v.isdigit() and int(v) <= 65535):
            yield f"bad port ({v})"


def _service_account_problems(values):
    if len(values or []) > 16:
        yield "may not have more than 16 values"
    for v in values or []:
        if not isinstance(v, str):
            continue
        if "*" in v:
            yield f"wildcard not allowed, found in {v}"
        elif v.count("/") > 1 or v.startswith("/") or v.endswith("/"):
            yield f"expected format 'serviceAccount' or 'namespace/serviceAccount', found {v!r}"


def _path_template_problems(paths):
    for path in paths or []:
        if not isinstance(path, str):
            continue
        has_template = "{*}" in path or "{**}" in path
        found_any = False
        for glob in path.strip("/").split("/"):
            if glob in ("{*}", "{**}"):
                if found_any:
                    yield f"invalid or unsupported path {path}. {{**}} is not the last operator"
                    break
                found_any = glob == "{**}"
                continue
            if "{" in glob or "}" in glob:
                yield f"invalid or unsupported path {path}. Contains '{{' or '}}' beyond a supported path template"
                break
            if has_template and not re.fullmatch(r"[a-zA-Z0-9\-._~%!$&'()+,;:@=]+", glob):
                yield f"invalid or unsupported path {path}. Contains segment {glob} with invalid string literal"
                break


def _empty_values(values):
    return any(v == "" for v in values or [])


_SOURCE_LISTS = ("principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces",
                 "notNamespaces", "ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks",
                 "serviceAccounts", "notServiceAccounts", "trustDomains", "notTrustDomains")
_OPERATION_LISTS = ("hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths")


def _check_source(v, path, out):
    if v.get("serviceAccounts") is not None or v.get("notServiceAccounts") is not None:
        if any(v.get(k) is not None for k in ("principals", "notPrincipals", "namespaces", "notNamespaces")):
            out.error(path, "Cannot set serviceAccounts with namespaces or principals")
    if not any(v.get(k) for k in _SOURCE_LISTS):
        out.error(path, "`from.source` must not be empty")
    for k in ("ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"):
        for problem in _ip_problems(v.get(k)):
            out.error(join(path, k), problem)
    for k in ("serviceAccounts", "notServiceAccounts"):
        for problem in _service_account_problems(v.get(k)):
            out.error(join(path, k), problem)
    for k in _SOURCE_LISTS:
        if _empty_values(v.get(k)):
            out.error(join(path, k), f"empty value not allowed, found in {k}")
    for k in ("requestPrincipals", "notRequestPrincipals"):
        if v.get(k):
            out.warn(join(path, k), _JWT, fnd.UNSUPPORTED)


def _check_operation(v, path, out):
    if not any(v.get(k) for k in _OPERATION_LISTS):
        out.error(path, "`to.operation` must not be empty")
    for k in ("ports", "notPorts"):
        for problem in _port_problems(v.get(k)):
            out.error(join(path, k), problem)
    for k in ("paths", "notPaths"):
        for problem in _path_template_problems(v.get(k)):
            out.error(join(path, k), problem)
    for k in _OPERATION_LISTS:
        if _empty_values(v.get(k)):
            out.error(join(path, k), f"empty value not allowed, found in {k}")


def _check_condition(v, path, out):
    key = v.get("key")
    if not isinstance(key, str):
        return
    if not key:
        out.error(join(path, "key"), "`key` must not be empty")
        return
    values, not_values = v.get("values"), v.get("notValues")
    if not values and not not_values:
        out.error(path, f"at least one of `values` or `notValues` must be set for key {key}")
        return
    for name, items in (("values", values), ("notValues", not_values)):
        where = join(path, name)
        if _empty_values(items):
            out.error(where, f"empty value not allowed, found in {key}")
        elif key in ("source.ip", "remote.ip", "destination.ip"):
            for problem in _ip_problems(items):
                out.error(where, problem)
        elif key == "destination.port":
            for problem in _port_problems(items):
                out.error(where, problem)
        elif key == "source.serviceAccount":
            for problem in _service_account_problems(items):
                out.error(where, problem)
    if key in _WHEN_EXACT:
        pass
    elif key.startswith(_WHEN_MAP):
        problem = _map_key_problem(key)
        if problem:
            out.error(join(path, "key"), problem)
            return
    elif key == "destination.namespace":
        out.error(join(path, "key"), f"attribute {key} is replaced by the metadata.namespace")
        return
    elif key.startswith("destination.labels"):
        out.error(join(path, "key"), f"attribute {key} is replaced by the workload selector")
        return
    elif key in ("destination.name", "destination.user"):
        out.error(join(path, "key"), f"deprecated attribute {key}: only supported in v1alpha1")
        return
    else:
        out.error(join(path, "key"), f"unknown attribute: {key}")
        return
    if key.startswith("request.auth."):
        out.warn(join(path, "key"), _JWT, fnd.UNSUPPORTED)
    elif key == "connection.sni":
        # Envoy would match the TLS SNI; meshcore's core never does. In an ALLOW
        # rule that only allows less (a warning); a DENY rule would deny less than
        # Istio: refused (the policy's action is checked in _check_authorization_policy).
        out.warn(join(path, "key"), "meshcore's core does not evaluate the requested server name: this "
                                    "condition never matches", fnd.UNSUPPORTED)
    elif key.startswith("experimental.envoy.filters."):
        out.warn(join(path, "key"), "meshcore has no filter that writes dynamic metadata: this condition never "
                                    "matches", fnd.UNSUPPORTED)


def _check_rule(v, path, out):
    if v.get("from") is not None and len(v["from"]) == 0:
        out.error(join(path, "from"), "`from` must not be empty")
    if v.get("to") is not None and len(v["to"]) == 0:
        out.error(join(path, "to"), "`to` must not be empty")
    for i, f in enumerate(v.get("from") or []):
        if isinstance(f, dict) and f.get("source") is None:
            out.error(f"{path}.from[{i}].source", "`from.source` must not be nil")
    for i, t in enumerate(v.get("to") or []):
        if isinstance(t, dict) and t.get("operation") is None:
            out.error(f"{path}.to[{i}].operation", "`to.operation` must not be nil")


def _check_authorization_policy(v, path, out):
    if sum(v.get(k) is not None for k in ("selector", "targetRef", "targetRefs")) > 1:
        out.error(path, "only one of targetRefs or selector can be set")
    action = v.get("action") or "ALLOW"
    if v.get("provider") is not None and action != "CUSTOM":
        out.error(join(path, "provider"), "provider is only allowed with action CUSTOM")
    if action == "CUSTOM":
        if v.get("rules") is None:
            out.error(join(path, "rules"), "CUSTOM action without `rules` is meaningless as it will never be "
                                           "triggered, add an empty rule `{}` if you want it be triggered for every "
                                           "request")
        elif not (v.get("provider") or {}).get("name"):
            out.error(join(path, "provider.name"), "`provider.name` must not be empty")
        out.unsupported(join(path, "action"), "CUSTOM: external authorization (ext_authz) is not implemented")
    if action == "DENY" and v.get("rules") is None:
        out.error(join(path, "rules"), "DENY action without `rules` is meaningless as it will never be triggered, "
                                       "add an empty rule `{}` if you want it be triggered for every request")
    if action == "DENY":
        for i, rule in enumerate(v.get("rules") or []):
            for j, cond in enumerate((rule or {}).get("when") or [] if isinstance(rule, dict) else []):
                if isinstance(cond, dict) and cond.get("key") == "connection.sni":
                    out.unsupported(f"{path}.rules[{i}].when[{j}].key",
                                    "connection.sni in a DENY rule: meshcore's core does not evaluate the "
                                    "requested server name, so it would deny less than Istio")
    if action == "AUDIT":
        out.warn(join(path, "action"), "not supported by meshcore, ignored: AUDIT only marks requests for audit "
                                       "logging (it never changes a decision)", fnd.UNSUPPORTED)
    for k in ("targetRef", "targetRefs"):
        if v.get(k):
            out.warn(join(path, k), "applies to gateways and waypoints, not to sidecars (as in Istio): this "
                                    "policy is not applied by meshcore", fnd.IGNORED)


_SOURCE_TO = {
    "principals": "authenticated.principal_name (spiffe://<principal>; trust domain aliases as Istio)",
    "notPrincipals": "not_id of the same",
    "requestPrincipals": "JWT metadata matchers (never match: no JWT in meshcore)",
    "notRequestPrincipals": "not_id of the same (always true)",
    "namespaces": "authenticated.principal_name regex .*/ns/<ns>/.*",
    "notNamespaces": "not_id of the same",
    "ipBlocks": "direct_remote_ip", "notIpBlocks": "not_id of the same",
    "remoteIpBlocks": "remote_ip", "notRemoteIpBlocks": "not_id of the same",
    "serviceAccounts": "authenticated.principal_name regex spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?",
    "notServiceAccounts": "not_id of the same",
    "trustDomains": "authenticated.principal_name prefix spiffe://<td>/",
    "notTrustDomains": "not_id of the same",
}
_OPERATION_TO = {
    "hosts": "header :authority (ignore case)", "notHosts": "not_rule of the same",
    "ports": "destination_port (the application's port)", "notPorts": "not_rule of the same",
    "methods": "header :method", "notMethods": "not_rule of the same",
    "paths": "url_path (templates {*} {**}: Envoy's regex for them)", "notPaths": "not_rule of the same",
}

AUTHORIZATION_POLICY = Obj(
    fields={
        "selector": Obj(fields={"matchLabels": selector_labels()},
                        to="the workloads it applies to (root namespace: the whole mesh)"),
        "targetRef": target_ref(),
        "targetRefs": List(target_ref(), max_items=16),
        "action": Enum(values=("ALLOW", "DENY", "AUDIT", "CUSTOM"),
                       to="RBAC filters in order: root-namespace DENY, DENY, ALLOW (AUDIT ignored, CUSTOM refused)"),
        "provider": Obj(fields={"name": Str()}, to="CUSTOM only (refused)"),
        "rules": List(Obj(fields={
            "from": List(Obj(fields={"source": Obj(
                fields={k: (_strings(16, 320) if "erviceAccounts" in k else _strings()) for k in _SOURCE_LISTS},
                check=_check_source)}), max_items=512, to="RBAC policy principals (OR)"),
            "to": List(Obj(fields={"operation": Obj(fields={k: _strings() for k in _OPERATION_LISTS},
                                                    check=_check_operation)}), to="RBAC policy permissions (OR)"),
            "when": List(Obj(fields={"key": Str(), "values": _strings(), "notValues": _strings()},
                             required=("key",), check=_check_condition),
                         to="ANDed into principals (source.*, remote.ip, request.*) or permissions "
                            "(destination.*, connection.sni)"),
        }, check=_check_rule), max_items=512, to="one RBAC policy per rule: ns[<ns>]-policy[<name>]-rule[<i>]"),
    },
    check=_check_authorization_policy,
)
for _k, _to in _SOURCE_TO.items():
    AUTHORIZATION_POLICY.fields["rules"].item.fields["from"].item.fields["source"].fields[_k].to = _to
for _k, _to in _OPERATION_TO.items():
    AUTHORIZATION_POLICY.fields["rules"].item.fields["to"].item.fields["operation"].fields[_k].to = _to


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
    "Telemetry": TELEMETRY,
    "MeshConfig": MESH_CONFIG,  # the `mesh` text of the ConfigMap istio (model.py reads it)
}

# Where each kind's field paths start (docs, findings): "spec" unless named here.
ROOTS = {"MeshConfig": mc.ROOT}

# Kinds whose spec may be absent (everything optional).
SPEC_OPTIONAL = {"PeerAuthentication", "AuthorizationPolicy", "Telemetry"}


def validate_spec(kind: str, spec) -> Out:
    out = Out()
    node = SPECS[kind]
    if spec is None:
        if kind not in SPEC_OPTIONAL:
            out.error("spec", "Required value")
        return out
    node.walk(spec, "spec", out)
    return out

"""Cross-resource checks of PeerAuthentication and AuthorizationPolicy (meshcore check):
policies that select no workload, authorization rules that can never match
(a principal of another trust domain, a port the selected workloads do not
have, a notX that covers X), identities (principals, namespaces) that no
workload has, and DENY rules whose HTTP-only attributes close every TCP
connection (as Istio's validation warns); path-based DENY rules a
client can get past when MeshConfig's pathNormalization is NONE."""
from __future__ import annotations

from meshcore.identity import DEFAULT_SERVICE_ACCOUNT

from . import findings as fnd
from . import meshconfig as mc
from . import registry as reg
from .authz import TrustDomainBundle

_HTTP_ONLY_OPERATION = ("hosts", "notHosts", "methods", "notMethods", "paths", "notPaths")
_HTTP_ONLY_SOURCE = ("requestPrincipals", "notRequestPrincipals")


def security_findings(mesh, registry: reg.Registry, security) -> list:
    out: list = []
    bundle = TrustDomainBundle.of(security.trust_domain, security.trust_domain_aliases)
    identities = {(w.namespace, w.service_account or DEFAULT_SERVICE_ACCOUNT) for w in registry.workloads}
    namespaces = {w.namespace for w in registry.workloads}
    normalization = mc.MeshConfig.of(mesh, security.root_namespace).path_normalization
    for pa in mesh.of("PeerAuthentication"):
        _peer_authentication(pa, mesh, registry, security, out)
    for ap in mesh.of("AuthorizationPolicy"):
        selected = _selected(ap, registry, security.root_namespace)
        if _has_selector(ap) and not selected:
            out.append(ap.finding(fnd.WARNING, fnd.NO_WORKLOAD, "spec.selector",
                                  "selects no WorkloadEntry: this policy applies to nothing"))
        ports = _app_ports(registry, selected)
        tcp_ports = _tcp_app_ports(registry, selected)
        for i, rule in enumerate(ap.spec.get("rules") or []):
            if isinstance(rule, dict):
                _rule(ap, f"spec.rules[{i}]", rule, bundle, identities, namespaces, ports, selected, out)
                if (ap.spec.get("action") == "DENY" and tcp_ports and _http_only(rule)):
                    out.append(ap.finding(
                        fnd.WARNING, fnd.AUTHZ_NEVER_MATCHES, f"spec.rules[{i}]",
                        "this DENY rule has only HTTP attributes: on TCP ports (" +
                        ", ".join(str(p) for p in sorted(tcp_ports)) + ") it matches every connection and closes "
                        "it (as in Istio); name the HTTP ports in to.operation.ports"))
                if normalization == "NONE" and _path_guard(ap.spec.get("action") or "ALLOW", rule):
                    out.append(ap.finding(
                        fnd.WARNING, fnd.UNNORMALIZED_PATH, f"spec.rules[{i}]",
                        "matches paths while MeshConfig pathNormalization is NONE: /x/../admin, //admin or "
                        "/%61dmin get past it; use BASE (Istio's default) or MERGE_SLASHES"))
    return out


def _path_guard(action: str, rule: dict) -> bool:
    """A rule that keeps requests out by path: DENY with paths, ALLOW with notPaths."""
    field = "paths" if action == "DENY" else "notPaths" if action == "ALLOW" else None
    return field is not None and any(
        isinstance(t, dict) and ((t.get("operation") or {}).get(field)) for t in rule.get("to") or [])


def _has_selector(r) -> bool:
    return bool((r.spec.get("selector") or {}).get("matchLabels"))


def _selected(r, registry, root_namespace):
    selector = (r.spec.get("selector") or {}).get("matchLabels") or {}
    return [w for w in registry.workloads
            if (r.namespace == root_namespace or w.namespace == r.namespace) and reg.label_match(selector, w.labels)]


def _app_ports(registry, workloads) -> set:
    ports = set()
    for w in workloads:
        ports |= {p for p in (w.resource.spec.get("ports") or {}).values() if isinstance(p, int)}
        for svc, e in registry.services_of(w):
            ports |= {e.port_for(p) for p in svc.ports}
    return ports


def _tcp_app_ports(registry, workloads) -> set:
    from .security import inbound_ports

    out = set()
    for w in workloads:
        if not inbound_ports(w.resource):
            continue
        for svc, e in registry.services_of(w):
            out |= {e.port_for(p) for p in svc.ports if not p.is_http}
    return out


def _http_only(rule) -> bool:
    """Istio's check: a rule whose from/to have no TCP attribute (ports, IPs, principals, namespaces)."""
    tos = [t.get("operation") or {} for t in rule.get("to") or []]
    froms = [f.get("source") or {} for f in rule.get("from") or []]
    tcp_to = any(o.get("ports") or o.get("notPorts") for o in tos)
    tcp_from = any(any(v for k, v in s.items() if k not in _HTTP_ONLY_SOURCE) for s in froms)
    return bool((froms and not tos and not tcp_from) or (tos and not tcp_to))


def _wild_match(pattern: str, value: str) -> bool:
    """Istio's value matching: "*" any, "x*" prefix, "*x" suffix, else exact."""
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return pattern == value


def _covered(values, not_values) -> bool:
    """notValues exclude every value: "*" among them, or each value also among them."""
    nv = set(not_values or [])
    return bool(values or not_values) and ("*" in nv or (bool(values) and set(values) <= nv))


def _rule(ap, path, rule, bundle, identities, namespaces, ports, selected, out):
    def never(where, text):
        out.append(ap.finding(fnd.WARNING, fnd.AUTHZ_NEVER_MATCHES, where, text))

    def principals(where, values):
        for j, p in enumerate(values or []):
            parts = p.split("/")
            if len(parts) == 5 and not bundle.matches(parts[0]):
                never(f"{where}[{j}]", f'"{p}": trust domain {parts[0]} is not the mesh\'s '
                                       f"({', '.join(bundle.trust_domains)}): this principal never matches")
                continue
            if len(parts) == 5:
                ns_pat, sa_pat = parts[2], parts[4]
                if parts[1] == "ns" and parts[3] == "sa" and not any(
                        _wild_match(ns_pat, ns) and _wild_match(sa_pat, sa) for ns, sa in identities):
                    out.append(ap.finding(fnd.WARNING, fnd.UNKNOWN_IDENTITY, f"{where}[{j}]",
                                          f'"{p}": no WorkloadEntry runs as namespace {ns_pat}, service account '
                                          f"{sa_pat}"))
            elif p != "*" and not p.startswith("*") and not p.endswith("*"):
                never(f"{where}[{j}]", f'"{p}" is not a SPIFFE identity (<trust domain>/ns/<ns>/sa/<sa>): no '
                                       "workload certificate has it")

    def nss(where, values):
        for j, n in enumerate(values or []):
            if not any(_wild_match(n, ns) for ns in namespaces):
                out.append(ap.finding(fnd.WARNING, fnd.UNKNOWN_IDENTITY, f"{where}[{j}]",
                                      f'namespace "{n}": no WorkloadEntry is in it'))

    def port_values(where, values):
        if not selected:
            return
        for j, p in enumerate(values or []):
            if isinstance(p, str) and p.isdigit() and int(p) not in ports:
                never(f"{where}[{j}]", f"port {p} is no port of the selected workloads' applications "
                                       f"({', '.join(str(x) for x in sorted(ports)) or 'none'}): never matches")

    for i, src in enumerate(rule.get("from") or []):
        s = (src or {}).get("source") or {}
        where = f"{path}.from[{i}].source"
        principals(f"{where}.principals", s.get("principals"))
        principals(f"{where}.notPrincipals", s.get("notPrincipals"))
        nss(f"{where}.namespaces", s.get("namespaces"))
        for a, b in (("principals", "notPrincipals"), ("namespaces", "notNamespaces"),
                     ("ipBlocks", "notIpBlocks"), ("remoteIpBlocks", "notRemoteIpBlocks"),
                     ("serviceAccounts", "notServiceAccounts"), ("requestPrincipals", "notRequestPrincipals")):
            if _covered(s.get(a), s.get(b)):
                never(f"{where}.{b}", f"{b} excludes every {a[:-1] if a.endswith('s') else a}: this source "
                                      "never matches")
    for i, dst in enumerate(rule.get("to") or []):
        o = (dst or {}).get("operation") or {}
        where = f"{path}.to[{i}].operation"
        port_values(f"{where}.ports", o.get("ports"))
        for a, b in (("hosts", "notHosts"), ("ports", "notPorts"), ("methods", "notMethods"),
                     ("paths", "notPaths")):
            if _covered(o.get(a), o.get(b)):
                never(f"{where}.{b}", f"{b} excludes every {a[:-1]}: this operation never matches")
    for i, cond in enumerate(rule.get("when") or []):
        if not isinstance(cond, dict):
            continue
        where = f"{path}.when[{i}]"
        key = cond.get("key")
        if key == "source.principal":
            principals(f"{where}.values", cond.get("values"))
        elif key == "source.namespace":
            nss(f"{where}.values", cond.get("values"))
        elif key == "destination.port":
            port_values(f"{where}.values", cond.get("values"))
        if _covered(cond.get("values"), cond.get("notValues")):
            never(f"{where}.notValues", f"notValues excludes every value of {key}: never matches")


def _peer_authentication(pa, mesh, registry, security, out):
    selector = (pa.spec.get("selector") or {}).get("matchLabels") or {}
    if selector:
        selected = [w for w in registry.workloads
                    if w.namespace == pa.namespace and reg.label_match(selector, w.labels)]
        if not selected:
            out.append(pa.finding(fnd.WARNING, fnd.NO_WORKLOAD, "spec.selector",
                                  f"selects no WorkloadEntry in namespace {pa.namespace}: this policy applies to "
                                  "nothing"))
            return
        ports = _app_ports(registry, selected)
        for key in pa.spec.get("portLevelMtls") or {}:
            if str(key).isdigit() and int(key) not in ports:
                out.append(pa.finding(fnd.WARNING, fnd.NO_WORKLOAD, f'spec.portLevelMtls["{key}"]',
                                      f"port {key} is no application port of the selected workloads "
                                      f"({', '.join(str(p) for p in sorted(ports)) or 'none'})"))
        return
    same = [p for p in mesh.of("PeerAuthentication")
            if p.namespace == pa.namespace and not (p.spec.get("selector") or {}).get("matchLabels")]
    if same and same[0] is not pa:
        scope = "mesh-wide" if pa.namespace == security.root_namespace else f"namespace {pa.namespace}"
        out.append(pa.finding(fnd.WARNING, fnd.DUPLICATE, "metadata.name",
                              f"{same[0].label} ({same[0].file}) is the {scope} policy already: this one is not "
                              "used (Istio would use the oldest)"))

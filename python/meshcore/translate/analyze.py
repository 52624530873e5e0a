"""Cross-resource checks: what would drop or misroute traffic (like `istioctl analyze`).

Independent of any one workload. `meshcore check` reports these together
with the loading findings and each workload's translation findings; the
proxy refuses a mesh directory with any error among them.
"""
from __future__ import annotations

from meshcore.durations import go_duration_ns

from . import findings as fnd
from . import hosts
from . import registry as reg
from .build import applies_to_sidecars
from .rules import MESH_GATEWAY


def analyze(mesh, registry: reg.Registry | None = None, security=None) -> list[fnd.Finding]:
    from .security import Security
    from .securitycheck import security_findings
    from .telemetry import telemetry_findings

    registry = registry or reg.Registry(mesh)
    security = security or Security()
    out: list[fnd.Finding] = security_findings(mesh, registry, security)
    out += telemetry_findings(mesh, registry, security)
    virtual_services = mesh.of("VirtualService")
    for vs in virtual_services:
        if not applies_to_sidecars(vs):  # nothing of it is used: no more to say
            out.append(vs.finding(fnd.WARNING, fnd.IGNORED, "spec.gateways",
                                  'applies to gateways only (no "mesh"): sidecars do not use it'))
            continue
        others = [g for g in vs.spec.get("gateways") or [] if g != MESH_GATEWAY]
        if others:
            out.append(vs.finding(fnd.WARNING, fnd.IGNORED, "spec.gateways",
                                  f"meshcore serves no gateways: only the mesh part applies (not {', '.join(others)})"))
        _destinations(vs, registry, out)
        _shadowed(vs, out)
        _retry_timeouts(vs, out)
        _faults(vs, out)
    _duplicate_hosts([vs for vs in virtual_services if applies_to_sidecars(vs)], registry, out)
    _subsets_and_endpoints(mesh, registry, out)
    return out


def _for_sidecars(entry) -> bool:
    """Whether an http[]/tcp[] entry has a match that can apply to a sidecar."""
    matches = entry.get("match") or [None]
    return any(m is None or not m.get("gateways") or MESH_GATEWAY in m["gateways"] for m in matches)


def _destinations(vs, registry, out):
    spec = vs.spec
    for i, http in enumerate(spec.get("http") or []):
        if not _for_sidecars(http):
            continue
        for k, d in enumerate(http.get("route") or []):
            _destination(vs, d.get("destination"), f"spec.http[{i}].route[{k}].destination", registry, out)
        if http.get("mirror"):
            _destination(vs, http["mirror"], f"spec.http[{i}].mirror", registry, out)
        for k, m in enumerate(http.get("mirrors") or []):
            _destination(vs, m.get("destination"), f"spec.http[{i}].mirrors[{k}].destination", registry, out)
    for i, tcp in enumerate(spec.get("tcp") or []):
        if not _for_sidecars(tcp):
            continue
        for k, d in enumerate(tcp.get("route") or []):
            _destination(vs, d.get("destination"), f"spec.tcp[{i}].route[{k}].destination", registry, out)


def _destination(vs, dest, path, registry, out):
    if not dest:
        return
    host = hosts.fqdn(dest["host"], vs.namespace)
    svc = registry.service(host)
    if svc is None:
        se = registry.not_served.get(host)
        if se is not None:
            why = f"its {se.label} has resolution {se.spec.get('resolution') or 'NONE'}, which meshcore does not serve"
        else:
            why = "no Service or STATIC ServiceEntry has this host"
        out.append(vs.finding(fnd.ERROR, fnd.UNKNOWN_HOST, f"{path}.host", f"unknown destination host {host}: {why}"))
        return
    port = (dest.get("port") or {}).get("number")
    if port and svc.port(port) is None:
        out.append(vs.finding(fnd.ERROR, fnd.UNKNOWN_HOST, f"{path}.port.number",
                              f"{host} has no port {port} (ports: {', '.join(str(p.number) for p in svc.ports)})"))
    if not port and len(svc.ports) > 1:
        pass  # the listener's port is used, as Istio
    subset = dest.get("subset")
    if subset:
        rules = registry.destination_rules(host, None)
        if not any(reg.subset_of(dr, subset) is not None for dr in rules):
            where = f"{rules[0].label} ({rules[0].file})" if rules else "no DestinationRule for this host"
            out.append(vs.finding(fnd.ERROR, fnd.UNDEFINED_SUBSET, f"{path}.subset",
                                  f'subset "{subset}" of {host} is not defined: {where}'))


def _catch_all(m) -> bool:
    if m is None:
        return True
    keys = {k for k, v in m.items() if v not in (None, {}, [], "")} - {"name", "ignoreUriCase"}
    if not keys:
        return True
    if keys == {"uri"}:
        uri = m["uri"]
        return uri.get("prefix") == "/" or uri.get("regex") in (".*", "/.*")
    return False


def _shadowed(vs, out):
    http = vs.spec.get("http") or []
    for i, h in enumerate(http):
        matches = h.get("match") or [None]
        if any(_catch_all(m) for m in matches):
            for j in range(i + 1, len(http)):
                out.append(vs.finding(fnd.WARNING, fnd.SHADOWED_ROUTE, f"spec.http[{j}]",
                                      f"unreachable: spec.http[{i}] before it matches every request"))
            return


def _retry_timeouts(vs, out):
    for i, h in enumerate(vs.spec.get("http") or []):
        retries, timeout = h.get("retries") or {}, go_duration_ns(h.get("timeout"))
        per_try = go_duration_ns(retries.get("perTryTimeout"))
        attempts = retries.get("attempts") or 0
        if timeout and per_try and attempts and per_try * attempts > timeout:
            out.append(vs.finding(
                fnd.WARNING, fnd.RETRY_TIMEOUT, f"spec.http[{i}].retries",
                f"perTryTimeout {retries['perTryTimeout']} x attempts {attempts} is longer than the route timeout "
                f"{h['timeout']}: the timeout ends the request before the retries can all run"))


def _faults(vs, out):
    for i, h in enumerate(vs.spec.get("http") or []):
        fault = h.get("fault") or {}
        for kind in ("delay", "abort"):
            f = fault.get(kind)
            if f and f.get("percentage") is None and not f.get("percent"):
                out.append(vs.finding(fnd.WARNING, fnd.IGNORED, f"spec.http[{i}].fault.{kind}",
                                      "no percentage: as in Istio, this fault is injected into no request"))


def _duplicate_hosts(virtual_services, registry, out):
    first = {}
    for vs in virtual_services:
        for j, h in enumerate(vs.spec.get("hosts") or []):
            host = hosts.fqdn(h, vs.namespace)
            other = first.get(host)
            if other is not None and other is not vs:
                out.append(vs.finding(fnd.ERROR, fnd.DUPLICATE_HOST, f"spec.hosts[{j}]",
                                      f"{host} is also routed by {other.label} ({other.file}); "
                                      "only one VirtualService per host is used"))
            else:
                first[host] = vs
        for h in vs.spec.get("hosts") or []:
            host = hosts.fqdn(h, vs.namespace)
            if hosts.is_wildcard(host):
                continue
            if registry.service(host) is None and host not in registry.not_served:
                out.append(vs.finding(fnd.WARNING, fnd.UNKNOWN_HOST, "spec.hosts",
                                      f"{host} is no service's host: its routes apply on port 80 only (as Istio)"))


def _subsets_and_endpoints(mesh, registry, out):
    seen_rules = {}
    for dr in mesh.of("DestinationRule"):
        pattern = hosts.fqdn(dr.spec.get("host", ""), dr.namespace)
        matching = [s for s in registry.services if hosts.matches(s.host, pattern)]
        if not matching:
            out.append(dr.finding(fnd.WARNING, fnd.UNKNOWN_HOST, "spec.host",
                                  f"{pattern} matches no Service or STATIC ServiceEntry: this rule has no effect"))
            continue
        key = (pattern, dr.namespace, str(dr.spec.get("workloadSelector")))
        if key in seen_rules:
            other = seen_rules[key]
            out.append(dr.finding(fnd.WARNING, fnd.DUPLICATE_HOST, "spec.host",
                                  f"{other.label} ({other.file}) is for the same host; meshcore uses that one "
                                  "(Istio would merge them)"))
        seen_rules.setdefault(key, dr)
        for i, subset in enumerate(dr.spec.get("subsets") or []):
            for svc in matching:
                if svc.endpoints and not reg.subset_endpoints(svc, subset):
                    out.append(dr.finding(fnd.WARNING, fnd.NO_ENDPOINTS, f"spec.subsets[{i}].labels",
                                          f'subset "{subset["name"]}" selects no endpoint of {svc.host}: '
                                          "requests routed to it get 503"))
    for svc in registry.services:
        if not svc.endpoints and svc.resource.kind == "Service" and svc.resource.spec.get("selector"):
            out.append(svc.resource.finding(fnd.WARNING, fnd.NO_ENDPOINTS, "spec.selector",
                                            f"selects no WorkloadEntry in namespace {svc.namespace}: requests to "
                                            f"{svc.host} get 503"))

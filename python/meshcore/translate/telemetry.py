"""Istio telemetry for one workload's sidecar: metrics, tracing and access logs,
from Istio's Telemetry API and MeshConfig (meshconfig.py), as istiod resolves them.

Metrics are on by default (Istio's default `prometheus` provider): the
bootstrap node carries the workload's metadata (node_metadata), every
listener a traffic_direction, every chain Istio's `istio.metadata_exchange`
(HTTP) and `istio.stats` filters, every cluster the service it belongs to
(`filter_metadata.istio.services`). The core counts istio_requests_total and
its kin from those (meshcore/telemetry/istio_metrics.py).

Which Telemetry applies to a workload (Istio's applicableTelemetries): the
root namespace's (no selector: mesh-wide), then its namespace's (no
selector), then the first in its namespace whose `selector.matchLabels`
match its labels; later levels override earlier ones field by field, and
MeshConfig's defaultProviders come first of all. `targetRefs` address
gateways and waypoints, never sidecars (a warning).

Tracing and access logs are resolved per direction, as Istio resolves them
per workload mode: CLIENT = the outbound listeners, SERVER = the inbound
ones (`match.mode`).
"""
from __future__ import annotations

from dataclasses import dataclass

from meshcore.identity import DEFAULT_SERVICE_ACCOUNT, spiffe_id
from meshcore.xds_types import (
    ISTIO_PEER_METADATA,
    ISTIO_STATS_CONFIG,
    OTEL_TRACER,
    UDPA_TYPED_STRUCT,
    ZIPKIN_TRACER,
    type_url,
)

from . import findings as fnd
from . import hosts
from . import meshconfig as mc
from . import registry as reg
from .clusters import cluster_name, duration
from .rules import selector_labels, target_ref
from .schema import Bool, Dur, Enum, List, Map, Num, Obj, Str, Warned

CLUSTER_ID = "Kubernetes"  # Istio's default cluster name (values.global.multiCluster.clusterName)
OUTBOUND, INBOUND = "OUTBOUND", "INBOUND"
CLIENT, SERVER = "CLIENT", "SERVER"
DIRECTIONS = {CLIENT: OUTBOUND, SERVER: INBOUND}
MODES = ("CLIENT_AND_SERVER", CLIENT, SERVER)
METRICS = ("ALL_METRICS", "REQUEST_COUNT", "REQUEST_DURATION", "REQUEST_SIZE", "RESPONSE_SIZE",
           "TCP_OPENED_CONNECTIONS", "TCP_CLOSED_CONNECTIONS", "TCP_SENT_BYTES", "TCP_RECEIVED_BYTES",
           "GRPC_REQUEST_MESSAGES", "GRPC_RESPONSE_MESSAGES")

TYPED_STRUCT = type_url(UDPA_TYPED_STRUCT)
STATS_CONFIG = type_url(ISTIO_STATS_CONFIG)
EXCHANGE_CONFIG = type_url(ISTIO_PEER_METADATA)
STATS = "istio.stats"
EXCHANGE = "istio.metadata_exchange"


# ---- the Telemetry resource ------------------------------------------------------------------------------


def _check_providers(v, path, out):
    if len(v) > 1:
        out.warn(path, "only the first provider is used (as Istio: one provider per mode)")


def _providers(to, single=False):
    return List(Obj(fields={"name": Str(to="an extensionProviders name (or a built-in: prometheus, envoy)",
                                        check=_not_empty)}, required=("name",)),
                check=_check_providers if single else None, to=to)


def _not_empty(v, path, out):
    if not v:
        out.error(path, "Required value")


def _match(to):
    return Obj(fields={"mode": Enum(values=MODES, to=to)})


_NOT_SIDECARS = ("applies to gateways and waypoints, not to sidecars (as in Istio): this Telemetry is not applied "
                 "by meshcore")


def _check_telemetry(v, path, out):
    if sum(v.get(k) is not None for k in ("selector", "targetRef", "targetRefs")) > 1:
        out.error(path, "only one of targetRefs or selector can be set")


def _check_override(v, path, out):
    match = v.get("match") or {}
    if match.get("metric") is not None and match.get("customMetric") is not None:
        out.error(f"{path}.match", "only one of metric or customMetric can be set")
    elif not _all_metrics(match):
        out.warn(f"{path}.match", "not supported by meshcore: overrides of one metric (meshcore reports all of "
                                  "Istio's standard metrics, or none)", fnd.UNSUPPORTED)


def _check_tag(v, path, out):
    op = v.get("operation") or "UPSERT"
    if op == "UPSERT" and not v.get("value"):
        out.error(path, "value must be set when operation is UPSERT")
    if op == "REMOVE" and v.get("value") is not None:
        out.error(path, "value must not be set when operation is REMOVE")


def _custom_tag():
    def named(*extra):
        return Obj(fields={"name": Str(), **{k: Str() for k in extra}}, required=("name",))

    return Obj(fields={"literal": Obj(fields={"value": Str()}, required=("value",)),
                       "environment": named("defaultValue"), "header": named("defaultValue"),
                       "formatter": Obj(fields={"value": Str()}, required=("value",))})


TELEMETRY = Obj(
    fields={
        "selector": Obj(fields={"matchLabels": selector_labels()},
                        to="the workloads (in its namespace) it applies to; none: the namespace, or the mesh in "
                           "the root namespace"),
        "targetRef": Warned(target_ref(), _NOT_SIDECARS),
        "targetRefs": Warned(List(target_ref(), max_items=16), _NOT_SIDECARS),
        "tracing": List(Obj(fields={
            "match": _match("CLIENT: outbound listeners, SERVER: inbound listeners"),
            "providers": _providers("HttpConnectionManager.tracing.provider (the first)", single=True),
            "customTags": Warned(Map(_custom_tag()), "spans carry Istio's standard tags only"),
            "disableSpanReporting": Bool(to="no HttpConnectionManager.tracing"),
            "randomSamplingPercentage": Num(lo=0, hi=100, to="tracing.random_sampling (default: MeshConfig "
                                                             "defaultConfig.tracing.sampling, else 1)"),
            "useRequestIdForTraceSampling": Warned(Bool(), "sampling is decided by random_sampling"),
            "enableIstioTags": Warned(Bool(), "spans always carry Istio's tags"),
            "disableContextPropagation": Warned(Bool(), "trace context is always propagated"),
        }), to="HttpConnectionManager.tracing of the outbound and inbound listeners"),
        "accessLogging": List(Obj(fields={
            "match": _match("CLIENT: outbound listeners, SERVER: inbound listeners"),
            "providers": _providers("access_log of each http_connection_manager and tcp_proxy"),
            "disabled": Bool(to="no access_log for those providers"),
            "filter": Warned(Obj(fields={"expression": Str()}), "CEL filters are not evaluated: every request "
                                                                "and connection is logged"),
        }), to="access_log (envoy.access_loggers.file)"),
        "metrics": List(Obj(fields={
            "providers": _providers("prometheus (Istio's standard metrics); other providers are warned"),
            "overrides": List(Obj(fields={
                "match": Obj(fields={
                    "metric": Enum(values=METRICS, to="ALL_METRICS (or no match); one metric: warned"),
                    "customMetric": Str(check=_not_empty, to="warned (no custom metrics)"),
                    "mode": Enum(values=MODES, to="CLIENT: outbound listeners, SERVER: inbound listeners"),
                }),
                "disabled": Bool(to="true for all metrics: no istio.stats filter (for the mode); false: on again"),
                "tagOverrides": Warned(Map(Obj(fields={"operation": Enum(values=("UPSERT", "REMOVE")),
                                                       "value": Str()}, check=_check_tag)),
                                       "metrics keep Istio's standard labels"),
            }, check=_check_override)),
            "reportingInterval": Warned(Dur(), "TCP metrics are counted as connections open and close"),
        }), to="the istio.stats filters"),
    },
    check=_check_telemetry,
)


# ---- which Telemetry applies ---------------------------------------------------------------------------


def _selector(t) -> dict:
    return (t.spec.get("selector") or {}).get("matchLabels") or {}


def _targeted(t) -> bool:
    return bool(t.spec.get("targetRef") or t.spec.get("targetRefs"))


def _namespace_wide(telemetries, namespace):
    return [t for t in telemetries if t.namespace == namespace and not _selector(t) and not _targeted(t)]


def applicable(telemetries, proxy: reg.Workload, root_namespace: str) -> list:
    """The Telemetry resources that apply to a workload, in Istio's order of
    precedence (later ones override): mesh-wide, namespace, workload."""
    out = []
    root = _namespace_wide(telemetries, root_namespace)
    if root:
        out.append(root[0])
    if proxy.namespace != root_namespace:
        ns = _namespace_wide(telemetries, proxy.namespace)
        if ns:
            out.append(ns[0])
    wl = next((t for t in telemetries if t.namespace == proxy.namespace and _selector(t) and not _targeted(t)
               and reg.label_match(_selector(t), proxy.labels)), None)
    if wl is not None:
        out.append(wl)
    return out


def _modes(match) -> tuple:
    mode = (match or {}).get("mode")
    return (mode,) if mode in (CLIENT, SERVER) else (CLIENT, SERVER)


def _all_metrics(match) -> bool:
    match = match or {}
    if match.get("customMetric"):
        return False
    return match.get("metric") in (None, "ALL_METRICS")


@dataclass
class _Entry:
    """One tracing / accessLogging / metrics entry of a Telemetry."""

    resource: object
    path: str
    spec: dict

    def names(self) -> list[tuple[str, str]]:
        """(provider name, its path)."""
        return [(p.get("name"), f"{self.path}.providers[{i}].name")
                for i, p in enumerate(self.spec.get("providers") or []) if p.get("name")]


def _entries(telemetries, section: str) -> list[_Entry]:
    return [_Entry(t, f"spec.{section}[{i}]", e) for t in telemetries
            for i, e in enumerate(t.spec.get(section) or [])]


# ---- node metadata, cluster metadata, peers ----------------------------------------------------------


def service_cluster(w: reg.Workload) -> str:
    """The bootstrap node's cluster, Istio's service cluster: <app label or workload name>.<namespace>
    (OpenTelemetry's service.name, Zipkin's serviceName)."""
    return f"{w.labels.get('app') or w.name}.{w.namespace}"


def node_metadata(w: reg.Workload, trust_domain: str) -> dict:
    """The bootstrap node's metadata, as istio-agent writes it for a pod: who the workload is.
    A WorkloadEntry is its own workload, so WORKLOAD_NAME is its name."""
    return {"NAME": w.name, "NAMESPACE": w.namespace, "WORKLOAD_NAME": w.name, "LABELS": dict(w.labels),
            "SERVICE_ACCOUNT": w.service_account or DEFAULT_SERVICE_ACCOUNT, "MESH_ID": trust_domain,
            "CLUSTER_ID": CLUSTER_ID}


def peers(workloads, trust_domain: str) -> dict[str, dict]:
    """principal (SPIFFE ID) -> node metadata, for every WorkloadEntry with a service account:
    the labels of a peer that sent no metadata (TCP, plaintext). Workloads that share a
    principal keep only what they agree on (bookinfo's reviews-v1/v2/v3: app reviews,
    no version, no workload name)."""
    groups: dict[str, list] = {}
    for w in workloads:
        if not w.service_account:
            continue
        sa = w.service_account
        principal = sa if sa.startswith("spiffe://") else spiffe_id(trust_domain, w.namespace, sa)
        groups.setdefault(principal, []).append(node_metadata(w, trust_domain))
    out = {}
    for principal, mds in groups.items():
        first, rest = mds[0], mds[1:]
        md = {k: v for k, v in first.items() if k != "LABELS" and all(m.get(k) == v for m in rest)}
        md["LABELS"] = {k: v for k, v in first["LABELS"].items() if all(m["LABELS"].get(k) == v for m in rest)}
        out[principal] = md
    return out


def service_metadata(services) -> dict:
    """Cluster.metadata naming the services a cluster belongs to (Istio's
    filter_metadata.istio.services): the destination_service labels."""
    items, seen = [], set()
    for svc in services:
        if svc.host in seen:
            continue
        seen.add(svc.host)
        # A ServiceEntry's "name" is its host (Istio's service attributes), a Service's its name.
        name = svc.resource.name if svc.resource.kind == "Service" else svc.host
        items.append({"host": svc.host, "name": name, "namespace": svc.namespace})
    return {"filter_metadata": {"istio": {"services": items}}}


def _istio_filter(name: str, type_url: str, value: dict | None = None) -> dict:
    tc = {"@type": TYPED_STRUCT, "type_url": type_url}
    if value:
        tc["value"] = value
    return {"name": name, "typed_config": tc}


def stats_filter() -> dict:
    return _istio_filter(STATS, STATS_CONFIG)


def exchange_filter(direction: str) -> dict:
    """istio.metadata_exchange: peer metadata in x-envoy-peer-metadata headers, to the upstream
    and back (outbound), from the downstream and back (inbound)."""
    side = "upstream" if direction == OUTBOUND else "downstream"
    return _istio_filter(EXCHANGE, EXCHANGE_CONFIG, {f"{side}_discovery": [{"istio_headers": {}}],
                                                     f"{side}_propagation": [{"istio_headers": {}}]})


# ---- providers ---------------------------------------------------------------------------------------------


def _kind_text(p) -> str:
    return f'provider "{p.name}" ({p.kind or "no kind"})'


def collector_of(p: mc.Provider, registry: reg.Registry):
    """(Service, host, port) of a tracing provider's collector, or (None, host, port)."""
    service = p.spec.get("service") or ""
    namespace, _, host = service.rpartition("/")
    port = p.spec.get("port")
    svc = registry.service(host)
    if svc is None and namespace:
        svc = registry.service(hosts.fqdn(host, namespace))
    return svc, (svc.host if svc is not None else host), port


def _provider_problems(p: mc.Provider, purpose: str, registry: reg.Registry, m: mc.MeshConfig) -> list:
    """What makes a provider unusable for `purpose` (tracing, accessLogging), mesh-wide:
    findings at its definition."""
    out = []
    where = p.path

    def error(code, path, text):
        out.append(m.finding(fnd.ERROR, code, path, text))

    if purpose == "tracing":
        if p.kind == "opentelemetry" and p.spec.get("http") is None:
            error(fnd.UNSUPPORTED, f"{where}.opentelemetry",
                  f'provider "{p.name}" exports OTLP over gRPC (it has no http block): meshcore exports OTLP/HTTP '
                  "only; add http: {path: /v1/traces} and give the collector's OTLP/HTTP port (4318)")
            return out
        svc, host, port = collector_of(p, registry)
        path = f"{where}.{p.kind}.service"
        if svc is None:
            se = registry.not_served.get(host)
            why = (f"its {se.label} has resolution {se.spec.get('resolution') or 'NONE'}, which meshcore does not "
                   "serve" if se is not None else "no Service or STATIC ServiceEntry has this host")
            error(fnd.UNKNOWN_HOST, path, f'provider "{p.name}": unknown collector service {host}: {why}')
        elif svc.port(port) is None:
            error(fnd.UNKNOWN_HOST, f"{where}.{p.kind}.port",
                  f'provider "{p.name}": collector service {host} has no port {port} '
                  f"(it has {', '.join(str(x.number) for x in svc.ports) or 'none'})")
        elif not svc.endpoints:
            error(fnd.NO_ENDPOINTS, path, f'provider "{p.name}": collector service {host} has no endpoints: its '
                                          "spans have nowhere to go")
    return out


def provider_for(m: mc.MeshConfig, name: str, purpose: str, ref, registry: reg.Registry):
    """(Provider or None, findings) for a provider name written at ref = (resource, path)
    (resource None: MeshConfig's defaultProviders)."""
    resource, path = ref
    findings = []

    def at_ref(severity, code, text):
        if resource is None:
            findings.append(m.finding(severity, code, path, text))
        else:
            findings.append(resource.finding(severity, code, path, text))

    p = m.providers.get(name)
    if p is None:
        at_ref(fnd.ERROR, fnd.UNKNOWN_PROVIDER, f'unknown provider "{name}": no extensionProviders entry has this '
                                                f"name in {m.label}")
        return None, findings
    wanted = {"tracing": mc.TRACING_KINDS, "accessLogging": mc.LOGGING_KINDS, "metrics": ("prometheus",)}[purpose]
    if p.kind not in wanted:
        if p.kind in mc.OTHER_KINDS and purpose != "metrics":
            at_ref(fnd.ERROR, fnd.UNSUPPORTED, f"{_kind_text(p)} is not implemented by meshcore ({purpose} "
                                               f"providers: {', '.join(wanted)})")
        elif purpose == "metrics":
            at_ref(fnd.WARNING, fnd.UNSUPPORTED, f"{_kind_text(p)}: meshcore reports metrics to prometheus "
                                                 "only; ignored")
        else:
            at_ref(fnd.ERROR, fnd.UNKNOWN_PROVIDER, f"{_kind_text(p)} is not a {purpose} provider "
                                                    f"({', '.join(wanted)})")
        return None, findings
    problems = _provider_problems(p, purpose, registry, m)
    return (None if problems else p), findings + problems


# ---- the workload's telemetry --------------------------------------------------------------------------


@dataclass
class _Tracing:
    provider: tuple | None = None  # (name, (resource, path))
    disabled: bool = False
    sampling: float | None = None


class WorkloadTelemetry:
    """Metrics, tracing and access logs of one sidecar, per direction.

    cluster_of(name) -> the translation's Cluster dict of that name, or None."""

    def __init__(self, mesh, registry: reg.Registry, proxy: reg.Workload, security, cluster_of):
        self.registry, self.proxy = registry, proxy
        self.mc = mc.MeshConfig.of(mesh, security.root_namespace)
        self.telemetries = applicable(mesh.of("Telemetry"), proxy, security.root_namespace)
        self.findings: list[fnd.Finding] = []
        self._cluster_of = cluster_of
        self.stats = self._metrics()
        self.tracing = self._tracing()
        self.access_logs = self._access_logs()

    # -- metrics

    def _metrics(self) -> dict:
        """direction -> whether istio.stats is on (Istio's mergeMetrics, for the prometheus provider)."""
        entries = _entries(self.telemetries, "metrics")
        defaults = self.mc.default_providers("metrics")
        scope = list(defaults)
        for e in entries:
            if e.names():
                scope = [n for n, _ in e.names()]
        usable = set()
        for i, name in enumerate(defaults):
            if self._metrics_provider(name, (None, self.mc.default_provider_path("metrics", i))):
                usable.add(name)
        for e in entries:
            for name, path in e.names():
                if self._metrics_provider(name, (e.resource, path)):
                    usable.add(name)
        on = {m: any(n in usable for n in scope) for m in (CLIENT, SERVER)}
        disabled = {CLIENT: False, SERVER: False}
        parent = defaults
        for e in entries:
            names = [n for n, _ in e.names()] or parent
            parent = names
            if not any(n in usable and n in scope for n in names):
                continue
            for o in e.spec.get("overrides") or []:
                match = o.get("match") or {}
                for m in _modes(match):
                    disabled[m] = bool(_all_metrics(match) and o.get("disabled") is True)
        return {DIRECTIONS[m]: on[m] and not disabled[m] for m in (CLIENT, SERVER)}

    def _metrics_provider(self, name, ref) -> bool:
        p, found = provider_for(self.mc, name, "metrics", ref, self.registry)
        self.findings += found
        return p is not None

    # -- tracing

    def _tracing(self) -> dict:
        """direction -> HttpConnectionManager.tracing (a dict) or None."""
        entries = _entries(self.telemetries, "tracing")
        defaults = self.mc.default_providers("tracing")
        if not entries and not defaults:
            if self.mc.spec.get("enableTracing") is True:
                self.findings.append(self.mc.finding(
                    fnd.WARNING, fnd.IGNORED, f"{mc.ROOT}.enableTracing",
                    "tracing without a provider (Istio's legacy defaultConfig.tracing) is not implemented: name an "
                    "opentelemetry or zipkin provider in defaultProviders.tracing or a Telemetry"))
            return {OUTBOUND: None, INBOUND: None}
        specs = {m: _Tracing() for m in (CLIENT, SERVER)}
        if defaults:
            for s in specs.values():
                s.provider = (defaults[0], (None, self.mc.default_provider_path("tracing", 0)))
        for e in entries:
            names = e.names()
            for m in _modes(e.spec.get("match")):
                s = specs[m]
                if names:
                    s.provider = (names[0][0], (e.resource, names[0][1]))
                if e.spec.get("disableSpanReporting") is not None:
                    s.disabled = e.spec["disableSpanReporting"]
                if e.spec.get("randomSamplingPercentage") is not None:
                    s.sampling = float(e.spec["randomSamplingPercentage"])
        return {DIRECTIONS[m]: self._tracing_config(s, entries) for m, s in specs.items()}

    def _tracing_config(self, s: _Tracing, entries) -> dict | None:
        if s.disabled:
            return None
        if s.provider is None:
            e = entries[0]
            self.findings.append(e.resource.finding(
                fnd.WARNING, fnd.IGNORED, e.path, "no tracing provider: name one here or in MeshConfig "
                                                  "defaultProviders.tracing (meshcore has no default tracer)"))
            return None
        name, ref = s.provider
        p, found = provider_for(self.mc, name, "tracing", ref, self.registry)
        self.findings += found
        if p is None:
            return None
        svc, host, port = collector_of(p, self.registry)
        cluster = cluster_name(port, "", host)
        c = self._cluster_of(cluster)
        if c is None:
            self.findings.append(self.mc.finding(
                fnd.ERROR, fnd.UNKNOWN_HOST, f"{p.path}.{p.kind}.service",
                f'provider "{p.name}": collector service {host} is not exported to namespace {self.proxy.namespace}: '
                f"the sidecars there have no cluster {cluster}"))
            return None
        if not (c.get("load_assignment") or {}).get("endpoints"):
            self.findings.append(self.mc.finding(
                fnd.ERROR, fnd.NO_ENDPOINTS, f"{p.path}.{p.kind}.service",
                f'provider "{p.name}": cluster {cluster} has no endpoints for {self.proxy.resource.label}'))
            return None
        if c.get("transport_socket") is not None:
            self.findings.append(self.mc.finding(
                fnd.WARNING, fnd.UNSUPPORTED, f"{p.path}.{p.kind}.service",
                f'provider "{p.name}": cluster {cluster} uses TLS, but spans are posted in plaintext to its first '
                "endpoint: a collector behind a STRICT sidecar refuses them"))
        sampling = s.sampling if s.sampling is not None else self.mc.sampling
        if p.kind == "opentelemetry":
            http = p.spec.get("http") or {}
            typed = {"@type": type_url(OTEL_TRACER), "service_name": service_cluster(self.proxy),
                     "http_service": {"http_uri": {
                         "uri": f"http://{host}:{port}{http.get('path') or mc.OTEL_PATH}", "cluster": cluster,
                         "timeout": duration(http["timeout"]) if http.get("timeout") else "1s"}}}
            tracer = "envoy.tracers.opentelemetry"
        else:
            typed = {"@type": type_url(ZIPKIN_TRACER), "collector_cluster": cluster,
                     "collector_endpoint": p.spec.get("path") or mc.ZIPKIN_PATH,
                     "collector_endpoint_version": "HTTP_JSON", "collector_hostname": host,
                     "trace_id_128bit": True, "shared_span_context": False}
            tracer = "envoy.tracers.zipkin"
        return {"random_sampling": {"value": sampling}, "provider": {"name": tracer, "typed_config": typed}}

    # -- access logs

    def _access_logs(self) -> dict:
        """direction -> [AccessLog dict]: Istio's mergeLogs. Without any Telemetry accessLogging
        and defaultProviders.accessLogging, the MeshConfig's accessLogFile (Istio's legacy)."""
        entries = _entries(self.telemetries, "accessLogging")
        defaults = [(n, (None, self.mc.default_provider_path("accessLogging", i)))
                    for i, n in enumerate(self.mc.default_providers("accessLogging"))]
        if not entries and not defaults:
            legacy = mc.mesh_access_log(self.mc)
            return {d: [legacy] if legacy else [] for d in (OUTBOUND, INBOUND)}
        out = {}
        for m in (CLIENT, SERVER):
            mine = [e for e in entries if m in _modes(e.spec.get("match"))]
            scope = defaults
            for e in mine:
                if e.names():
                    scope = [(n, (e.resource, p)) for n, p in e.names()]
            in_scope = {n for n, _ in scope}
            enabled = {} if entries else dict(defaults)
            parent = defaults
            for e in mine:
                names = [(n, (e.resource, p)) for n, p in e.names()] or parent
                parent = names
                for name, ref in names:
                    if name not in in_scope:
                        continue
                    if e.spec.get("disabled") is True:
                        enabled.pop(name, None)
                    else:
                        enabled.setdefault(name, ref)
            logs = []
            for name, ref in enabled.items():
                p, found = provider_for(self.mc, name, "accessLogging", ref, self.registry)
                self.findings += found
                if p is not None:
                    logs.append(mc.provider_access_log(self.mc, p))
            out[DIRECTIONS[m]] = logs
        return out

    # -- xDS pieces

    def http_filters(self, direction: str, middle: list, router: dict) -> list:
        """An http_connection_manager's filters in Istio's order: metadata exchange, then
        `middle` (RBAC, fault), then istio.stats, then the router."""
        out = [exchange_filter(direction)] + list(middle)
        if self.stats[direction]:
            out.append(stats_filter())
        return out + [router]

    def network_filters(self, direction: str, middle: list) -> list:
        """A TCP chain's filters before tcp_proxy: `middle` (RBAC), then istio.stats."""
        return list(middle) + ([stats_filter()] if self.stats[direction] else [])

    def hcm_fields(self, direction: str) -> dict:
        out = {}
        if self.tracing[direction] is not None:
            out["tracing"] = self.tracing[direction]
        if self.access_logs[direction]:
            out["access_log"] = list(self.access_logs[direction])
        return out

    def tcp_proxy_fields(self, direction: str) -> dict:
        return {"access_log": list(self.access_logs[direction])} if self.access_logs[direction] else {}


# ---- meshcore check: mesh-wide ---------------------------------------------------------------------------


def telemetry_findings(mesh, registry: reg.Registry, security) -> list[fnd.Finding]:
    """What `meshcore check` says about the Telemetry resources and the MeshConfig,
    independent of any one workload."""
    out = []
    root = security.root_namespace
    for r in mesh.of("ConfigMap"):
        if r.name == mc.NAME and r.namespace != root:
            out.append(r.finding(fnd.WARNING, fnd.IGNORED, "metadata.namespace",
                                 f"meshcore reads the MeshConfig from ConfigMap {root}/{mc.NAME} (the root "
                                 "namespace, --root-namespace): this one is ignored"))
    m = mc.MeshConfig.of(mesh, root)
    for key, ours, where in (("rootNamespace", root, "--root-namespace"),
                             ("trustDomain", security.trust_domain, "the CA's or --trust-domain")):
        theirs = m.spec.get(key)
        if theirs is not None and theirs != ours:
            out.append(m.finding(fnd.WARNING, fnd.IGNORED, f"{mc.ROOT}.{key}",
                                 f'"{theirs}" is not meshcore\'s {key} ("{ours}", from {where}): ignored'))
    telemetries = mesh.of("Telemetry")
    for t in telemetries:
        sel = _selector(t)
        if sel and not _targeted(t):
            selected = [w for w in registry.workloads if w.namespace == t.namespace and reg.label_match(sel, w.labels)]
            if not selected:
                out.append(t.finding(fnd.WARNING, fnd.NO_WORKLOAD, "spec.selector",
                                     f"selects no WorkloadEntry in namespace {t.namespace}: this Telemetry applies "
                                     "to nothing"))
            for w in selected:
                first = next(x for x in telemetries if x.namespace == w.namespace and _selector(x)
                             and not _targeted(x) and reg.label_match(_selector(x), w.labels))
                if first is not t:
                    out.append(t.finding(fnd.WARNING, fnd.DUPLICATE, "spec.selector",
                                         f"{w.resource.label} is selected by {first.label} ({first.file}) already: "
                                         "this one does not apply to it (Istio uses one)"))
        elif not sel and not _targeted(t):
            same = _namespace_wide(telemetries, t.namespace)
            if same[0] is not t:
                scope = "mesh-wide" if t.namespace == root else f"namespace {t.namespace}"
                out.append(t.finding(fnd.WARNING, fnd.DUPLICATE, "metadata.name",
                                     f"{same[0].label} ({same[0].file}) is the {scope} Telemetry already: this one "
                                     "is not used (Istio would use the oldest)"))
    refs = []
    for purpose in ("tracing", "accessLogging", "metrics"):
        for i, name in enumerate((m.spec.get("defaultProviders") or {}).get(purpose) or []):
            refs.append((purpose, name, (None, m.default_provider_path(purpose, i))))
        for t in telemetries:
            for e in _entries([t], purpose):
                refs += [(purpose, n, (t, p)) for n, p in e.names()[:1 if purpose == "tracing" else None]]
    for purpose, name, ref in refs:
        out += provider_for(m, name, purpose, ref, registry)[1]
    return out

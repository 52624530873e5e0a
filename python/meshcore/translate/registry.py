"""The service registry a mesh directory describes, seen from one workload.

Services come from Kubernetes `v1 Service` resources (host
`<name>.<namespace>.svc.cluster.local`, endpoints = the WorkloadEntries of
its namespace whose labels include the Service's selector) and from
`ServiceEntry` resources with `resolution: STATIC` (one service per host,
endpoints inline or chosen by workloadSelector). A workload (the proxy
node) is a WorkloadEntry; its namespace and labels decide which resources
apply to it (exportTo, workloadSelector, sourceLabels).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import findings as fnd
from . import hosts

HTTP_PROTOCOLS = {"http": "HTTP", "http2": "HTTP2", "grpc": "GRPC", "grpc-web": "GRPC-Web", "h2c": "HTTP2"}
H2_PROTOCOLS = ("HTTP2", "GRPC", "GRPC-Web")  # Istio's Protocol.IsHTTP2(): the cluster speaks HTTP/2
TCP_PROTOCOLS = {"tcp", "tls", "https", "mongo", "mysql", "redis", "mqtt"}
EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo"


@dataclass(frozen=True)
class Port:
    name: str
    number: int
    protocol: str  # "HTTP", "HTTP2", "GRPC", "GRPC-Web", "TCP" or "" (undeclared: served as TCP)
    target: object = None  # int, str (a named port) or None

    @property
    def is_http(self) -> bool:
        return self.protocol in HTTP_PROTOCOLS.values()


@dataclass
class Endpoint:
    address: str
    ports: dict  # port name -> port
    labels: dict
    weight: int = 0
    resource: object = None  # the WorkloadEntry or ServiceEntry
    service_account: str = ""
    namespace: str = ""

    @property
    def workload_entry(self):
        """The WorkloadEntry behind this endpoint, or None (an inline ServiceEntry endpoint)."""
        r = self.resource
        return r if r is not None and r.kind == "WorkloadEntry" else None

    def port_for(self, port: Port) -> int:
        """The endpoint's port for a service port: its port of that name, else
        the targetPort (a number, or the name of one of its ports), else the port."""
        if port.name in self.ports:
            return self.ports[port.name]
        if isinstance(port.target, int):
            return port.target
        if isinstance(port.target, str) and port.target in self.ports:
            return self.ports[port.target]
        return port.number


@dataclass
class Service:
    host: str
    namespace: str
    resource: object
    ports: list
    endpoints: list = field(default_factory=list)
    export_to: tuple = ()

    @property
    def name(self) -> str:
        return self.host.split(".", 1)[0]

    def port(self, number: int) -> Port | None:
        return next((p for p in self.ports if p.number == number), None)


@dataclass
class Workload:
    namespace: str
    name: str
    labels: dict
    address: str
    service_account: str = ""
    resource: object = None

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"


def label_match(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def visible(export_to, resource_namespace: str, proxy_namespace: str) -> bool:
    """Istio's exportTo: empty or "*" = everywhere, "." = its own namespace, "~" = nowhere."""
    if not export_to:
        return True
    for e in export_to:
        if e == "*" or e == proxy_namespace or (e == "." and resource_namespace == proxy_namespace):
            return True
    return False


def port_protocol(name: str, app_protocol: str | None = None, declared: str | None = None) -> str:
    """Istio's protocol selection: ServiceEntry protocol, else Kubernetes
    appProtocol, else the port name's prefix ("http-web" -> HTTP)."""
    for text in (declared, app_protocol):
        if text:
            key = text.lower()
            if key.startswith("kubernetes.io/"):
                key = {"kubernetes.io/h2c": "h2c", "kubernetes.io/ws": "http",
                       "kubernetes.io/wss": "tls"}.get(key, "")
            if key in HTTP_PROTOCOLS:
                return HTTP_PROTOCOLS[key]
            if key in TCP_PROTOCOLS:
                return "TCP"
            if key == "udp":
                return "UDP"
            return ""
    lower = (name or "").lower()
    if lower == "grpc-web" or lower.startswith("grpc-web-"):
        return "GRPC-Web"
    prefix = lower.split("-", 1)[0]
    if prefix in HTTP_PROTOCOLS:
        return HTTP_PROTOCOLS[prefix]
    if prefix in TCP_PROTOCOLS or prefix == "udp":
        return "TCP" if prefix != "udp" else "UDP"
    return ""


class Registry:
    """Services and workloads of a Mesh, with the findings building them made."""

    def __init__(self, mesh):
        self.mesh = mesh
        self.findings: list[fnd.Finding] = []
        self.workloads = [_workload(r) for r in mesh.of("WorkloadEntry")]
        self.services: list[Service] = []
        self.by_host: dict[str, Service] = {}
        self.not_served: dict[str, object] = {}  # host -> ServiceEntry with a resolution meshcore lacks
        for r in mesh.of("Service"):
            self._add(self._k8s_service(r))
        for r in mesh.of("ServiceEntry"):
            for svc in self._service_entry(r):
                self._add(svc)

    # -- building

    def _add(self, svc):
        if svc is None:
            return
        first = self.by_host.get(svc.host)
        if first is not None:
            self.findings.append(svc.resource.finding(
                fnd.WARNING, fnd.DUPLICATE_HOST, "",
                f"host {svc.host} is already defined by {first.resource.label} ({first.resource.file}); "
                "this definition is ignored"))
            return
        self.by_host[svc.host] = svc
        self.services.append(svc)

    def _ports(self, r, items, se: bool):
        out = []
        for i, p in enumerate(items or []):
            name = p.get("name") or ""
            number = p.get("number") if se else p.get("port")
            if se:
                protocol = port_protocol(name, declared=p.get("protocol"))
                target = p.get("targetPort")
            else:
                k8s_protocol = p.get("protocol") or "TCP"
                if k8s_protocol != "TCP":
                    self.findings.append(r.finding(fnd.WARNING, fnd.IGNORED, f"spec.ports[{i}].protocol",
                                                   f"{k8s_protocol} ports are not proxied: port {number} skipped"))
                    continue
                protocol = port_protocol(name, p.get("appProtocol"))
                target = p.get("targetPort")
            where = f"spec.ports[{i}]"
            if protocol == "UDP":
                self.findings.append(r.finding(fnd.WARNING, fnd.IGNORED, where,
                                               f"UDP is not proxied: port {number} skipped"))
                continue
            if protocol == "":
                self.findings.append(r.finding(
                    fnd.WARNING, fnd.IGNORED, where,
                    f'port {number} ("{name}") declares no protocol; meshcore does not sniff protocols and '
                    'proxies it as TCP (name it http-... or set appProtocol/protocol)'))
            out.append(Port(name, number, protocol or "TCP", target))
        return out

    def _k8s_service(self, r):
        spec = r.spec
        if spec.get("type") == "ExternalName":
            return None
        host = f"{r.name}.{r.namespace}.svc.{hosts.DOMAIN}"
        export = r.annotations.get(EXPORT_TO_ANNOTATION)
        export_to = tuple(x.strip() for x in export.split(",")) if isinstance(export, str) else ()
        svc = Service(host, r.namespace, r, self._ports(r, spec.get("ports"), se=False), export_to=export_to)
        selector = spec.get("selector")
        if selector:
            svc.endpoints = [w for w in self._entries(r.namespace, selector)]
        return svc

    def _entries(self, namespace, selector):
        out = []
        for w in self.workloads:
            if w.namespace == namespace and label_match(selector, w.labels) and w.address and hosts.is_ip(w.address):
                spec = w.resource.spec
                out.append(Endpoint(w.address, dict(spec.get("ports") or {}), w.labels,
                                    spec.get("weight") or 0, w.resource, w.service_account, w.namespace))
        return out

    def _service_entry(self, r):
        spec = r.spec
        resolution = spec.get("resolution") or "NONE"
        if resolution != "STATIC":
            for h in spec.get("hosts") or []:
                self.not_served[hosts.fqdn(h, r.namespace)] = r
            return []
        ports = self._ports(r, spec.get("ports"), se=True)
        if spec.get("workloadSelector") is not None:
            endpoints = self._entries(r.namespace, (spec["workloadSelector"] or {}).get("labels") or {})
        else:
            endpoints = []
            for ep in spec.get("endpoints") or []:
                address = ep.get("address") or ""
                if not hosts.is_ip(address):
                    continue  # unix:// (reported by validation)
                endpoints.append(Endpoint(address, dict(ep.get("ports") or {}), ep.get("labels") or {},
                                          ep.get("weight") or 0, r, ep.get("serviceAccount") or "", r.namespace))
        out = []
        for h in spec.get("hosts") or []:
            host = hosts.fqdn(h, r.namespace)
            if hosts.is_wildcard(host):
                self.findings.append(r.finding(fnd.WARNING, fnd.IGNORED, "spec.hosts",
                                               f"wildcard host {h}: meshcore cannot serve wildcard hosts"))
                continue
            out.append(Service(host, r.namespace, r, ports, endpoints, tuple(spec.get("exportTo") or ())))
        return out

    # -- queries

    def service(self, host: str) -> Service | None:
        return self.by_host.get(host)

    def workload(self, ref: str) -> Workload | None:
        namespace, _, name = ref.rpartition("/")
        namespace = namespace or "default"
        return next((w for w in self.workloads if w.namespace == namespace and w.name == name), None)

    def services_of(self, workload: Workload) -> list[tuple[Service, Endpoint]]:
        """The services whose endpoints include this workload, with its endpoint in each."""
        out = []
        for s in self.services:
            for e in s.endpoints:
                if e.resource is workload.resource:
                    out.append((s, e))
                    break
        return out

    def visible_services(self, proxy: Workload) -> list[Service]:
        return [s for s in self.services if visible(s.export_to, s.namespace, proxy.namespace)]

    def destination_rules(self, host: str, proxy: Workload | None):
        """The DestinationRules that apply to host, best first (Istio: the most
        specific host; then the proxy's namespace, the service's, the rest)."""
        svc = self.by_host.get(host)
        candidates = []
        for order, r in enumerate(self.mesh.of("DestinationRule")):
            pattern = hosts.fqdn(r.spec.get("host", ""), r.namespace)
            if not hosts.matches(host, pattern):
                continue
            if proxy is not None:
                if not visible(r.spec.get("exportTo"), r.namespace, proxy.namespace):
                    continue
                selector = (r.spec.get("workloadSelector") or {}).get("matchLabels")
                if selector is not None and (r.namespace != proxy.namespace or not label_match(selector, proxy.labels)):
                    continue
            if proxy is not None and r.namespace == proxy.namespace:
                rank = 0
            elif svc is not None and r.namespace == svc.namespace:
                rank = 1
            else:
                rank = 2
            candidates.append((-hosts.specificity(pattern), rank, order, r))
        return [r for *_, r in sorted(candidates, key=lambda c: c[:3])]

    def destination_rule(self, host: str, proxy: Workload | None):
        rules = self.destination_rules(host, proxy)
        return rules[0] if rules else None


def _workload(r) -> Workload:
    spec = r.spec
    return Workload(r.namespace, r.name, dict(spec.get("labels") or {}), spec.get("address") or "",
                    spec.get("serviceAccount") or "", r)


def subset_of(dr, name: str):
    for s in (dr.spec.get("subsets") or []) if dr is not None else []:
        if s.get("name") == name:
            return s
    return None


def subset_endpoints(svc: Service, subset: dict | None) -> list[Endpoint]:
    if subset is None:
        return list(svc.endpoints)
    return [e for e in svc.endpoints if label_match(subset.get("labels") or {}, e.labels)]

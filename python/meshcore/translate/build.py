"""The model -> one workload's sidecar config: an Envoy v3 Bootstrap of xDS messages.

Per service port visible to the workload, an outbound listener on
<outbound address>:<port>: HTTP ports (Istio's protocol selection) get an
http_connection_manager whose route configuration (named after the port)
has one virtual host per service on that port, TCP ports a tcp_proxy.
Clusters `outbound|<port>|<subset>|<host>` for every service port and
DestinationRule subset. Everything produced is in meshcore's xDS subset
(config/schema.py) and is checked with validate_bootstrap.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from envoy.config.bootstrap.v3 import bootstrap_pb2
from google.protobuf import json_format

from meshcore.config import validate_bootstrap
from meshcore.xds_types import FAULT_FILTER_NAME, HCM, HTTP_FAULT, ROUTER, TCP_PROXY, type_url

from ..errors import ConfigError
from . import authz, hosts
from . import clusters as cl
from . import findings as fnd
from . import registry as reg
from . import security as sec
from . import telemetry as tm
from .routes import VirtualServiceRoutes, default_route, tcp_destinations
from .rules import MESH_GATEWAY

DEFAULT_OUTBOUND_ADDRESS = "127.0.0.1"


@dataclass
class Translation:
    """A workload's Bootstrap and what translating found."""

    bootstrap: bootstrap_pb2.Bootstrap
    findings: list = field(default_factory=list)
    workload: reg.Workload | None = None
    uses_certificate: bool = False  # the config refers to the workload's certificate (mTLS)
    # principal (SPIFFE ID) -> node metadata of the WorkloadEntries with that identity: the
    # labels of a peer that sent none (istio_metrics.IstioMetrics.peers)
    peers: dict = field(default_factory=dict)

    @property
    def errors(self) -> list:
        return fnd.errors(self.findings)


def applies_to_sidecars(vs) -> bool:
    gateways = vs.spec.get("gateways") or []
    return not gateways or MESH_GATEWAY in gateways


def translate(mesh, workload: str, outbound_address: str = DEFAULT_OUTBOUND_ADDRESS,
              registry: reg.Registry | None = None, security: sec.Security | None = None) -> Translation:
    """The sidecar config of `workload` ("namespace/name", or "name" in namespace default).
    security: trust domain, root namespace and the sidecar's certificates (security.py)."""
    return _Translator(mesh, registry or reg.Registry(mesh), outbound_address, security or sec.Security()).run(workload)


class _Translator:
    def __init__(self, mesh, registry, address, security):
        self.mesh, self.registry, self.address, self.sec = mesh, registry, address, security
        self.pas = mesh.of("PeerAuthentication")
        self.uses_certificate = False
        self.findings: list[fnd.Finding] = list(registry.findings)
        self.clusters: dict[str, dict] = {}
        self.used: dict[str, tuple] = {}  # cluster name -> (resource, path) of its first use
        self.proxy: reg.Workload | None = None
        self.tel: tm.WorkloadTelemetry | None = None
        self._dr_cache: dict = {}

    # -- the context routes.py uses

    def note(self, resource, severity, code, path, text):
        self.findings.append(resource.finding(severity, code, path, text))

    def use_cluster(self, name, resource, path):
        self.used.setdefault(name, (resource, path))

    def destination_rule(self, host):
        if host not in self._dr_cache:
            self._dr_cache[host] = self.registry.destination_rule(host, self.proxy)
        return self._dr_cache[host]

    # -- the whole

    def run(self, workload_ref: str) -> Translation:
        self.proxy = self.registry.workload(workload_ref)
        if self.proxy is None:
            ns, _, name = workload_ref.rpartition("/")
            self.findings.append(fnd.Finding(fnd.ERROR, fnd.UNKNOWN_WORKLOAD, "", "", "",
                                             f"no WorkloadEntry {ns or 'default'}/{name} in {self.mesh.source}"))
            return Translation(bootstrap_pb2.Bootstrap(), fnd.unique(self.findings), None)
        services = self.registry.visible_services(self.proxy)
        for svc in services:
            self._service_clusters(svc)
        self.tel = tm.WorkloadTelemetry(self.mesh, self.registry, self.proxy, self.sec, self.clusters.get)
        self.findings += self.tel.findings
        virtual_services = [vs for vs in self.mesh.of("VirtualService") if applies_to_sidecars(vs)
                            and reg.visible(vs.spec.get("exportTo"), vs.namespace, self.proxy.namespace)]
        by_port: dict[int, list] = {}
        for svc in services:
            for port in svc.ports:
                by_port.setdefault(port.number, []).append((svc, port))
        listeners = []
        for number in sorted(by_port):
            listener = self._listener(number, by_port[number], virtual_services)
            if listener:
                listeners.append(listener)
        self._blackholes(services)
        listeners += self._inbound()
        static = {"listeners": listeners, "clusters": list(self.clusters.values())}
        if self.uses_certificate:
            if self.sec.secrets is not None:
                static["secrets"] = [dict(s) for s in self.sec.secrets]
            elif self.sec.require_certificates:
                self.findings.append(self.proxy.resource.finding(
                    fnd.ERROR, fnd.NEEDS_CERTIFICATE, "",
                    "this sidecar needs a certificate for mTLS (an inbound port in STRICT or PERMISSIVE mode, or a "
                    "destination with a sidecar): give the proxy one (--ca-dir), or set PeerAuthentication / "
                    "DestinationRule tls mode DISABLE"))
        doc = {
            "node": {"id": f"sidecar~{self.proxy.address}~{self.proxy.name}.{self.proxy.namespace}"
                           f"~{self.proxy.namespace}.svc.{hosts.DOMAIN}",
                     "cluster": tm.service_cluster(self.proxy),
                     "metadata": tm.node_metadata(self.proxy, self.sec.trust_domain)},
            "static_resources": static,
        }
        bootstrap = bootstrap_pb2.Bootstrap()
        json_format.ParseDict(doc, bootstrap)
        try:
            validate_bootstrap(bootstrap, f"<translation of {self.proxy.id}>")
        except ConfigError as e:  # a translation meshcore's core cannot take: say so, never apply it
            self.findings.append(fnd.Finding(fnd.ERROR, fnd.UNSUPPORTED, "", "", "",
                                             f"the translated config is outside meshcore's xDS subset: {e}"))
        return Translation(bootstrap, fnd.unique(self.findings), self.proxy, self.uses_certificate,
                           tm.peers(self.registry.workloads, self.sec.trust_domain))

    # -- clusters

    def _cluster(self, name, svc, port, endpoints, policy, subset, dr):
        tls = policy.get("tls")
        resource = dr if tls is not None and dr is not None else svc.resource
        path = "spec.trafficPolicy.tls" if resource is dr else "spec.ports"

        def note(severity, code, text):
            self.note(resource, severity, code, path, text)

        plan = sec.outbound_plan(svc, port, endpoints, tls, subset, self.pas, self.sec, note)
        cluster = cl.build_cluster(name, svc, port, plan.endpoints, policy, plan.port_of)
        cluster["metadata"] = tm.service_metadata([svc])
        if plan.transport_socket is not None:
            cluster["transport_socket"] = plan.transport_socket
        self.uses_certificate |= plan.uses_certificate
        return cluster

    def _service_clusters(self, svc):
        dr = self.destination_rule(svc.host)
        for port in svc.ports:
            name = cl.cluster_name(port.number, "", svc.host)
            policy = cl.merged_policy(dr, port.number, None)
            self.clusters[name] = self._cluster(name, svc, port, svc.endpoints, policy, "", dr)
            for subset in (dr.spec.get("subsets") or []) if dr is not None else []:
                sname = cl.cluster_name(port.number, subset["name"], svc.host)
                self.clusters[sname] = self._cluster(sname, svc, port, reg.subset_endpoints(svc, subset),
                                                     cl.merged_policy(dr, port.number, subset), subset["name"], dr)

    def _blackholes(self, services):
        visible = {s.host for s in services}
        for name, (resource, path) in self.used.items():
            if name in self.clusters:
                continue
            host = name.split("|", 3)[3]
            if host in self.registry.by_host and host not in visible:
                self.note(resource, fnd.WARNING, fnd.UNKNOWN_HOST, path,
                          f"{host} is not exported to namespace {self.proxy.namespace}: requests get 503")
            self.clusters[name] = cl.blackhole_cluster(name)

    # -- inbound: the workload's own ports, mTLS and authorization

    def _inbound(self):
        ports = sec.inbound_ports_of(self.registry, self.proxy, self.pas, self.sec,
                                     lambda r, sev, code, path, text: self.note(r, sev, code, path, text))
        policies = authz.applicable(self.mesh.of("AuthorizationPolicy"), self.proxy, self.sec.root_namespace)
        if not ports:
            for p in policies:
                self.note(p, fnd.WARNING, fnd.NO_SIDECAR, "",
                          f"not enforced for {self.proxy.resource.label}: it has no sidecar inbound port "
                          f"({sec.INBOUND_PORTS_ANNOTATION})")
            return []
        bundle = authz.TrustDomainBundle.of(self.sec.trust_domain, self.sec.trust_domain_aliases)
        http_filters, _ = authz.build_filters(policies, for_tcp=False, bundle=bundle,
                                              root_namespace=self.sec.root_namespace)
        tcp_filters, _ = authz.build_filters(policies, for_tcp=True, bundle=bundle,
                                             root_namespace=self.sec.root_namespace)
        out = []
        for ip in ports:
            mapped = authz.map_destination_ports(http_filters if ip.is_http else tcp_filters, ip.app_port,
                                                 ip.listener_port)
            listener, cluster = sec.inbound_listener(self.proxy.address, ip, mapped if ip.is_http else [],
                                                     mapped if not ip.is_http else [], self.tel)
            out.append(listener)
            self.clusters[cluster["name"]] = cluster
            if ip.mode != "DISABLE":
                self.uses_certificate = True
        return out

    # -- listeners

    def _claims(self, number, entries, virtual_services):
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
                if not found and not hosts.is_wildcard(pattern) and self.registry.service(pattern) is None:
                    unmatched.append((vs, pattern))
        return {h: vs for h, (_, vs) in best.items()}, unmatched

    def _listener(self, number, entries, virtual_services):
        http = [(s, p) for s, p in entries if p.is_http]
        tcp = [(s, p) for s, p in entries if not p.is_http]
        if http and tcp:
            self._conflict(number, tcp, f"port {number} is HTTP for {_names(http)} and TCP for {_names(tcp)}; "
                                        "meshcore has one outbound listener per port: the TCP services are "
                                        "not reachable from this workload")
        if http:
            return self._http_listener(number, http, virtual_services)
        if len(tcp) > 1:
            self._conflict(number, tcp[1:], f"TCP port {number} is used by {_names(tcp)}; meshcore has one "
                                            f"outbound listener per port: it goes to {tcp[0][0].host} only")
        return self._tcp_listener(number, tcp[0], virtual_services)

    def _conflict(self, number, entries, text):
        for svc, _ in entries:
            self.findings.append(svc.resource.finding(fnd.ERROR, fnd.PORT_CONFLICT, "spec.ports", text))

    def _address(self, number):
        return {"socket_address": {"address": self.address, "port_value": number}}

    def _http_listener(self, number, entries, virtual_services):
        claims, unmatched = self._claims(number, entries, virtual_services)
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
            routes = VirtualServiceRoutes(vs, number, self).http_routes()
            if not routes:
                continue  # no route for this port: its services keep their default route (as Istio)
            for svc, _ in mine:
                add_vhost(f"{svc.host}:{number}", _domains(svc.host, number, self.proxy.namespace), routes)
                routed.add(svc.host)
            for h in extra:  # Istio serves VirtualService hosts outside the registry on port 80 only
                add_vhost(f"{h}:{number}", [h, f"{h}:{number}"], routes)
        for svc, _ in entries:
            if svc.host in routed:
                continue
            name = cl.cluster_name(number, "", svc.host)
            dr = self.destination_rule(svc.host)
            ch = None
            if dr is not None:
                top = dr.spec.get("trafficPolicy") or {}
                ch = cl.consistent_hash(top)
                for pls in top.get("portLevelSettings") or []:
                    if (pls.get("port") or {}).get("number") == number and cl.consistent_hash(pls):
                        ch = cl.consistent_hash(pls)
            add_vhost(f"{svc.host}:{number}", _domains(svc.host, number, self.proxy.namespace),
                      [default_route(name, cl.hash_policy(ch))])
        filters = []
        if any(FAULT_FILTER_NAME in r.get("typed_per_filter_config", {}) for v in vhosts for r in v["routes"]):
            filters.append({"name": FAULT_FILTER_NAME, "typed_config": {"@type": type_url(HTTP_FAULT)}})
        router = {"name": "envoy.filters.http.router", "typed_config": {"@type": type_url(ROUTER)}}
        hcm = {
            "@type": type_url(HCM),
            "stat_prefix": f"outbound_{self.address}_{number}",
            "codec_type": "AUTO",
            "route_config": {"name": str(number), "virtual_hosts": vhosts},
            "http_filters": self.tel.http_filters(tm.OUTBOUND, filters, router),
            **self.tel.hcm_fields(tm.OUTBOUND),
        }
        return {"name": f"{self.address}_{number}", "address": self._address(number),
                "traffic_direction": tm.OUTBOUND,
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                "typed_config": hcm}]}]}

    def _tcp_listener(self, number, entry, virtual_services):
        svc, port = entry
        claims, _ = self._claims(number, [entry], virtual_services)
        default = cl.cluster_name(number, "", svc.host)
        dests = None
        vs = claims.get(svc.host)
        if vs is not None:
            dests = tcp_destinations(vs, number, self)
        tp = {"@type": type_url(TCP_PROXY), "stat_prefix": default}
        if dests and len(dests) > 1:
            tp["weighted_clusters"] = {"clusters": [{"name": n, "weight": w} for n, w in dests]}
        else:
            tp["cluster"] = dests[0][0] if dests else default
        idle = cl.tcp_idle_timeout(cl.merged_policy(self.destination_rule(svc.host), number, None))
        if idle is not None:
            tp["idle_timeout"] = idle
        tp.update(self.tel.tcp_proxy_fields(tm.OUTBOUND))
        filters = self.tel.network_filters(tm.OUTBOUND, []) + [
            {"name": "envoy.filters.network.tcp_proxy", "typed_config": tp}]
        return {"name": f"{self.address}_{number}", "address": self._address(number),
                "traffic_direction": tm.OUTBOUND, "filter_chains": [{"filters": filters}]}


def _names(entries):
    return ", ".join(svc.host for svc, _ in entries)


def _domains(host, number, proxy_namespace):
    names = hosts.alt_names(host, proxy_namespace)
    return [d for n in names for d in (n, f"{n}:{number}")]

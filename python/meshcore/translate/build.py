"""The model -> one workload's sidecar config: an Envoy v3 Bootstrap of xDS messages.

Per service port visible to the workload, an outbound listener on
<outbound address>:<port>: HTTP ports (Istio's protocol selection) get an
http_connection_manager whose route configuration (named after the port)
has one virtual host per service on that port, TCP ports a tcp_proxy.
Clusters `outbound|<port>|<subset>|<host>` for every service port and
DestinationRule subset. Everything produced is in meshcore's xDS subset
(config/schema.py) and is checked with validate_bootstrap. This module
decides which listeners and clusters a workload gets; listeners.py builds
every listener (outbound and inbound).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from envoy.config.bootstrap.v3 import bootstrap_pb2
from google.protobuf import json_format

from meshcore.config import validate_bootstrap

from ..errors import ConfigError
from . import authz, hosts, listeners
from . import clusters as cl
from . import findings as fnd
from . import meshconfig as mc
from . import registry as reg
from . import security as sec
from . import telemetry as tm
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
        self.h2_upgrade = mc.MeshConfig.of(mesh, security.root_namespace).h2_upgrade  # meshConfig.h2UpgradePolicy

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
        cluster = cl.build_cluster(name, svc, port, plan.endpoints, policy, plan.port_of,
                                   mesh_upgrade=self.h2_upgrade)
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
            listener, cluster = listeners.inbound_listener(self.proxy.address, ip, mapped if ip.is_http else [],
                                                     mapped if not ip.is_http else [], self.tel)
            out.append(listener)
            self.clusters[cluster["name"]] = cluster
            if ip.mode != "DISABLE":
                self.uses_certificate = True
        return out

    # -- listeners

    def _listener(self, number, entries, virtual_services):
        http = [(s, p) for s, p in entries if p.is_http]
        tcp = [(s, p) for s, p in entries if not p.is_http]
        if http and tcp:
            self._conflict(number, tcp, f"port {number} is HTTP for {_names(http)} and TCP for {_names(tcp)}; "
                                        "meshcore has one outbound listener per port: the TCP services are "
                                        "not reachable from this workload")
        if http:
            return listeners.http_listener(self, number, http, virtual_services)
        if len(tcp) > 1:
            self._conflict(number, tcp[1:], f"TCP port {number} is used by {_names(tcp)}; meshcore has one "
                                            f"outbound listener per port: it goes to {tcp[0][0].host} only")
        return listeners.tcp_listener(self, number, tcp[0], virtual_services)

    def _conflict(self, number, entries, text):
        for svc, _ in entries:
            self.findings.append(svc.resource.finding(fnd.ERROR, fnd.PORT_CONFLICT, "spec.ports", text))


def _names(entries):
    return ", ".join(svc.host for svc, _ in entries)

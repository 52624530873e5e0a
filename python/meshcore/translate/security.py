"""Workload identity in the translation: which workloads have a sidecar, the
mTLS mode of each inbound port (PeerAuthentication), the inbound listeners,
and the transport socket of each outbound cluster (DestinationRule `tls`,
auto mTLS). docs/security.md is the user's page for all of it.

Explicit ports, no iptables: a workload has a sidecar for a port when its
WorkloadEntry carries the annotation

    sidecar.meshcore.dev/inbound-ports: "http=28081,tcp=28082"

(port name = the sidecar's inbound port, bound on the WorkloadEntry's
address). The application keeps listening on the WorkloadEntry's port, on
127.0.0.1; the inbound listener forwards there in plaintext. Peers dial
address:inbound-port when the destination has a sidecar for the port, else
address:app-port directly.

Certificates are never in the mesh directory: the translation refers to two
static Secrets by name, as Istio's SDS does, `default` (this workload's
certificate and key) and `ROOTCA` (the trust bundle). Whoever runs the
sidecar (certs.py) supplies them in `Security.secrets`.
"""
from __future__ import annotations

import os
import ssl
from dataclasses import dataclass

from meshcore.identity import CERT_SECRET, DEFAULT_TRUST_DOMAIN, ROOT_SECRET, spiffe_id
from meshcore.xds_types import DOWNSTREAM_TLS, UPSTREAM_TLS, type_url

from . import findings as fnd
from . import registry as reg

INBOUND_PORTS_ANNOTATION = "sidecar.meshcore.dev/inbound-ports"
ROOT_NAMESPACE = "istio-system"  # Istio's default meshConfig.rootNamespace
MODES = ("STRICT", "PERMISSIVE", "DISABLE")
DEFAULT_MODE = "PERMISSIVE"  # Istio's default when nothing is set
TLS_TRANSPORT = "envoy.transport_sockets.tls"
MIN_TLS = {"tls_minimum_protocol_version": "TLSv1_2"}


@dataclass(frozen=True)
class Security:
    """Mesh-wide settings (Istio's meshConfig) and this sidecar's certificates.

    secrets: Envoy Secret dicts named CERT_SECRET and ROOT_SECRET, or None
    when the caller has none (`meshcore check`); require_certificates: a
    translation that needs them without having them is an error (the proxy)."""

    trust_domain: str = DEFAULT_TRUST_DOMAIN
    trust_domain_aliases: tuple = ()
    root_namespace: str = ROOT_NAMESPACE
    secrets: tuple | None = None
    require_certificates: bool = False


def endpoint_identity(e: reg.Endpoint, trust_domain: str) -> str | None:
    sa = e.service_account
    if sa.startswith("spiffe://"):
        return sa
    if e.workload_entry is None and not sa:
        return None  # an inline ServiceEntry endpoint without an identity
    return spiffe_id(trust_domain, e.namespace or (e.resource.namespace if e.resource else "default"), sa)


# ---- the annotation ---------------------------------------------------------------------------


def parse_inbound_ports(text) -> tuple[dict, list]:
    """"http=28081,tcp=28082" -> ({"http": 28081, "tcp": 28082}, [problems])."""
    ports, problems = {}, []
    if not isinstance(text, str):
        return ports, [f"expected a string such as \"http=28081,tcp=28082\", got {text!r}"]
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        name, sep, number = item.partition("=")
        name, number = name.strip(), number.strip()
        if not sep or not name or not number.isdigit() or not 1 <= int(number) <= 65535:
            problems.append(f'"{item}": expected PORT_NAME=PORT (1..65535)')
            continue
        if name in ports:
            problems.append(f'port name "{name}" is given twice')
            continue
        ports[name] = int(number)
    return ports, problems


def inbound_ports(resource) -> dict:
    """The sidecar's inbound ports of a WorkloadEntry (empty: no sidecar)."""
    if resource is None or resource.kind != "WorkloadEntry":
        return {}
    text = resource.annotations.get(INBOUND_PORTS_ANNOTATION)
    return parse_inbound_ports(text)[0] if text is not None else {}


def port_name_for(e: reg.Endpoint, port: reg.Port) -> str:
    """The name under which an endpoint serves a service port (what the annotation is keyed by)."""
    if port.name in e.ports:
        return port.name
    if isinstance(port.target, str) and port.target in e.ports:
        return port.target
    return port.name


def sidecar_port(e: reg.Endpoint, port: reg.Port) -> int | None:
    """The sidecar's inbound port of an endpoint for a service port, or None (no sidecar there)."""
    return inbound_ports(e.workload_entry).get(port_name_for(e, port))


# ---- PeerAuthentication ------------------------------------------------------------------------


def _selector(pa) -> dict:
    return (pa.spec.get("selector") or {}).get("matchLabels") or {}


def _mode_of(mtls) -> str | None:
    mode = (mtls or {}).get("mode")
    return mode if mode in MODES else None  # None / UNSET: inherit


def peer_authentication_chain(pas, workload: reg.Workload, root_namespace: str):
    """(mesh, namespace, workload) PeerAuthentication that apply, each or None
    (the first in file order where Istio would take the oldest)."""
    mesh = next((p for p in pas if p.namespace == root_namespace and not _selector(p)), None)
    ns = next((p for p in pas if p.namespace == workload.namespace and not _selector(p)), None)
    wl = next((p for p in pas if p.namespace == workload.namespace and _selector(p)
               and reg.label_match(_selector(p), workload.labels)), None)
    return mesh, ns, wl


def port_level_mode(pa, app_port: int) -> str | None:
    for key, mtls in (pa.spec.get("portLevelMtls") or {}).items():
        if str(key) == str(app_port):
            return _mode_of(mtls)
    return None


def peer_mode(pas, workload: reg.Workload, app_port: int, root_namespace: str) -> str:
    """The effective mTLS mode of a workload's port, as Istio composes it: mesh,
    then namespace, then workload, then the workload policy's port level; UNSET
    inherits; PERMISSIVE when nothing is set."""
    mesh, ns, wl = peer_authentication_chain(pas, workload, root_namespace)
    mode = DEFAULT_MODE
    for pa in (mesh, ns, wl):
        if pa is not None:
            mode = _mode_of(pa.spec.get("mtls")) or mode
    if wl is not None:
        mode = port_level_mode(wl, app_port) or mode
    return mode


# ---- TLS contexts ---------------------------------------------------------------------------------


def _sds(name):
    return {"name": name}


# istiod's BuildInboundTLS: an HTTP chain offers h2 and HTTP/1.1 by ALPN (util.ALPNHttp)
ALPN_HTTP = ("h2", "http/1.1")


def downstream_tls(alpn=()) -> dict:
    """Inbound mTLS: this workload's certificate, client certificates required and
    verified against the trust bundle (any identity of the trust domain)."""
    common = {
        "tls_params": dict(MIN_TLS),
        "tls_certificate_sds_secret_configs": [_sds(CERT_SECRET)],
        "combined_validation_context": {"default_validation_context": {},
                                        "validation_context_sds_secret_config": _sds(ROOT_SECRET)},
    }
    if alpn:
        common["alpn_protocols"] = list(alpn)
    return {"name": TLS_TRANSPORT, "typed_config": {
        "@type": type_url(DOWNSTREAM_TLS), "require_client_certificate": True, "common_tls_context": common}}


def _san_matchers(names):
    return [{"san_type": "URI", "matcher": {"exact": n}} for n in names]


def istio_mutual(sans: list[str], sni: str) -> dict:
    """Outbound ISTIO_MUTUAL: this workload's certificate, the peer verified against
    the trust bundle and required to be one of `sans` (SPIFFE IDs)."""
    return {"name": TLS_TRANSPORT, "typed_config": {
        "@type": type_url(UPSTREAM_TLS),
        "sni": sni,
        "common_tls_context": {
            "tls_params": dict(MIN_TLS),
            "tls_certificate_sds_secret_configs": [_sds(CERT_SECRET)],
            "combined_validation_context": {
                "default_validation_context": {"match_typed_subject_alt_names": _san_matchers(sans)} if sans else {},
                "validation_context_sds_secret_config": _sds(ROOT_SECRET)},
        }}}


def originate_tls(tls: dict, sni: str | None) -> dict:
    """SIMPLE / MUTUAL: TLS to a destination that terminates it itself, with the
    files the DestinationRule names (read when the config is applied)."""
    common = {"tls_params": dict(MIN_TLS)}
    if tls.get("mode") == "MUTUAL":
        common["tls_certificates"] = [{"certificate_chain": {"filename": tls["clientCertificate"]},
                                       "private_key": {"filename": tls["privateKey"]}}]
    if not tls.get("insecureSkipVerify"):
        ca = tls.get("caCertificates") or system_ca_file()
        vc = {}
        if ca:
            vc["trusted_ca"] = {"filename": ca}
        if tls.get("subjectAltNames"):
            vc["match_typed_subject_alt_names"] = _san_matchers(tls["subjectAltNames"])
        if vc:
            common["validation_context"] = vc
    ctx = {"@type": type_url(UPSTREAM_TLS), "common_tls_context": common}
    if sni:
        ctx["sni"] = sni
    return {"name": TLS_TRANSPORT, "typed_config": ctx}


def system_ca_file() -> str | None:
    """The operating system's CA bundle (Istio verifies SIMPLE/MUTUAL servers against it
    when the rule names no caCertificates)."""
    path = ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"
    return path if os.path.isfile(path) else None


def istio_sni(port: int, subset: str, host: str) -> str:
    return f"outbound_.{port}_.{subset}_.{host}"


# ---- outbound: one cluster's plan -----------------------------------------------------------------


@dataclass
class OutboundPlan:
    endpoints: list
    port_of: object  # endpoint -> port to dial
    transport_socket: dict | None
    uses_certificate: bool = False


def outbound_plan(svc: reg.Service, port: reg.Port, endpoints: list, tls: dict | None, subset: str,
                  pas, sec: Security, note) -> OutboundPlan:
    """How a cluster reaches its endpoints. note(severity, code, text) reports.

    tls: the DestinationRule's effective `tls` for this port and subset, or None
    (auto mTLS: ISTIO_MUTUAL to endpoints with a sidecar whose port is not DISABLE)."""

    def sidecar_of(e):
        return sidecar_port(e, port)

    def dial_sidecar(e):
        return sidecar_of(e) or e.port_for(port)

    def app_port(e):
        return e.port_for(port)

    mode = (tls or {}).get("mode")
    sni = (tls or {}).get("sni")
    if mode in ("SIMPLE", "MUTUAL"):
        sans = []
        for name in tls.get("subjectAltNames") or []:
            if name.startswith("spiffe://"):
                sans.append(name)
            else:
                note(fnd.ERROR, fnd.UNSUPPORTED, f'subjectAltNames "{name}": meshcore checks URI SANs only '
                                                 "(spiffe://...), not DNS names")
        for key in ("caCertificates", "clientCertificate", "privateKey"):
            f = tls.get(key)
            if f and not os.path.isfile(f):
                note(fnd.ERROR, fnd.INVALID, f"{key} {f}: no such file (read by the proxy when it applies the config)")
        return OutboundPlan(endpoints, app_port, originate_tls({**tls, "subjectAltNames": sans}, sni), False)
    if mode == "DISABLE":
        for e in endpoints:
            we = e.workload_entry
            if sidecar_of(e) and we is not None and _endpoint_mode(e, port, pas, sec) == "STRICT":
                note(fnd.WARNING, fnd.MTLS_CONFLICT,
                     f"tls mode DISABLE sends plaintext to {we.label} port {app_port(e)}, whose "
                     "PeerAuthentication is STRICT: connections are refused")
        return OutboundPlan(endpoints, dial_sidecar, None, False)
    if mode == "ISTIO_MUTUAL":
        for e in endpoints:
            if not sidecar_of(e):
                note(fnd.WARNING, fnd.MTLS_CONFLICT,
                     f"tls mode ISTIO_MUTUAL to {_endpoint_label(e)}, which has no sidecar for port "
                     f'"{port_name_for(e, port)}" ({INBOUND_PORTS_ANNOTATION}): its handshakes fail')
        sans = list((tls or {}).get("subjectAltNames") or []) or _sans(svc, endpoints, sec)
        return OutboundPlan(endpoints, dial_sidecar, istio_mutual(sans, sni or istio_sni(port.number, subset,
                                                                                            svc.host)), True)
    # auto mTLS (no tls settings): as Istio, mTLS to the endpoints with a sidecar.
    mtls = [e for e in endpoints if sidecar_of(e) and _endpoint_mode(e, port, pas, sec) != "DISABLE"]
    if not mtls:
        return OutboundPlan(endpoints, dial_sidecar, None, False)
    plain = [e for e in endpoints if e not in mtls]
    if plain:
        note(fnd.WARNING, fnd.MTLS_CONFLICT,
             f"port {port.number}: {', '.join(_endpoint_label(e) for e in plain)} cannot take mTLS (no sidecar, or "
             "PeerAuthentication DISABLE) while the other endpoints use it; meshcore has one transport "
             "socket per cluster (no transport_socket_matches), so these endpoints are left out")
    return OutboundPlan(mtls, dial_sidecar,
                        istio_mutual(_sans(svc, mtls, sec), istio_sni(port.number, subset, svc.host)), True)


def _endpoint_label(e):
    we = e.workload_entry
    return we.label if we is not None else f"endpoint {e.address}"


def _endpoint_mode(e, port, pas, sec):
    we = e.workload_entry
    if we is None:
        return DEFAULT_MODE
    w = reg.Workload(we.namespace, we.name, dict(we.spec.get("labels") or {}), we.spec.get("address") or "",
                     we.spec.get("serviceAccount") or "", we)
    return peer_mode(pas, w, e.port_for(port), sec.root_namespace)


def _sans(svc: reg.Service, endpoints: list, sec: Security) -> list[str]:
    """Istio's subjectAltNames for ISTIO_MUTUAL: the SPIFFE IDs of the service's
    endpoints (their service accounts), plus a ServiceEntry's subjectAltNames."""
    out = []
    for e in endpoints:
        sid = endpoint_identity(e, sec.trust_domain)
        if sid and sid not in out:
            out.append(sid)
    if svc.resource.kind == "ServiceEntry":
        for name in svc.resource.spec.get("subjectAltNames") or []:
            if name not in out:
                out.append(name)
    return sorted(out)


# ---- inbound ------------------------------------------------------------------------------------


@dataclass
class InboundPort:
    """One inbound listener: the sidecar's port, the application's, the protocol, the mode."""

    listener_port: int
    app_port: int
    is_http: bool
    mode: str
    services: list  # (Service, Port)
    h2: bool = False  # an HTTP2/GRPC/GRPC-Web port: the local application is spoken to in HTTP/2


def inbound_ports_of(registry: reg.Registry, workload: reg.Workload, pas, sec: Security, note) -> list[InboundPort]:
    """The inbound listeners a workload's sidecar gets: one per service port that
    the annotation gives an inbound port. note(resource, severity, code, path, text)."""
    annotation = workload.resource.annotations.get(INBOUND_PORTS_ANNOTATION)
    if annotation is None:
        return []
    names, problems = parse_inbound_ports(annotation)
    path = f'metadata.annotations["{INBOUND_PORTS_ANNOTATION}"]'
    for p in problems:
        note(workload.resource, fnd.ERROR, fnd.INVALID, path, p)
    by_listener: dict[int, InboundPort] = {}
    used = set()
    for svc, e in registry.services_of(workload):
        for port in svc.ports:
            name = port_name_for(e, port)
            number = names.get(name)
            if number is None:
                note(workload.resource, fnd.WARNING, fnd.NO_SIDECAR, path,
                     f'no inbound port for port "{name}" of {svc.host}: peers reach the application on '
                     f"{workload.address}:{e.port_for(port)} directly, in plaintext, without authorization")
                continue
            used.add(name)
            app = e.port_for(port)
            have = by_listener.get(number)
            if have is None:
                mode = peer_mode(pas, workload, app, sec.root_namespace)
                by_listener[number] = InboundPort(number, app, port.is_http, mode, [(svc, port)],
                                                   port.protocol in reg.H2_PROTOCOLS)
            elif have.app_port != app or have.is_http != port.is_http:
                note(svc.resource, fnd.ERROR, fnd.PORT_CONFLICT, "spec.ports",
                     f"inbound port {number} of {workload.resource.label} would serve both application port "
                     f"{have.app_port} and {app}: give each its own inbound port")
            else:
                have.services.append((svc, port))
    for name in names:
        if name not in used:
            note(workload.resource, fnd.WARNING, fnd.UNKNOWN_HOST, path,
                 f'port name "{name}" is no port of a service of this workload: no inbound listener')
    return [by_listener[n] for n in sorted(by_listener)]

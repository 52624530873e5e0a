"""Per workload, the xDS resources the control plane serves: one translation
per config version, shared by every proxy of that workload.

A config version is built whole: the translator's validation and analysis
(what `meshcore check` reports) and every WorkloadEntry's sidecar
translation, split into LDS/RDS/CDS/EDS/SDS (meshcore.xds.resources). Any
error anywhere rejects the version with its reasons (`Rejected`): the caller
keeps serving the last good one, as `meshcore proxy --mesh-dir` keeps its
last good config.

Each resource gets a version: a digest of its deterministic serialization,
so the same resource has the same version in every config version and after
a restart (delta xDS compares them; `initial_resource_versions` from a
reconnecting proxy match). Each resource is packed into an Any once and the
packed message is shared by every proxy's responses.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from google.protobuf import any_pb2

from meshcore.translate import Registry, Security, analyze, findings, translate
from meshcore.translate.build import DEFAULT_OUTBOUND_ADDRESS
from meshcore.xds import resources as xr


class Rejected(Exception):
    """A config version with errors: its version and the errors' text."""

    def __init__(self, version: str, reasons: list[str]):
        super().__init__(f"config {version} rejected: " + "; ".join(reasons[:3])
                         + (f" (and {len(reasons) - 3} more)" if len(reasons) > 3 else ""))
        self.version = version
        self.reasons = reasons


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def set_digest(items) -> str:
    """The version of a set of (name, resource version) pairs (a type's, or a proxy's subset)."""
    h = hashlib.sha256()
    for name, version in sorted(items):
        h.update(name.encode() + b"\0" + version.encode() + b"\0")
    return h.hexdigest()[:12]


@dataclass(frozen=True)
class Entry:
    """One resource as served: its version and its packed message."""

    version: str
    any: any_pb2.Any


@dataclass
class WorkloadView:
    ref: str
    workload: object  # translate.registry.Workload
    resources: dict  # type URL -> name -> Entry
    type_versions: dict = field(default_factory=dict)  # type URL -> version of the whole type
    version: str = ""  # of the whole view
    rebound: dict = field(default_factory=dict)  # (node IP, flavor) -> this view as that node gets it

    def of(self, type_url: str) -> dict:
        return self.resources.get(type_url, {})

    # replace_type and messages_of as methods: the flavor modules (flavors.py) adapt a view
    # through these without importing this module (views -> flavors -> views would be a cycle)
    def replace(self, type_url: str, messages: dict) -> WorkloadView:
        return replace_type(self, type_url, messages)

    def messages(self, type_url: str) -> dict:
        return messages_of(self, type_url)

    def for_node(self, ip: str, flavor: str = "meshcore") -> WorkloadView:
        """The view as a proxy at `ip` of this flavor (nodes.flavor_of) gets it: its
        outbound listeners bind `ip` (the address its node id names, as Istio's
        sidecars bind their pod's), so several sidecars can share one machine; an
        Envoy or a proxyless gRPC client gets what it understands (flavors.py).
        Cached on the view: an unchanged view gives the same object again, so
        "changed?" stays an identity test."""
        from . import flavors

        rebind = bool(ip) and ip != DEFAULT_OUTBOUND_ADDRESS and _is_ip(ip)
        if not rebind and flavor == flavors.MESHCORE:
            return self
        key = (ip if rebind else "", flavor)
        if key not in self.rebound:
            view = _rebind(self, ip) if rebind else self
            self.rebound[key] = flavors.adapt(view, flavor)
        return self.rebound[key]


@dataclass
class Snapshot:
    """A good config version: a registry (who proxies are) and the views."""

    version: str
    registry: Registry
    views: dict  # "ns/name" -> WorkloadView
    warnings: list = field(default_factory=list)
    built_at: float = field(default_factory=time.time)
    build_seconds: float = 0.0


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _rebind(view: WorkloadView, ip: str) -> WorkloadView:
    """A copy of the view whose outbound listeners bind ip instead of the default address."""
    from envoy.config.core.v3 import base_pb2
    from envoy.config.listener.v3 import listener_pb2

    listeners = {}
    for entry in view.of(xr.LDS).values():
        lst = listener_pb2.Listener()
        lst.ParseFromString(entry.any.value)
        sa = lst.address.socket_address
        if lst.traffic_direction == base_pb2.OUTBOUND and sa.address == DEFAULT_OUTBOUND_ADDRESS:
            sa.address = ip
            old_prefix = f"{DEFAULT_OUTBOUND_ADDRESS}_"
            if lst.name.startswith(old_prefix):
                lst.name = f"{ip}_" + lst.name[len(old_prefix):]
        listeners[lst.name] = lst
    return replace_type(view, xr.LDS, listeners)


def replace_type(view: WorkloadView, type_url: str, messages: dict) -> WorkloadView:
    """A copy of the view whose resources of one type are `messages` (name -> message);
    the other types' entries are shared, not copied."""
    out = {t: dict(view.of(t)) for t in xr.PUSH_ORDER}
    out[type_url] = {}
    for name, message in messages.items():
        data = message.SerializeToString(deterministic=True)
        out[type_url][name] = Entry(digest(data), any_pb2.Any(type_url=type_url, value=data))
    type_versions = {t: set_digest((n, e.version) for n, e in out[t].items()) for t in xr.PUSH_ORDER}
    return WorkloadView(view.ref, view.workload, out, type_versions, set_digest(type_versions.items()))


def messages_of(view: WorkloadView, type_url: str) -> dict:
    """The view's resources of one type, decoded (name -> message, fresh copies)."""
    out = {}
    for name, entry in view.of(type_url).items():
        m = xr.MESSAGE_CLASS[type_url]()
        m.ParseFromString(entry.any.value)
        out[name] = m
    return out


def _view(ref, workload, res: xr.Resources, previous: WorkloadView | None) -> WorkloadView:
    out = {}
    for type_url in xr.PUSH_ORDER:
        old = previous.of(type_url) if previous is not None else {}
        entries = {}
        for name, message in res.of(type_url).items():
            data = message.SerializeToString(deterministic=True)
            version = digest(data)
            prior = old.get(name)
            if prior is not None and prior.version == version:
                entries[name] = prior  # unchanged: share the packed message
                continue
            packed = any_pb2.Any(type_url=type_url, value=data)
            entries[name] = Entry(version, packed)
        out[type_url] = entries
    type_versions = {t: set_digest((n, e.version) for n, e in out[t].items()) for t in xr.PUSH_ORDER}
    version = set_digest(type_versions.items())
    if previous is not None and previous.version == version:
        previous.workload = workload
        return previous  # nothing changed: the same object, so "changed?" is an identity test
    return WorkloadView(ref, workload, out, type_versions, version)


def build(version: str, mesh, security: Security, root_bundle_pem: str | None,
          previous: Snapshot | None = None) -> Snapshot:
    """The Snapshot of a config version; Rejected with every error if it has any."""
    started = time.monotonic()
    registry = Registry(mesh)
    found = list(mesh.findings) + analyze(mesh, registry, security)
    translations = {}
    for w in registry.workloads:
        t = translate(mesh, w.id, registry=registry, security=security)
        translations[w.id] = t
        found += t.findings
    if not registry.workloads:
        found += registry.findings
    found = sorted(findings.unique(found), key=findings.sort_key)
    errors = [str(f) for f in found if f.is_error]
    if errors:
        raise Rejected(version, errors)
    views = {}
    for ref, t in translations.items():
        res = xr.split(t.bootstrap, root_bundle_pem)
        views[ref] = _view(ref, t.workload, res, previous.views.get(ref) if previous is not None else None)
    return Snapshot(version, registry, views, [str(f) for f in found],
                    build_seconds=time.monotonic() - started)

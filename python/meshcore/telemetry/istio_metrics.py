"""Istio's standard metrics: what the C core counts, named and labelled as Istio does.

The core counts per worker, per label set, with a handful of small integers
for a key (see include/meshcore/istio_metrics.h). This module plans those
integers when a config is applied and turns them back into Istio's labels
when Prometheus scrapes:

* A listener counts when one of its chains has an `istio.stats` filter (an
  HTTP filter of its http_connection_manager, or a network filter before
  tcp_proxy). The reporter comes from the listener's `traffic_direction`:
  OUTBOUND reports as `source` (the client's sidecar), INBOUND as
  `destination`.
* An `istio.metadata_exchange` filter on the chain turns on Istio's peer
  metadata exchange (HTTP): the bootstrap `node`'s metadata goes to the peer
  in `x-envoy-peer-metadata` (base64 of a protobuf Struct, as Istio sends
  it) and `x-envoy-peer-metadata-id`, and the peer's comes back the same
  way. The core keeps the peer's value as bytes; it is decoded here.
* A cluster's `destination_service*` labels come from its
  `metadata.filter_metadata.istio.services` (as Istio's control plane
  writes them), else from an Istio-style name `outbound|PORT|SUBSET|HOST`.
* The local workload's labels come from the bootstrap `node` metadata
  (WORKLOAD_NAME, NAMESPACE, LABELS app / version / canonical-name /
  canonical-revision, CLUSTER_ID); its principal from the URI SAN of the
  certificates the config holds. A peer with no metadata (no exchange, or
  TCP) is labelled from the registry given to `IstioMetrics.peers` by
  principal, and failing that the namespace in its SPIFFE ID.

Histograms use Istio's (Envoy's default) bucket bounds, in milliseconds for
durations and bytes for sizes.
"""
from __future__ import annotations

import base64
import functools
import threading
from dataclasses import dataclass

from meshcore import _core
from meshcore.identity import UNKNOWN, principal_namespace
from meshcore.telemetry.access_log import response_flags
from meshcore.telemetry.stats import ENVOY_BUCKETS_MS

# Envoy's default histogram buckets, which Istio's metrics use.
BUCKETS = ENVOY_BUCKETS_MS
_DURATION_BOUNDS_US = [b * 1000 for b in BUCKETS]

FILTER_STATS = "istio.stats"
FILTER_EXCHANGE = "istio.metadata_exchange"
PEER_METADATA = "x-envoy-peer-metadata"
PEER_METADATA_ID = "x-envoy-peer-metadata-id"

# The node metadata fields a peer gets (Istio's exchange sends these too).
_EXCHANGED = ("NAME", "NAMESPACE", "LABELS", "WORKLOAD_NAME", "CLUSTER_ID", "MESH_ID", "SERVICE_ACCOUNT",
              "OWNER", "PLATFORM_METADATA", "APP_CONTAINERS", "INSTANCE_IPS")

# The workload labels, in Istio's order, for one side (source_ or destination_).
_WORKLOAD_LABELS = ("workload", "workload_namespace", "principal", "app", "version", "canonical_service",
                    "canonical_revision", "cluster")
HTTP_LABELS = (("reporter",) + tuple(f"source_{x}" for x in _WORKLOAD_LABELS)
               + tuple(f"destination_{x}" for x in _WORKLOAD_LABELS)
               + ("destination_service", "destination_service_name", "destination_service_namespace",
                  "request_protocol", "response_code", "grpc_response_status", "response_flags",
                  "connection_security_policy"))
TCP_LABELS = tuple(x for x in HTTP_LABELS if x not in ("response_code", "grpc_response_status"))



@dataclass(frozen=True)
class Workload:
    """One side's labels."""
    workload: str = UNKNOWN
    namespace: str = UNKNOWN
    app: str = UNKNOWN
    version: str = UNKNOWN
    canonical_service: str = UNKNOWN
    canonical_revision: str = "latest"
    cluster: str = UNKNOWN

    @classmethod
    def from_metadata(cls, md: dict) -> Workload:
        """From node metadata as Istio reads it (a dict of a Struct)."""
        labels = md.get("LABELS") or {}
        if not isinstance(labels, dict):
            labels = {}

        def s(v):
            return v if isinstance(v, str) and v else None

        workload = s(md.get("WORKLOAD_NAME")) or s(md.get("NAME")) or UNKNOWN
        app = s(labels.get("app")) or s(labels.get("app.kubernetes.io/name")) or UNKNOWN
        version = s(labels.get("version")) or s(labels.get("app.kubernetes.io/version")) or UNKNOWN
        return cls(
            workload=workload,
            namespace=s(md.get("NAMESPACE")) or UNKNOWN,
            app=app,
            version=version,
            canonical_service=(s(labels.get("service.istio.io/canonical-name")) or (app if app != UNKNOWN else None)
                               or workload),
            canonical_revision=(s(labels.get("service.istio.io/canonical-revision"))
                                or (version if version != UNKNOWN else None) or "latest"),
            cluster=s(md.get("CLUSTER_ID")) or UNKNOWN,
        )

    def values(self, principal: str) -> tuple:
        return (self.workload, self.namespace, principal, self.app, self.version, self.canonical_service,
                self.canonical_revision, self.cluster)


def encode_peer_metadata(md: dict) -> str:
    """x-envoy-peer-metadata for node metadata: base64 of a protobuf Struct."""
    from google.protobuf import struct_pb2

    st = struct_pb2.Struct()
    st.update({k: md[k] for k in _EXCHANGED if k in md})
    return base64.b64encode(st.SerializeToString()).decode()


def decode_peer_metadata(value: bytes) -> dict | None:
    """The node metadata in an x-envoy-peer-metadata value, or None if it is not one."""
    from google.protobuf import json_format, struct_pb2

    try:
        st = struct_pb2.Struct()
        st.ParseFromString(base64.b64decode(value, validate=True))
        return json_format.MessageToDict(st)
    except Exception:  # noqa: BLE001 - any garbage a peer sends is "unknown"
        return None


def service_of_cluster(cluster) -> tuple[str, str, str] | None:
    """(destination_service, _name, _namespace) for a Cluster, or None."""
    md = cluster.metadata.filter_metadata
    if "istio" in md:
        # Read in the Struct itself: MessageToDict of every cluster's metadata
        # was a tenth of a 1,000-cluster apply.
        services = md["istio"].fields.get("services")
        first = services.list_value.values[0] if services is not None and services.list_value.values else None
        s = first.struct_value.fields if first is not None and first.WhichOneof("kind") == "struct_value" else {}
        host = s["host"].string_value if "host" in s else ""
        if host:
            parts = host.split(".")
            name = s["name"].string_value if "name" in s else ""
            ns = s["namespace"].string_value if "namespace" in s else ""
            return (host, name or parts[0], ns or (parts[1] if len(parts) > 1 else UNKNOWN))
    parts = cluster.name.split("|")
    if len(parts) == 4 and parts[0] == "outbound" and parts[3]:
        host = parts[3]
        labels = host.split(".")
        return host, labels[0], labels[1] if len(labels) > 1 else UNKNOWN
    return None


def _local_principals(bootstrap) -> set[str]:
    """URI SANs of every certificate the config holds (secrets and inline)."""
    out = set()
    res = bootstrap.static_resources
    pems = [s.tls_certificate.certificate_chain for s in res.secrets if s.HasField("tls_certificate")]
    for c in res.clusters:
        if c.HasField("transport_socket"):
            pems.extend(_inline_certs(c.transport_socket, upstream=True))
    for listener in res.listeners:
        for chain in listener.filter_chains:
            if chain.HasField("transport_socket"):
                pems.extend(_inline_certs(chain.transport_socket, upstream=False))
    for ds in pems:
        pem = _datasource(ds)
        sid = _core.pem_uri_san(pem) if pem else None  # OpenSSL's parse: no cryptography import here
        if sid:
            out.add(sid)
    return out


def _inline_certs(ts, upstream: bool):
    return _certs_in(ts.typed_config.type_url, ts.typed_config.value, upstream)


@functools.lru_cache(maxsize=4096)
def _certs_in(type_url: str, value: bytes, upstream: bool) -> tuple:
    """The certificate chains (DataSource, read only) of a packed TLS context;
    remembered: every apply asks again for each cluster's."""
    from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
    from google.protobuf import any_pb2

    ctx = tls_pb2.UpstreamTlsContext() if upstream else tls_pb2.DownstreamTlsContext()
    if not any_pb2.Any(type_url=type_url, value=value).Unpack(ctx):
        return ()
    return tuple(c.certificate_chain for c in ctx.common_tls_context.tls_certificates)


def _datasource(ds) -> bytes | None:
    kind = ds.WhichOneof("specifier")
    try:
        if kind == "inline_string":
            return ds.inline_string.encode()
        if kind == "inline_bytes":
            return ds.inline_bytes
        if kind == "filename":
            with open(ds.filename, "rb") as f:
                return f.read()
    except OSError:
        return None
    return None


@dataclass
class Plan:
    services: dict  # cluster name -> service label id
    local: Workload
    local_principal: str


class IstioMetrics:
    """The Python half of the core's Istio metrics, for one engine.

    plan(bootstrap) before compiling a config; collect() at scrape time.
    `peers`: principal -> Workload, the registry used for peers that sent no
    metadata (set by whoever knows the mesh, e.g. `meshcore proxy --mesh-dir`).
    """

    def __init__(self, core: _core.Engine) -> None:
        self._core = core
        self._lock = threading.Lock()
        self._services: dict[tuple, int] = {}   # service labels -> id (never reused)
        self._service_labels: dict[int, tuple] = {}
        self.local = Workload()
        self.local_principal = UNKNOWN
        self.peers: dict[str, Workload] = {}
        self._peer_cache: dict[bytes, Workload | None] = {}

    # -- config time ----------------------------------------------------------

    def plan(self, plan) -> Plan:
        """Sets ChainPlan.istio (reporter, peer metadata, its id) on the
        chains with istio.stats (meshcore.plan.SnapshotPlan); returns the rest
        of what compile_snapshot needs (Plan.services). adopt() it once the
        config is applied."""
        bootstrap, node_md = plan.bootstrap, plan.node_metadata
        principals = _local_principals(bootstrap)
        local = Workload.from_metadata(node_md)
        local_principal = principals.pop() if len(principals) == 1 else UNKNOWN
        exchange = (encode_peer_metadata(node_md), bootstrap.node.id or self.local.workload)
        res = bootstrap.static_resources
        for chain in plan.chains:
            reporter = {1: _core.IM_DESTINATION, 2: _core.IM_SOURCE}.get(chain.direction)
            if reporter is not None and FILTER_STATS in chain.filter_names:
                chain.istio = (reporter,) + (exchange if FILTER_EXCHANGE in chain.filter_names else (None, None))
        services = {}
        for c in res.clusters:
            labels = service_of_cluster(c)
            if labels is None:
                continue
            with self._lock:
                sid = self._services.get(labels)
                if sid is None:
                    sid = self._services[labels] = len(self._services) + 1
                    self._service_labels[sid] = labels
            services[c.name] = sid
        return Plan(services, local, local_principal)

    def adopt(self, plan: Plan) -> None:
        with self._lock:
            self.local, self.local_principal = plan.local, plan.local_principal

    # -- scrape time ----------------------------------------------------------------

    def _peer(self, worker: int, index: int) -> Workload | None:
        if not index:
            return None
        raw = self._core.istio_peer(worker, index)
        if raw is None:
            return None
        if raw not in self._peer_cache:
            md = decode_peer_metadata(raw)
            self._peer_cache[raw] = Workload.from_metadata(md) if md is not None else None
        return self._peer_cache[raw]

    def rows(self) -> tuple[dict, dict]:
        """Label values (HTTP_LABELS order) -> summed counts, for HTTP and for TCP."""
        http, tcp = {}, {}
        with self._lock:
            local, local_principal = self.local, self.local_principal
            services = dict(self._service_labels)
        principals = {}
        for key, worker, h, t in self._core.istio_rows(_DURATION_BOUNDS_US, BUCKETS):
            reporter, protocol, security, code, flags, service, peer_i, principal_i, grpc = key
            if (worker, principal_i) not in principals:
                principals[(worker, principal_i)] = (self._core.istio_principal(worker, principal_i)
                                                     if principal_i else None)
            peer_principal = principals[(worker, principal_i)]
            peer = self._peer(worker, peer_i)
            if peer is None:
                peer = self.peers.get(peer_principal) if peer_principal else None
            if peer is None:
                peer = Workload(namespace=principal_namespace(peer_principal) if peer_principal else UNKNOWN)
            peer_values = peer.values(peer_principal or UNKNOWN)
            local_values = local.values(local_principal)
            if reporter == _core.IM_SOURCE:
                sides = ("source",) + local_values + peer_values
            else:
                sides = ("destination",) + peer_values + local_values
            svc = services.get(service, (UNKNOWN, UNKNOWN, UNKNOWN))
            proto = _core.IM_PROTOCOLS.get(protocol, UNKNOWN)
            grpc_status = str(grpc - 1) if grpc else ""
            tail = (proto, str(code), grpc_status, response_flags(flags), _core.IM_SECURITY.get(security, UNKNOWN))
            labels = sides + svc + tail
            if proto == "tcp":
                labels = labels[:-4] + labels[-2:]  # TCP metrics have no response/grpc status
                acc = tcp.setdefault(labels, [0, 0, 0, 0])
                for i in range(4):
                    acc[i] += t[i]
            else:
                _add_http(http.setdefault(labels, _empty_http()), h)
        return http, tcp

    def collect(self):
        """prometheus_client metric families (a custom collector)."""
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        http, tcp = self.rows()
        requests = CounterMetricFamily("istio_requests", "Requests, by source and destination.",
                                       labels=HTTP_LABELS)
        hists = [HistogramMetricFamily(name, doc, labels=HTTP_LABELS) for name, doc in (
            ("istio_request_duration_milliseconds", "Request duration (milliseconds)."),
            ("istio_request_bytes", "Request body size (bytes)."),
            ("istio_response_bytes", "Response body size (bytes)."))]
        les = [floatToGoString(b) for b in BUCKETS] + ["+Inf"]
        for labels, acc in sorted(http.items()):
            values = list(labels)
            requests.add_metric(values, acc["requests"])
            for fam, (counts, total, n) in zip(hists, acc["hists"], strict=True):
                fam.add_metric(values, list(zip(les, counts + [n], strict=True)), total)
        if http:  # no empty families: nothing until the first request, as Istio
            yield requests
            yield from hists
        tcp_families = [CounterMetricFamily(name, doc, labels=TCP_LABELS) for name, doc in (
            ("istio_tcp_connections_opened", "TCP connections opened."),
            ("istio_tcp_connections_closed", "TCP connections closed."),
            ("istio_tcp_sent_bytes", "Bytes sent to the client on TCP connections."),
            ("istio_tcp_received_bytes", "Bytes received from the client on TCP connections."))]
        for labels, acc in sorted(tcp.items()):
            for fam, v in zip(tcp_families, acc, strict=True):
                fam.add_metric(list(labels), v)
        if tcp:
            yield from tcp_families
        sets, peers, principals = self._core.istio_overflow
        overflow = CounterMetricFamily(
            "meshcore_istio_metrics_overflow", "Observations not counted because a label table was full.",
            labels=["table"])
        for name, v in (("label_sets", sets), ("peers", peers), ("principals", principals)):
            overflow.add_metric([name], v)
        yield overflow


def _empty_http() -> dict:
    n = len(BUCKETS)
    return {"requests": 0, "hists": [[[0] * n, 0.0, 0] for _ in range(3)]}


def _add_http(acc: dict, h) -> None:
    requests, (dcounts, dsum_us), (qcounts, qsum, qn), (rcounts, rsum, rn) = h
    acc["requests"] += requests
    for slot, (counts, total, n) in zip(acc["hists"], ((dcounts, dsum_us / 1000.0, requests),
                                                        (qcounts, qsum, qn), (rcounts, rsum, rn)), strict=True):
        for i, c in enumerate(counts):
            slot[0][i] += c
        slot[1] += total
        slot[2] += n

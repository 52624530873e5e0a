"""The proxy's side of xDS: an ADS client (envoy xds_protocol.rst).

One gRPC stream to the control plane, incremental (delta, the default) or
state of the world (SotW). It subscribes as Envoy does:

    CDS  wildcard                 LDS  wildcard
    EDS  the service names of the EDS clusters it holds
    RDS  the route configuration names its listeners' HCMs refer to
    SDS  ROOTCA (optional: the proxy's own trust bundle wins, as Istio's agent's)

Wildcard is the legacy form (a first request with no names), which every
server supports. The node says who the proxy is as Istio's sidecars do
(`node()`).

Every response is merged into a candidate set of resources, put together
with the proxy's own secrets into one static Bootstrap
(`resources.materialize`) and handed to `apply` (the engine validates and
compiles it). Then:

- applied: ACK (same type, the response's nonce; SotW: its version);
- not applicable (undecodable, unknown fields, a validation or compile
  error): NACK with `error_detail` (google.rpc.Status), the candidate is
  dropped and the last good snapshot keeps serving;
- incomplete (a listener names a route, or a cluster endpoints, not received
  yet): ACK and wait, as Envoy's warming; the candidate is applied once the
  pieces arrive. The running snapshot keeps serving meanwhile.

A broken stream is retried with jittered exponential back-off (`Backoff`),
which resets once a stream has stayed up `healthy_after` seconds; on a new
delta stream the resources held are announced in `initial_resource_versions`
(SotW: the last ACKed `version_info`). While the control plane is away the
proxy serves what it last applied (static stability). Everything runs in one
background thread; `stop()` cancels the stream and joins it.
"""
from __future__ import annotations

import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field

from meshcore.errors import ConfigError, EngineError
from meshcore.xds.resources import CDS, EDS, LDS, RDS, SDS, SHORT_NAME, Incomplete, Resources, materialize

log = logging.getLogger("meshcore.xds")

DELTA, SOTW = "delta", "sotw"
WILDCARD_TYPES = (CDS, LDS)
SUBSCRIBE_ORDER = (CDS, EDS, LDS, RDS, SDS)  # make before break, as the server pushes
ROOT_SECRET = "ROOTCA"
INVALID_ARGUMENT = 3  # google.rpc.Code


def node(workload: str, ip: str, service_account: str = "default", labels: dict | None = None,
         trust_domain: str = "cluster.local"):
    """An envoy.config.core.v3.Node as an Istio sidecar sends it: id
    `sidecar~IP~NAME.NAMESPACE~NAMESPACE.svc.cluster.local`, metadata NAMESPACE,
    NAME, WORKLOAD_NAME, LABELS, SERVICE_ACCOUNT (istio-agent's keys)."""
    from envoy.config.core.v3 import base_pb2

    ns, _, name = workload.rpartition("/")
    ns = ns or "default"
    n = base_pb2.Node(id=f"sidecar~{ip}~{name}.{ns}~{ns}.svc.cluster.local", cluster=f"{name}.{ns}")
    n.metadata.update({"NAMESPACE": ns, "NAME": name, "WORKLOAD_NAME": name, "LABELS": dict(labels or {}),
                       "SERVICE_ACCOUNT": service_account or "default", "MESH_ID": trust_domain,
                       "INSTANCE_IPS": ip})
    return n


def local_ip_towards(host: str, port: int) -> str:
    """The local address this machine uses to reach host:port (no packet is sent)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, _, _, _, addr = infos[0]
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


class Backoff:
    """Jittered exponential back-off: attempt n waits a random time in
    [d/2, d], d = min(cap, base * 2**n) (Envoy's JitteredExponentialBackOff)."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng=random.random):
        self.base, self.cap, self._rng = base, cap, rng
        self.attempt = 0

    def next(self) -> float:
        d = min(self.cap, self.base * (2 ** self.attempt))
        self.attempt = min(self.attempt + 1, 32)
        return d / 2 + self._rng() * d / 2

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class TypeState:
    """What the proxy knows of one resource type, for /config_dump and status."""

    version: str = ""       # the version_info last ACKed (SotW; delta: system_version_info if sent)
    nonce: str = ""         # the nonce last ACKed
    last_nonce: str = ""    # the nonce of the last response (SotW requests carry it)
    last_nack: dict | None = None  # {"version", "nonce", "message", "time"}
    acks: int = 0
    nacks: int = 0
    versions: dict = field(default_factory=dict)   # resource name -> version
    updated: dict = field(default_factory=dict)    # resource name -> time.time() received
    subscribed: set = field(default_factory=set)   # names (empty + wildcard: all)
    wildcard: bool = False


class Rejected(Exception):
    """A response that cannot be applied: NACKed with this message."""


def _decode(type_url: str, any_msg):
    from google.protobuf import unknown_fields

    from meshcore.xds.resources import MESSAGE_CLASS

    if any_msg.type_url != type_url:
        raise Rejected(f"resource of type {any_msg.type_url!r} in a {type_url} response")
    msg = MESSAGE_CLASS[type_url]()
    try:
        any_msg.Unpack(msg)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise Rejected(f"cannot decode {SHORT_NAME[type_url]} resource: {e}") from None
    where = _unknown_fields(msg, unknown_fields)
    if where:
        name = getattr(msg, "name", "") or getattr(msg, "cluster_name", "")
        raise Rejected(f"{SHORT_NAME[type_url]} resource {name!r}: unknown field number {where} "
                       "(not in this proxy's xDS API)")
    return msg


def _unknown_fields(msg, unknown_fields, path="") -> str:
    """'path.field_number' of the first field the proxy's protos do not know, or ''."""
    from meshcore import xds_types

    found = list(unknown_fields.UnknownFieldSet(msg))
    if found:
        return f"{path}{found[0].field_number}"
    for fd, value in msg.ListFields():
        if fd.message_type is None:
            continue
        if fd.message_type.GetOptions().map_entry:
            items = list(value.values()) if fd.message_type.fields_by_name["value"].message_type else []
        else:
            items = list(value) if fd.is_repeated else [value]
        for item in items:
            sub = f"{path}{fd.name}."
            if item.DESCRIPTOR.full_name == "google.protobuf.Any":
                try:
                    item = xds_types.unpack(item)
                except Exception:  # noqa: BLE001 - an unknown type: validation names it
                    continue
            hit = _unknown_fields(item, unknown_fields, sub)
            if hit:
                return hit
    return ""


def wanted_names(resources: Resources) -> dict:
    """{EDS: service names of the EDS clusters, RDS: route names the listeners use}."""
    from envoy.config.cluster.v3 import cluster_pb2

    from meshcore import xds_types

    eds = {c.eds_cluster_config.service_name or name for name, c in resources.of(CDS).items()
           if c.type == cluster_pb2.Cluster.EDS}
    rds = set()
    for lst in resources.of(LDS).values():
        for chain in lst.filter_chains:
            try:
                hcm = xds_types.http_connection_manager(chain)
            except Exception:  # noqa: BLE001 - a bad filter is validation's to report
                continue
            if hcm is not None and hcm.HasField("rds"):
                rds.add(hcm.rds.route_config_name)
    return {EDS: eds, RDS: rds}


class XdsClient:
    """An ADS client for one proxy.

    target: "HOST:PORT". node: an envoy Node (`node()`). apply(bootstrap): applies a
    complete config (raises ConfigError/EngineError to refuse it). secrets(): the
    proxy's own Secrets (`default`, `ROOTCA`) for materialize. base: a Bootstrap
    to start from (node, admin). mode: "delta" or "sotw". token_file: sent as
    `authorization: Bearer` on the stream (read at each connection)."""

    def __init__(self, target: str, node, apply, secrets=lambda: (), *, base=None, mode: str = DELTA,
                 subscribe_root_ca: bool = True, token_file: str | None = None, backoff: Backoff | None = None,
                 healthy_after: float = 10.0, channel_options=(), apply_endpoints=None):
        if mode not in (DELTA, SOTW):
            raise ConfigError(f"xDS mode {mode!r}: expected delta or sotw")
        self.target, self.node, self.mode = target, node, mode
        self._apply, self._secrets, self._base = apply, secrets, base
        self._apply_endpoints = apply_endpoints  # {cluster: ClusterLoadAssignment} -> None: the EDS fast path
        self.token_file = token_file
        self.backoff = backoff or Backoff()
        self.healthy_after = healthy_after
        self._channel_options = list(channel_options)
        self.types = {t: TypeState() for t in SUBSCRIBE_ORDER}
        for t in WILDCARD_TYPES:
            self.types[t].wildcard = True
        if subscribe_root_ca:
            self.types[SDS].subscribed = {ROOT_SECRET}
        self.resources = Resources()   # accepted (ACKed) resources, possibly warming
        self.applied: Resources | None = None  # the resources of the running snapshot
        self.applied_at: float | None = None
        self.started_at: float | None = None
        self.warming: str | None = None  # what the accepted resources wait for
        self.connected = False
        self.streams = 0       # streams opened
        self.counters: dict[str, int] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._applied_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._call = None
        self._requests: queue.Queue | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> XdsClient:
        self.started_at = time.time()
        self._thread = threading.Thread(target=self._run, name="xds-client", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        call, q = self._call, self._requests
        if q is not None:
            q.put(None)
        if call is not None:
            call.cancel()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_applied(self, timeout: float) -> bool:
        """True once a first complete config was applied: CDS and LDS received and
        everything they name (Envoy's initialization before /ready)."""
        return self._applied_event.wait(timeout)

    @property
    def ready(self) -> bool:
        return self._applied_event.is_set()

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def stats(self) -> dict:
        """Counters for /stats: xds.<type>.update_success|update_rejected|update_warming,
        control_plane.connected_state, control_plane.streams."""
        out = {"control_plane.connected_state": int(self.connected), "control_plane.streams": self.streams}
        for t in SUBSCRIBE_ORDER:
            s = SHORT_NAME[t].lower()
            for what in ("update_success", "update_rejected", "update_warming"):
                out[f"xds.{s}.{what}"] = self.counters.get(f"xds.{s}.{what}", 0)
        return out

    # -- the stream --------------------------------------------------------------------

    def _run(self) -> None:
        import grpc
        from envoy.service.discovery.v3 import ads_pb2_grpc

        channel = grpc.insecure_channel(self.target, options=self._channel_options)
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                got_response = False
                try:
                    got_response = self._stream(stub)
                    reason = "closed by the control plane"
                except grpc.RpcError as e:
                    code = e.code() if hasattr(e, "code") else None
                    reason = f"{code.name if code else 'error'}: {e.details() if hasattr(e, 'details') else e}"
                finally:
                    self.connected = False
                    self._call = None
                if self._stop.is_set():
                    break
                if got_response and time.monotonic() - started >= self.healthy_after:
                    self.backoff.reset()
                delay = self.backoff.next()
                log.warning("xDS stream to %s ended (%s); reconnecting in %.2fs, serving the last config",
                            self.target, reason, delay)
                self._stop.wait(delay)
        finally:
            channel.close()

    def _metadata(self):
        if not self.token_file:
            return None
        try:
            with open(self.token_file) as f:
                text = f.read().strip()
        except OSError as e:
            log.error("cannot read token file %s: %s", self.token_file, e.strerror)
            return None
        if text.startswith("{"):  # a bootstrap token file (meshcore control-plane token): its "token"
            from meshcore.controlplane.tokens import read_token_file
            from meshcore.errors import ConfigError

            try:
                text = read_token_file(self.token_file)["token"]
            except ConfigError as e:
                log.error("%s", e)
                return None
        return (("authorization", f"Bearer {text}"),)

    def _stream(self, stub) -> bool:
        """One ADS stream until it ends; True if a response was received."""
        q: queue.Queue = queue.Queue()
        self._requests = q

        def requests():
            while True:
                item = q.get()
                if item is None:
                    return
                yield item

        with self._lock:
            first = True
            for t in SUBSCRIBE_ORDER:
                req = self._initial_request(t)
                if req is None:
                    continue
                if first:
                    req.node.CopyFrom(self.node)
                    first = False
                q.put(req)
        rpc = stub.DeltaAggregatedResources if self.mode == DELTA else stub.StreamAggregatedResources
        call = rpc(requests(), metadata=self._metadata())
        self._call = call
        self.streams += 1
        if self._stop.is_set():
            call.cancel()
        got = False
        try:
            for response in call:
                if not got:
                    log.info("xDS stream to %s up (%s)", self.target, self.mode)
                got = True
                self.connected = True
                with self._lock:
                    for req in self._on_response(response):
                        q.put(req)
        finally:
            q.put(None)
        return got

    def _initial_request(self, t):
        from envoy.service.discovery.v3 import discovery_pb2

        st = self.types[t]
        if not st.wildcard and not st.subscribed:
            return None
        if self.mode == DELTA:
            req = discovery_pb2.DeltaDiscoveryRequest(type_url=t)
            if not st.wildcard:
                req.resource_names_subscribe.extend(sorted(st.subscribed))
            for name, version in self.resources_versions(t).items():
                req.initial_resource_versions[name] = version
            return req
        req = discovery_pb2.DiscoveryRequest(type_url=t, version_info=st.version)
        if not st.wildcard:
            req.resource_names.extend(sorted(st.subscribed))
        return req

    def resources_versions(self, t) -> dict:
        st = self.types[t]
        return {n: st.versions.get(n, "") for n in self.resources.of(t)}

    # -- responses ----------------------------------------------------------------------

    def _on_response(self, response) -> list:
        """Merges, applies and answers one response; returns the requests to send."""
        t = response.type_url
        st = self.types.get(t)
        if st is None:
            log.warning("xDS response of unexpected type %s ignored", t)
            return []
        st.last_nonce = response.nonce
        delta = self.mode == DELTA
        version = response.system_version_info if delta else response.version_info
        try:
            candidate, versions = (self._merge_delta if delta else self._merge_sotw)(t, response)
            status = self._try_apply(t, candidate)
        except Rejected as e:
            return [self._nack(t, response.nonce, version, str(e))]
        now = time.time()
        st.updated = {n: st.updated[n] if n in st.updated and st.versions.get(n) == v else now
                      for n, v in versions.items()}
        st.versions = versions
        self.resources = candidate
        st.version, st.nonce, st.acks = version, response.nonce, st.acks + 1
        if status == "success" and all(self.types[w].acks for w in WILDCARD_TYPES):
            self._applied_event.set()  # ready: clusters and listeners received, and all they name
        self._count(f"xds.{SHORT_NAME[t].lower()}.update_{status}")
        log.info("xDS %s version %r: %d resources, %s", SHORT_NAME[t], version, len(candidate.of(t)),
                 "applied" if status == "success" else f"waiting ({self.warming})")
        return [self._ack(t, response.nonce, version), *self._resubscribe()]

    def _merge_delta(self, t, response):
        st = self.types[t]
        held = dict(self.resources.of(t))
        versions = dict(st.versions)
        for r in response.resources:
            if not r.HasField("resource"):  # a name the server does not have
                held.pop(r.name, None)
                versions.pop(r.name, None)
                continue
            msg = _decode(t, r.resource)
            held[r.name] = msg
            versions[r.name] = r.version
        for name in response.removed_resources:
            held.pop(name, None)
            versions.pop(name, None)
        return self._with(t, held), {n: versions.get(n, "") for n in held}

    def _merge_sotw(self, t, response):
        st = self.types[t]
        got = {}
        for any_msg in response.resources:
            msg = _decode(t, any_msg)
            name = getattr(msg, "name", "") or getattr(msg, "cluster_name", "")
            got[name] = msg
        if st.wildcard:
            held = got  # LDS and CDS: every response is the whole set
        else:  # RDS, EDS, SDS: a response updates what it names, of what is subscribed
            held = {n: m for n, m in {**self.resources.of(t), **got}.items() if n in st.subscribed}
        versions = {n: response.version_info if n in got else st.versions.get(n, "") for n in held}
        return self._with(t, held), versions

    def _with(self, t, held) -> Resources:
        out = Resources()
        for typ in SUBSCRIBE_ORDER:
            out.by_type[typ] = dict(self.resources.of(typ))
        out.by_type[t] = held
        return out

    def _endpoints_only(self, t, candidate: Resources) -> dict | None:
        """{cluster name: its new ClusterLoadAssignment} when candidate differs from
        the running resources only in the endpoints of clusters it keeps; else None."""
        from envoy.config.cluster.v3 import cluster_pb2

        applied = self.applied
        if t != EDS or self._apply_endpoints is None or applied is None:
            return None
        if any(candidate.of(typ) != applied.of(typ) for typ in SUBSCRIBE_ORDER if typ != EDS):
            return None
        old, new = applied.of(EDS), candidate.of(EDS)
        if set(old) != set(new):
            return None
        changed = {n for n, cla in new.items() if cla is not old[n] and cla != old[n]}
        if any(new[n].HasField("policy") for n in changed):
            return None  # materialize carries the policy: the full path
        return {name: new[c.eds_cluster_config.service_name or name]
                for name, c in candidate.of(CDS).items()
                if c.type == cluster_pb2.Cluster.EDS and (c.eds_cluster_config.service_name or name) in changed}

    def _try_apply(self, t, candidate: Resources) -> str:
        """'success' (applied) or 'warming' (incomplete: accepted, applied later); Rejected."""
        endpoints = self._endpoints_only(t, candidate)
        if endpoints is not None:  # an EDS update alone: no materialize, no compile
            try:
                if endpoints:
                    self._apply_endpoints(endpoints)
            except (ConfigError, EngineError) as e:
                raise Rejected(str(e)) from None
            self.warming = None
            self.applied = candidate
            self.applied_at = time.time()
            return "success"
        try:
            bootstrap = materialize(candidate, self._secrets() or (), self._base)
        except Incomplete as e:
            self.warming = str(e)
            return "warming"
        except (ConfigError, ValueError, TypeError) as e:
            raise Rejected(str(e)) from None
        try:
            self._apply(bootstrap)
        except (ConfigError, EngineError) as e:
            raise Rejected(str(e)) from None
        self.warming = None
        self.applied = candidate
        self.applied_at = time.time()
        return "success"

    def refresh(self, reason: str = "secrets changed") -> bool:
        """Re-materializes and re-applies with the current secrets (a new certificate).
        The accepted resources if complete, else those of the running snapshot."""
        with self._lock:
            source = self.resources
            try:
                bootstrap = materialize(source, self._secrets() or (), self._base)
            except Incomplete:
                if self.applied is None:
                    return False
                source = self.applied
                bootstrap = materialize(source, self._secrets() or (), self._base)
            try:
                self._apply(bootstrap)
            except (ConfigError, EngineError) as e:
                log.error("re-applying the xDS config (%s) failed, keeping the running one: %s", reason, e)
                return False
            self.applied = source
            self.applied_at = time.time()
            if source is self.resources:
                self.warming = None
            return True

    # -- requests -------------------------------------------------------------------------

    def _ack(self, t, nonce, version):
        from envoy.service.discovery.v3 import discovery_pb2

        if self.mode == DELTA:
            return discovery_pb2.DeltaDiscoveryRequest(type_url=t, response_nonce=nonce)
        st = self.types[t]
        req = discovery_pb2.DiscoveryRequest(type_url=t, version_info=version, response_nonce=nonce)
        if not st.wildcard:
            req.resource_names.extend(sorted(st.subscribed))
        return req

    def _nack(self, t, nonce, version, message):
        from envoy.service.discovery.v3 import discovery_pb2

        st = self.types[t]
        st.nacks += 1
        st.last_nack = {"version": version, "nonce": nonce, "message": message, "time": time.time()}
        self._count(f"xds.{SHORT_NAME[t].lower()}.update_rejected")
        log.error("xDS %s version %r rejected (NACK), keeping the running config: %s", SHORT_NAME[t], version,
                  message)
        if self.mode == DELTA:
            req = discovery_pb2.DeltaDiscoveryRequest(type_url=t, response_nonce=nonce)
        else:
            req = discovery_pb2.DiscoveryRequest(type_url=t, version_info=st.version, response_nonce=nonce)
            if not st.wildcard:
                req.resource_names.extend(sorted(st.subscribed))
        req.error_detail.code = INVALID_ARGUMENT
        req.error_detail.message = message
        return req

    def _resubscribe(self) -> list:
        """Requests for the EDS/RDS names the accepted clusters and listeners now use."""
        from envoy.service.discovery.v3 import discovery_pb2

        out = []
        for t, names in wanted_names(self.resources).items():
            st = self.types[t]
            if names == st.subscribed:
                continue
            added, removed = names - st.subscribed, st.subscribed - names
            st.subscribed = set(names)
            held = {n: m for n, m in self.resources.of(t).items() if n in names}
            self.resources.by_type[t] = held
            st.versions = {n: v for n, v in st.versions.items() if n in names}
            if self.mode == DELTA:
                out.append(discovery_pb2.DeltaDiscoveryRequest(
                    type_url=t, resource_names_subscribe=sorted(added), resource_names_unsubscribe=sorted(removed)))
            else:
                out.append(discovery_pb2.DiscoveryRequest(type_url=t, version_info=st.version,
                                                          response_nonce=st.last_nonce, resource_names=sorted(names)))
        return out

    # -- observation ----------------------------------------------------------------------

    def status(self) -> dict:
        """Per type: version and nonce last ACKed, the last NACK, counts, resources' versions."""
        with self._lock:
            return {
                "target": self.target, "mode": self.mode, "connected": self.connected, "streams": self.streams,
                "ready": self.ready, "warming": self.warming, "applied_at": self.applied_at,
                "types": {SHORT_NAME[t]: {"version": st.version, "nonce": st.nonce, "acks": st.acks,
                                          "nacks": st.nacks, "last_nack": st.last_nack,
                                          "subscribed": "*" if st.wildcard else sorted(st.subscribed),
                                          "resources": dict(st.versions)}
                          for t, st in self.types.items()},
            }

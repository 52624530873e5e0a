# cython: language_level=3, boundscheck=False, wraparound=False
"""meshcore._core: the only place where Python meets the C core.

Thin, typed wrappers over include/meshcore/*.h: the snapshot builder, the
engine (start / apply / stats / stop) and read-only views of the core's
policies for tests. Every call that can block (apply waits for workers to
switch snapshots, stop joins them) releases the GIL; no C code here or below
ever calls back into Python.
"""
from libc.stdint cimport int64_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy

from includes.access_log cimport *
from includes.balancer cimport *
from includes.engine cimport *
from includes.histogram cimport *
from includes.introspect cimport *
from includes.istio_metrics cimport *
from includes.overload cimport *
from includes.primitives cimport *
from includes.snapshot cimport *
from includes.stats cimport *


LB_ROUND_ROBIN = MC_LB_ROUND_ROBIN
LB_LEAST_REQUEST = MC_LB_LEAST_REQUEST
LB_RANDOM = MC_LB_RANDOM
IM_SOURCE = MC_IM_SOURCE
SPAN_SERVER = MC_SPAN_SERVER
ALOG_OPS = {name: i for i, name in enumerate((
    "LITERAL", "START_TIME", "PROTOCOL", "RESPONSE_CODE", "RESPONSE_FLAGS", "RESPONSE_CODE_DETAILS",
    "BYTES_RECEIVED", "BYTES_SENT", "DURATION", "UPSTREAM_HOST", "UPSTREAM_CLUSTER", "ROUTE_NAME",
    "DOWNSTREAM_REMOTE_ADDRESS", "DOWNSTREAM_PEER_URI_SAN", "UPSTREAM_PEER_URI_SAN",
    "UPSTREAM_REQUEST_ATTEMPT_COUNT", "TRACE_ID", "REQ_METHOD", "REQ_PATH", "REQ_AUTHORITY", "REQ_USER_AGENT",
    "REQ_REQUEST_ID", "REQ_FORWARDED_FOR", "RESP_UPSTREAM_SERVICE_TIME", "PROTOCOL_OR_TCP",
    "DURATION_MS_FLOAT", "GRPC_STATUS"))}  # the order of mc_alog_op_t
ALOG_TEXT, ALOG_JSON_VALUE, ALOG_JSON_STRING = MC_ALOG_STYLE_TEXT, MC_ALOG_STYLE_JSON_VALUE, MC_ALOG_STYLE_JSON_STRING
assert len(ALOG_OPS) == MC_ALOG_OP__COUNT, "ALOG_OPS must list mc_alog_op_t in order"
SPAN_CLIENT = MC_SPAN_CLIENT
IM_DESTINATION = MC_IM_DESTINATION
IM_PROTOCOLS = {MC_IM_PROTO_HTTP: "http", MC_IM_PROTO_GRPC: "grpc", MC_IM_PROTO_TCP: "tcp"}
IM_SECURITY = {MC_IM_SEC_UNKNOWN: "unknown", MC_IM_SEC_NONE: "none", MC_IM_SEC_MUTUAL_TLS: "mutual_tls"}

DEF ERRLEN = 512


# The overload manager's monitor kinds and actions, in the order of
# mc_om_monitor_kind_t and mc_om_action_t (meshcore/overload.h).
OVERLOAD_MONITOR_KINDS = ("fixed_heap", "injected_resource", "downstream_connections")
OVERLOAD_ACTIONS = (
    "envoy.overload_actions.stop_accepting_requests",
    "envoy.overload_actions.disable_http_keepalive",
    "envoy.overload_actions.stop_accepting_connections",
    "envoy.overload_actions.reject_incoming_connections",
    "envoy.overload_actions.shrink_heap",
)


class CoreError(Exception):
    """An operation the C core refused; the message is the core's."""


cdef bytes _b(s):
    return s.encode() if isinstance(s, str) else s


cdef class TlsCache:
    """OpenSSL contexts shared by TLS contexts of the same material, within
    and across compiles (net/tls_cache.c). One per engine."""
    cdef mc_tls_cache_t *c

    def __cinit__(self):
        self.c = mc_tls_cache_new()
        if self.c == NULL:
            raise MemoryError()

    def __dealloc__(self):
        mc_tls_cache_free(self.c)

    def begin(self):
        """A compile starts: contexts the last two compiles did not use are let go."""
        mc_tls_cache_begin(self.c)

    @property
    def counts(self):
        """(SSL_CTX held, lookups that found one, lookups that built one)."""
        cdef uint32_t n = 0
        cdef uint64_t hits = 0, misses = 0
        mc_tls_cache_counts(self.c, &n, &hits, &misses)
        return n, hits, misses


cdef class SnapshotBuilder:
    """Describes one config snapshot to the core (see meshcore/snapshot.h).

    Methods return the index of what they added; a bad value raises
    CoreError with the core's message. Consumed by Engine.apply().
    """
    cdef mc_snapshot_builder_t *b
    cdef TlsCache tls_cache  # kept alive while the builder borrows it
    cdef public bint reads_files  # the compile read certificate files (compile_snapshot)

    def use_tls_cache(self, TlsCache cache not None):
        self.tls_cache = cache
        mc_sb_set_tls_cache(self.b, cache.c)

    def __cinit__(self):
        self.b = mc_sb_new()
        if self.b == NULL:
            raise MemoryError()

    def __dealloc__(self):
        mc_sb_free(self.b)

    cdef int _check(self, int rc) except -1:
        if rc < 0:
            raise CoreError(mc_sb_error(self.b).decode())
        return rc

    def add_cluster(self, name, int lb_policy, uint32_t connect_timeout_ms):
        return self._check(mc_sb_add_cluster(self.b, _b(name), lb_policy, connect_timeout_ms))

    def add_endpoint(self, int cluster, ip, uint16_t port, uint32_t weight=1):
        return self._check(mc_sb_add_endpoint(self.b, cluster, _b(ip), port, weight))

    def add_listener(self, name, ip, uint16_t port, stat_prefix=None, uint32_t backlog=0):
        cdef bytes sp = _b(stat_prefix or "")
        return self._check(mc_sb_add_listener(self.b, _b(name), _b(ip), port, sp, backlog))

    def set_reuse_port(self, int listener, bint on):
        return self._check(mc_sb_set_reuse_port(self.b, listener, on))

    def set_global_downstream_max_connections(self, uint64_t max_connections):
        return self._check(mc_sb_set_global_downstream_max_connections(self.b, max_connections))

    def set_connection_limit(self, int listener, stat_prefix, uint32_t max_connections):
        return self._check(mc_sb_set_connection_limit(self.b, listener, _b(stat_prefix),
                                                      max_connections))

    def set_tcp_proxy(self, int listener, stat_prefix, uint32_t idle_timeout_ms,
                      uint32_t max_connect_attempts):
        return self._check(mc_sb_set_tcp_proxy(self.b, listener, _b(stat_prefix),
                                               idle_timeout_ms, max_connect_attempts))

    def add_tcp_proxy_cluster(self, int listener, cluster, uint32_t weight=1):
        return self._check(mc_sb_add_tcp_proxy_cluster(self.b, listener, _b(cluster), weight))

    def set_istio_stats(self, int listener, int reporter, peer_metadata=None, peer_metadata_id=None):
        """istio.stats (and istio.metadata_exchange with the header values)
        on the listener's last chain; reporter: IM_SOURCE / IM_DESTINATION."""
        cdef mc_sb_istio_stats_t cfg
        cdef bytes md = _b(peer_metadata) if peer_metadata is not None else None
        cdef bytes md_id = _b(peer_metadata_id) if peer_metadata_id is not None else None
        cfg.reporter = reporter
        cfg.peer_metadata = NULL
        cfg.peer_metadata_id = NULL
        if md is not None:
            cfg.peer_metadata = md
        if md_id is not None:
            cfg.peer_metadata_id = md_id
        return self._check(mc_sb_set_istio_stats(self.b, listener, &cfg))

    def set_cluster_service(self, int cluster, uint32_t service_id):
        return self._check(mc_sb_set_cluster_service(self.b, cluster, service_id))


_SPLICE = {"auto": MC_SPLICE_AUTO, "always": MC_SPLICE_ALWAYS, "never": MC_SPLICE_NEVER}


cdef str _s(const char *p):
    return p.decode("utf-8", "replace")


cdef dict _record(mc_alog_record_t *r):
    return {
        "log_id": r.log_id, "kind": "http" if r.kind == MC_ALOG_HTTP else "tcp", "http_minor": r.http_minor,
        "status": r.status, "flags": r.flags, "attempts": r.attempts, "start_us": r.start_us,
        "duration_us": r.duration_us, "upstream_service_us": r.upstream_service_us,
        "bytes_rx": r.bytes_rx, "bytes_tx": r.bytes_tx,
        "method": _s(r.method), "authority": _s(r.authority), "path": _s(r.path),
        "user_agent": _s(r.user_agent), "request_id": _s(r.request_id), "forwarded_for": _s(r.forwarded_for),
        "route": _s(r.route), "upstream_cluster": _s(r.upstream_cluster), "upstream_host": _s(r.upstream_host),
        "downstream_peer": _s(r.downstream_peer), "trace_id": _s(r.trace_id), "span_id": _s(r.span_id),
        "parent_span_id": _s(r.parent_span_id), "sampled": bool(r.sampled),
        "downstream_principal": _s(r.downstream_principal), "upstream_principal": _s(r.upstream_principal),
        "details": _s(r.details), "tracer_id": r.tracer_id,
        "span_kind": {MC_SPAN_SERVER: "server", MC_SPAN_CLIENT: "client"}.get(r.span_kind),
    }


cdef class Engine:
    """The data-plane engine: worker threads with their own event loops."""
    cdef mc_engine_t *e

    def __cinit__(self, uint32_t concurrency=0, splice="auto",
                  uint32_t max_connections_per_worker=0):
        cdef mc_engine_opts_t o
        cdef char err[ERRLEN]
        if splice not in _SPLICE:
            raise ValueError(f"splice must be one of {sorted(_SPLICE)}, not {splice!r}")
        mc_engine_opts_default(&o)
        o.concurrency = concurrency
        o.splice = _SPLICE[splice]
        o.max_connections_per_worker = max_connections_per_worker
        err[0] = 0
        self.e = mc_engine_new(&o, err, ERRLEN)
        if self.e == NULL:
            raise CoreError(err.decode())

    def __dealloc__(self):
        if self.e != NULL:
            with nogil:
                mc_engine_free(self.e)
            self.e = NULL

    def start(self):
        cdef char err[ERRLEN]
        cdef int rc
        with nogil:
            rc = mc_engine_start(self.e, err, ERRLEN)
        if rc < 0:
            raise CoreError(err.decode())

    def apply(self, SnapshotBuilder b not None):
        """Publishes b's snapshot; returns once every worker runs it."""
        cdef char err[ERRLEN]
        cdef int rc
        with nogil:
            rc = mc_engine_apply(self.e, b.b, err, ERRLEN)
        if rc < 0:
            raise CoreError(err.decode())

    def set_endpoints(self, changes):
        """changes: [(cluster name, [(ip, port, weight)])]: those clusters'
        endpoints replaced in a snapshot sharing the rest (meshcore/engine.h)."""
        cdef char err[ERRLEN]
        cdef int rc
        cdef _Arena a = _Arena()
        cdef uint32_t n = len(changes)
        cdef mc_sb_cluster_endpoints_t *cs = <mc_sb_cluster_endpoints_t *>a.alloc(n, sizeof(mc_sb_cluster_endpoints_t))
        cdef mc_sb_endpoint_t *eps
        for k, (cluster, endpoints) in enumerate(changes):
            eps = <mc_sb_endpoint_t *>a.alloc(len(endpoints), sizeof(mc_sb_endpoint_t))
            for i, (ip, port, weight) in enumerate(endpoints):
                eps[i].ip = a.s(ip)
                eps[i].port = port
                eps[i].weight = weight
            cs[k].cluster = a.s(cluster)
            cs[k].endpoints = eps
            cs[k].n_endpoints = len(endpoints)
        err[0] = 0
        with nogil:
            rc = mc_engine_set_endpoints(self.e, cs, n, err, ERRLEN)
        if rc < 0:
            raise CoreError(err.decode())

    def set_route_weights(self, changes):
        """changes: [(listener, chain, vhost index, route index, [weights])]:
        swapped in place; workers use them from their next pick."""
        cdef char err[ERRLEN]
        cdef int rc
        cdef _Arena a = _Arena()
        cdef uint32_t n = len(changes)
        cdef mc_route_weights_t *cs = <mc_route_weights_t *>a.alloc(n, sizeof(mc_route_weights_t))
        cdef uint32_t *w
        for k, (listener, chain, vhost, route, weights) in enumerate(changes):
            w = <uint32_t *>a.alloc(len(weights), sizeof(uint32_t))
            for i, x in enumerate(weights):
                w[i] = x
            cs[k].listener = a.s(listener)
            cs[k].chain, cs[k].vhost, cs[k].route = chain, vhost, route
            cs[k].weights, cs[k].n = w, len(weights)
        err[0] = 0
        with nogil:
            rc = mc_engine_set_route_weights(self.e, cs, n, err, ERRLEN)
        if rc < 0:
            raise CoreError(err.decode())

    def drain_listeners(self):
        with nogil:
            mc_engine_drain_listeners(self.e)

    def stop(self, uint32_t drain_timeout_ms=0):
        with nogil:
            mc_engine_stop(self.e, drain_timeout_ms)

    @property
    def concurrency(self):
        return mc_engine_concurrency(self.e)

    @property
    def generation(self):
        return mc_engine_generation(self.e)

    @property
    def active_sessions(self):
        return mc_engine_active_sessions(self.e)

    @property
    def downstream_cx_limit(self):
        """(the global downstream connection limit, 0 for none; True when the
        config set it, False when derived from RLIMIT_NOFILE)."""
        cdef int configured = 0
        cdef uint64_t n = mc_engine_downstream_cx_limit(self.e, &configured)
        return n, bool(configured)

    def set_overload(self, uint64_t refresh_interval_ms, monitors, triggers):
        """The overload manager (meshcore/overload.h). monitors: [(name, kind
        in OVERLOAD_MONITOR_KINDS, max, path)]; triggers: [(action index in
        OVERLOAD_ACTIONS, monitor index, scaled, lo, hi)]."""
        cdef mc_om_monitor_t ms[MC_OM_MAX_MONITORS]
        cdef mc_om_trigger_t ts[MC_OM_MAX_TRIGGERS]
        cdef char err[ERRLEN]
        if len(monitors) > MC_OM_MAX_MONITORS or len(triggers) > MC_OM_MAX_TRIGGERS:
            raise CoreError(f"overload_manager: at most {MC_OM_MAX_MONITORS} resource monitors "
                            f"and {MC_OM_MAX_TRIGGERS} triggers")
        cdef int k
        keep = []  # the encoded strings outlive the call
        for i, (name, kind, mx, path) in enumerate(monitors):
            bname, bpath = name.encode(), path.encode()
            keep.append((bname, bpath))
            ms[i].name = bname
            k = OVERLOAD_MONITOR_KINDS.index(kind)
            ms[i].kind = <mc_om_monitor_kind_t>k
            ms[i].max = mx
            ms[i].path = bpath
        for i, (action, monitor, scaled, lo, hi) in enumerate(triggers):
            k = OVERLOAD_ACTIONS.index(action)
            ts[i].action = <mc_om_action_t>k
            ts[i].monitor = monitor
            ts[i].scaled = 1 if scaled else 0
            ts[i].lo = lo
            ts[i].hi = hi
        if mc_engine_set_overload(self.e, refresh_interval_ms, ms, len(monitors), ts, len(triggers),
                                  err, ERRLEN) < 0:
            raise CoreError(err.decode())

    def overload_monitor(self, uint32_t i):
        """(pressure in [0, 1] or -1 before the first sample, failed updates)
        of resource monitor i as last sampled; None past the last."""
        cdef double p = 0
        cdef uint64_t failed = 0
        if mc_engine_overload_monitor(self.e, i, &p, &failed) < 0:
            return None
        return p, failed

    def overload_action(self, str name):
        """The action's state as last computed: 0 .. 1 (saturated)."""
        cdef int k = OVERLOAD_ACTIONS.index(name)
        return mc_engine_overload_action(self.e, <mc_om_action_t>k)

    def overload_sample(self):
        """One sampling round now."""
        with nogil:
            mc_engine_overload_sample(self.e)

    @staticmethod
    def derived_cx_limit(uint64_t nofile):
        """The global downstream connection limit the engine derives from a
        descriptor limit when the config sets none."""
        return mc_engine_derived_cx_limit(nofile)


    def host_outlier(self, cluster, ip, uint16_t port):
        """(ejected now, times ejected) of a cluster's host, or None if the engine has no such host."""
        cdef int ejected = 0
        cdef uint32_t ejections = 0
        c, a = cluster.encode(), ip.encode()
        if mc_engine_host_outlier(self.e, c, a, port, &ejected, &ejections) < 0:
            return None
        return bool(ejected), ejections

    # -- the log writer (meshcore/access_log.h) --

    def alog_add_sink(self, uint32_t log_id, path, int fd, http_format, tcp_format):
        """A sink for records with log_id: a file path, or fd when path is
        None. *_format: [(op, style, text or None)] (compiled by
        meshcore.telemetry.access_log)."""
        cdef char err[ERRLEN]
        cdef _Arena a = _Arena()
        cdef mc_alog_segment_t *segs[2]
        cdef uint32_t counts[2]
        cdef bytes p = _b(path) if path is not None else None
        cdef const char *cpath = NULL
        if p is not None:
            cpath = p
        for k, fmt in enumerate((http_format, tcp_format)):
            segs[k] = <mc_alog_segment_t *>a.alloc(len(fmt) or 1, sizeof(mc_alog_segment_t))
            counts[k] = len(fmt)
            for i, (op, style, text) in enumerate(fmt):
                segs[k][i].op = op
                segs[k][i].style = style
                if text is None:
                    segs[k][i].text = NULL
                    segs[k][i].len = 0
                else:
                    raw = _b(text)
                    segs[k][i].text = a.s(raw)
                    segs[k][i].len = len(raw)
        err[0] = 0
        if mc_engine_alog_add_sink(self.e, log_id, cpath, fd, segs[0], counts[0], segs[1], counts[1], err,
                                   ERRLEN) < 0:
            raise OSError(err.decode())

    def alog_flush(self):
        """Formats and writes every record produced so far."""
        with nogil:
            mc_engine_alog_flush(self.e)

    def drain_spans(self, uint32_t max_records=1024):
        """Sampled requests' records (dicts, as access-log records), oldest first."""
        cdef mc_alog_record_t *buf = <mc_alog_record_t *>calloc(max_records or 1, sizeof(mc_alog_record_t))
        cdef uint32_t n
        cdef uint64_t dropped = 0
        if buf == NULL:
            raise MemoryError()
        try:
            with nogil:
                n = mc_engine_drain_spans(self.e, buf, max_records, &dropped)
            return [_record(&buf[i]) for i in range(n)]
        finally:
            free(buf)

    @property
    def alog_counters(self):
        """(records dropped with a ring full, spans dropped, lines lost to write errors)."""
        cdef uint64_t ring = 0, spans = 0, errors = 0
        mc_engine_alog_counters(self.e, &ring, &spans, &errors)
        return ring, spans, errors

    @property
    def access_log_dropped(self):
        return self.alog_counters[0]

    def listeners(self):
        """[(name, bound address "ip:port", port)] of the current snapshot."""
        cdef char name[256]
        cdef char addr[128]
        cdef uint16_t port
        out = []
        for i in range(mc_engine_listener_count(self.e)):
            if mc_engine_listener_info(self.e, i, name, sizeof(name), addr, sizeof(addr), &port) == 0:
                out.append((name.decode(), addr.decode(), port))
        return out

    def stats(self):
        """Every scope, summed over workers:
        [(kind, name, [(slot, value, is_gauge)], {hist: (count, sum, [(upper, n)])})].
        Histogram values are microseconds; buckets are sparse (upper bound,
        count) pairs in increasing order."""
        cdef mc_stats_t *st = mc_engine_stats(self.e)
        cdef uint32_t n = mc_stats_scope_count(st)
        cdef mc_scope_kind_t kind
        cdef char name[MC_STATS_NAME_MAX]
        cdef int64_t vals[MC_STATS_SLOTS]
        cdef mc_hist_t *hist = <mc_hist_t *>calloc(1, sizeof(mc_hist_t))
        cdef uint32_t i, s, h, b
        if hist == NULL:
            raise MemoryError()
        out = []
        try:
            for i in range(1, n):  # scope 0 is the overflow sink
                if mc_stats_scope_info(st, i, &kind, name, sizeof(name)) < 0:
                    continue
                mc_stats_sum(st, i, vals)
                slots = [(mc_stats_slot_name(kind, s).decode(), vals[s],
                          bool(mc_stats_slot_is_gauge(kind, s)))
                         for s in range(mc_stats_slot_count(kind))]
                hists = {}
                for h in range(mc_stats_hist_count(kind)):
                    if mc_stats_sum_hist(st, i, h, hist) < 0:
                        continue
                    buckets = [(mc_hist_bucket_upper(b), hist.buckets[b])
                               for b in range(MC_HIST_BUCKETS) if hist.buckets[b]]
                    hists[mc_stats_hist_name(kind, h).decode()] = (hist.count, hist.sum, buckets)
                out.append((mc_stats_kind_name(kind).decode(), name.decode(), slots, hists))
        finally:
            free(hist)
        return out


    # -- Istio standard metrics (meshcore/istio_metrics.h) --

    def istio_rows(self, duration_bounds_us, bytes_bounds):
        """Every worker's label sets: [(key, worker, http, tcp)] with
        key = (reporter, protocol, security, code, flags, service, peer, principal, grpc)
        (peer and principal are worker-local indexes; grpc is grpc-status + 1, 0: none), http = (requests,
        duration (cumulative counts per bound, sum us), request bytes (counts,
        sum, count), response bytes (counts, sum, count)), tcp = (opened,
        closed, sent, received)."""
        cdef double db[32]
        cdef double bb[32]
        cdef uint32_t nd = min(len(duration_bounds_us), MC_IM_MAX_BOUNDS)
        cdef uint32_t nb = min(len(bytes_bounds), MC_IM_MAX_BOUNDS)
        cdef size_t cap = 64, n
        cdef mc_im_row_t *rows = NULL
        cdef mc_im_row_t *r
        for i in range(nd):
            db[i] = duration_bounds_us[i]
        for i in range(nb):
            bb[i] = bytes_bounds[i]
        try:
            while True:
                free(rows)
                rows = <mc_im_row_t *>calloc(cap, sizeof(mc_im_row_t))
                if rows == NULL:
                    raise MemoryError()
                with nogil:
                    n = mc_engine_im_export(self.e, db, nd, bb, nb, rows, cap)
                if n <= cap:
                    break
                cap = n + 64  # label sets appeared meanwhile: room for a few more
            out = []
            for i in range(n):
                r = &rows[i]
                k = r.key
                out.append((
                    (k.reporter, k.protocol, k.security, k.code, k.flags, k.service, k.peer, k.principal, k.grpc),
                    r.worker,
                    (r.requests,
                     ([r.duration[j] for j in range(nd)], r.duration_sum_us),
                     ([r.request_bytes[j] for j in range(nb)], r.request_bytes_sum, r.request_bytes_count),
                     ([r.response_bytes[j] for j in range(nb)], r.response_bytes_sum, r.response_bytes_count)),
                    (r.tcp_opened, r.tcp_closed, r.tcp_sent, r.tcp_received)))
            return out
        finally:
            free(rows)

    def istio_peer(self, uint32_t worker, uint32_t index):
        """The peer metadata (bytes, as sent) behind a worker-local index, or None."""
        cdef size_t n = 0
        cdef const char *p = mc_engine_im_peer(self.e, worker, index, &n)
        return p[:n] if p != NULL else None

    def istio_principal(self, uint32_t worker, uint32_t index):
        cdef const char *p = mc_engine_im_principal(self.e, worker, index)
        return p.decode(errors="replace") if p != NULL else None

    @property
    def istio_overflow(self):
        """(label sets, peers, principals) dropped because a table was full."""
        cdef uint64_t s, p, q
        mc_engine_im_overflow(self.e, &s, &p, &q)
        return s, p, q


# What the compiler dispatches on (type URLs, filter names) is defined once,
# in meshcore.xds_types; these are its spellings as an Any says them.
from meshcore import xds_types

_TCP_PROXY = xds_types.type_url(xds_types.TCP_PROXY)
_CONN_LIMIT = xds_types.type_url(xds_types.CONNECTION_LIMIT)
_HCM = xds_types.type_url(xds_types.HCM)
_FAULT = xds_types.type_url(xds_types.HTTP_FAULT)
_HTTP_RBAC = xds_types.type_url(xds_types.HTTP_RBAC)
_NETWORK_RBAC = xds_types.type_url(xds_types.NETWORK_RBAC)
_FAULT_FILTER = xds_types.FAULT_FILTER_NAME
_HTTP_PROTOCOL_OPTIONS = xds_types.UPSTREAM_HTTP_OPTIONS  # a key of typed_extension_protocol_options

include "compile_http.pxi"
include "compile_tls.pxi"
include "compile_rbac.pxi"
include "compile.pxi"
include "alog.pxi"

# The primitives for embedders (meshcore.http, .route, .balance, .tls).
include "prim_http.pxi"
include "prim_route.pxi"
include "prim_balance.pxi"
include "prim_tls.pxi"


# ---- the core's policies, exposed for reference tests -------------------

def hist_bucket(uint64_t value):
    """(index, lower, upper) of the histogram bucket holding value."""
    cdef uint32_t b = mc_hist_bucket(value)
    return b, mc_hist_bucket_lower(b), mc_hist_bucket_upper(b)


def retry_backoff_sequence(uint64_t seed, uint64_t base_ns, uint64_t max_ns, retries):
    """The back-offs (ns) the core picks before retries 1..len(retries) with
    its PRNG seeded by `seed`; retries: the retry numbers to ask for."""
    cdef uint64_t rng = seed
    return [mc_probe_retry_backoff(&rng, base_ns, max_ns, n) for n in retries]


def rand_sequence(uint64_t seed, int n):
    """The core's PRNG (xorshift64*) output from state `seed`."""
    cdef uint64_t rng = seed
    return [mc_probe_rand_next(&rng) for _ in range(n)]

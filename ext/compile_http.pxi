# Compilation of the HTTP data plane's xDS: http_connection_manager (route
# configuration, fault + router filters) and the clusters' HTTP options, into
# the spec structs of meshcore/snapshot.h. Envoy's defaults are applied here,
# next to the field they belong to.

from libc.string cimport memset

_DEFAULT_ROUTE_TIMEOUT_MS = 15000          # RouteAction.timeout
_DEFAULT_HCM_IDLE_TIMEOUT_MS = 3600 * 1000  # common_http_protocol_options.idle_timeout
_DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300 * 1000
_DEFAULT_REQUEST_HEADERS_TIMEOUT_MS = 10 * 1000  # meshcore, not Envoy (off): docs/hardening.md
_DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS = 3600 * 1000

# retry_on tokens -> MC_SB_RETRY_* bits. The gRPC conditions test the
# grpc-status of a response head (trailers-only responses), as Envoy's
# x-envoy-retry-grpc-on; refused-stream fires on an HTTP/2 REFUSED_STREAM.
_RETRY_ON = {
    "5xx": MC_SB_RETRY_5XX,
    "gateway-error": MC_SB_RETRY_GATEWAY_ERROR,
    "reset": MC_SB_RETRY_RESET,
    "connect-failure": MC_SB_RETRY_CONNECT_FAILURE,
    "retriable-4xx": MC_SB_RETRY_RETRIABLE_4XX,
    "retriable-status-codes": MC_SB_RETRY_RETRIABLE_STATUS_CODES,
    "refused-stream": MC_SB_RETRY_REFUSED_STREAM,
    "cancelled": MC_SB_RETRY_GRPC_CANCELLED,
    "deadline-exceeded": MC_SB_RETRY_GRPC_DEADLINE_EXCEEDED,
    "internal": MC_SB_RETRY_GRPC_INTERNAL,
    "resource-exhausted": MC_SB_RETRY_GRPC_RESOURCE_EXHAUSTED,
    "unavailable": MC_SB_RETRY_GRPC_UNAVAILABLE,
}
_H2_STREAM_WINDOW_MAX = 16 * 1024 * 1024  # a stream's response bytes buffered at most (bounded memory)
# RedirectAction.RedirectResponseCode -> status
_REDIRECT_CODES = {0: 301, 1: 302, 2: 303, 3: 307, 4: 308}
# FractionalPercent.DenominatorType -> multiplier to parts per million
_PPM = {0: 10000, 1: 100, 2: 1}


cdef class _Arena:
    """Keeps the bytes and C arrays a builder call reads alive until it returns."""
    cdef list keep
    cdef list ptrs

    def __cinit__(self):
        self.keep = []
        self.ptrs = []

    def __dealloc__(self):
        for p in self.ptrs:
            free(<void *><size_t>p)

    cdef const char *s(self, value):
        if value is None:
            return NULL
        cdef bytes b = value.encode() if isinstance(value, str) else bytes(value)
        self.keep.append(b)
        return <const char *>b

    cdef void *alloc(self, size_t n, size_t size) except NULL:
        cdef void *p = calloc(n if n else 1, size)
        if p == NULL:
            raise MemoryError()
        self.ptrs.append(<size_t>p)
        return p


def _ppm(pct):
    return min(pct.numerator * _PPM.get(pct.denominator, 1), 1000000)


cdef void _fill_fault(mc_sb_fault_t *f, fault):
    from google.protobuf.duration_pb2 import Duration  # noqa: F401  (type registered)
    f.present = 1
    if fault.HasField("delay"):
        f.delay_ms = _ms(fault.delay, "fixed_delay", 0)
        f.delay_ppm = _ppm(fault.delay.percentage) if fault.delay.HasField("percentage") else 0
    if fault.HasField("abort"):
        f.abort_status = fault.abort.http_status
        f.abort_ppm = _ppm(fault.abort.percentage) if fault.abort.HasField("percentage") else 0


cdef void _fill_ops(_Arena a, mc_sb_header_ops_t *o, adds, removes) except *:
    cdef mc_sb_header_op_t *ops
    cdef const char **names
    o.n_add = len(adds)
    if adds:
        ops = <mc_sb_header_op_t *>a.alloc(len(adds), sizeof(mc_sb_header_op_t))
        for i, hv in enumerate(adds):
            ops[i].name = a.s(hv.header.key)
            ops[i].value = a.s(hv.header.value)
            if hv.HasField("append"):  # deprecated BoolValue wins when set
                ops[i].action = MC_HDR_APPEND_OR_ADD if hv.append.value else MC_HDR_OVERWRITE_OR_ADD
            else:
                ops[i].action = hv.append_action
        o.add = ops
    o.n_remove = len(removes)
    if removes:
        names = <const char **>a.alloc(len(removes), sizeof(char *))
        for i, name in enumerate(removes):
            names[i] = a.s(name)
        o.remove = names


cdef void _fill_retry(_Arena a, mc_sb_retry_t *r, rp) except *:
    cdef uint16_t *codes
    memset(r, 0, sizeof(mc_sb_retry_t))
    for tok in rp.retry_on.split(","):
        tok = tok.strip()
        if tok:
            r.retry_on |= _RETRY_ON[tok]
    r.num_retries = _u32(rp, "num_retries", 1)
    r.per_try_timeout_ms = _ms(rp, "per_try_timeout", 0)
    if rp.HasField("retry_back_off"):
        r.base_interval_ms = _ms(rp.retry_back_off, "base_interval", 25)
        r.max_interval_ms = _ms(rp.retry_back_off, "max_interval", r.base_interval_ms * 10)
    else:
        r.base_interval_ms = 25
        r.max_interval_ms = 250
    r.previous_hosts = int(any(p.name == "envoy.retry_host_predicates.previous_hosts"
                               for p in rp.retry_host_predicate))
    r.host_selection_max_attempts = rp.host_selection_retry_max_attempts
    r.n_codes = len(rp.retriable_status_codes)
    if r.n_codes:
        codes = <uint16_t *>a.alloc(r.n_codes, sizeof(uint16_t))
        for i, c in enumerate(rp.retriable_status_codes):
            codes[i] = c
        r.codes = codes


cdef void _fill_matcher(_Arena a, mc_sb_matcher_t *m, name, sm, present, invert) except *:
    """sm: a StringMatcher or None; present: presence-only match."""
    m.name = a.s(name)
    m.invert = 1 if invert else 0
    if sm is None or present:
        m.kind = MC_STR_PRESENT
        return
    which = sm.WhichOneof("match_pattern")
    m.ignore_case = 1 if sm.ignore_case else 0
    if which == "exact":
        m.kind, m.value = MC_STR_EXACT, a.s(sm.exact)
    elif which == "prefix":
        m.kind, m.value = MC_STR_PREFIX, a.s(sm.prefix)
    elif which == "suffix":
        m.kind, m.value = MC_STR_SUFFIX, a.s(sm.suffix)
    elif which == "contains":
        m.kind, m.value = MC_STR_CONTAINS, a.s(sm.contains)
    elif which == "safe_regex":
        m.kind, m.value = MC_STR_REGEX, a.s(sm.safe_regex.regex)
    else:
        raise CoreError(f"string matcher {which!r} cannot be compiled")


cdef void _fill_header_matcher(_Arena a, mc_sb_matcher_t *m, hm) except *:
    from envoy.type.matcher.v3 import string_pb2

    spec = hm.WhichOneof("header_match_specifier")
    if spec == "string_match":
        _fill_matcher(a, m, hm.name, hm.string_match, False, hm.invert_match)
    elif spec == "present_match":
        # present_match: false means "absent", i.e. inverted presence.
        _fill_matcher(a, m, hm.name, None, True, hm.invert_match != (not hm.present_match))
    elif spec in ("exact_match", "prefix_match", "suffix_match", "contains_match"):
        sm = string_pb2.StringMatcher(**{spec[:-len("_match")]: getattr(hm, spec)})
        _fill_matcher(a, m, hm.name, sm, False, hm.invert_match)
    elif spec == "safe_regex_match":
        sm = string_pb2.StringMatcher()
        sm.safe_regex.regex = hm.safe_regex_match.regex
        _fill_matcher(a, m, hm.name, sm, False, hm.invert_match)
    else:
        _fill_matcher(a, m, hm.name, None, True, hm.invert_match)


cdef void _fill_route(_Arena a, mc_sb_route_t *r, route) except *:
    from envoy.extensions.filters.http.fault.v3 import fault_pb2

    cdef mc_sb_matcher_t *ms
    cdef const char **names
    cdef uint32_t *weights
    cdef mc_sb_mirror_t *mirrors
    cdef mc_sb_hash_policy_t *hashes
    memset(r, 0, sizeof(mc_sb_route_t))
    r.name = a.s(route.name)
    m = route.match
    spec = m.WhichOneof("path_specifier")
    r.case_sensitive = m.case_sensitive.value if m.HasField("case_sensitive") else 1
    if spec == "prefix":
        r.path_kind, r.path = MC_PATH_PREFIX, a.s(m.prefix)
    elif spec == "path":
        r.path_kind, r.path = MC_PATH_EXACT, a.s(m.path)
    elif spec == "safe_regex":
        r.path_kind, r.path = MC_PATH_REGEX, a.s(m.safe_regex.regex)
    elif spec == "path_separated_prefix":
        r.path_kind, r.path = MC_PATH_SEPARATED_PREFIX, a.s(m.path_separated_prefix)
    else:
        raise CoreError(f"route {route.name!r}: path specifier {spec!r} cannot be compiled")
    if m.headers:
        ms = <mc_sb_matcher_t *>a.alloc(len(m.headers), sizeof(mc_sb_matcher_t))
        for i, hm in enumerate(m.headers):
            _fill_header_matcher(a, &ms[i], hm)
        r.headers, r.n_headers = ms, len(m.headers)
    if m.query_parameters:
        ms = <mc_sb_matcher_t *>a.alloc(len(m.query_parameters), sizeof(mc_sb_matcher_t))
        for i, qm in enumerate(m.query_parameters):
            if qm.HasField("string_match"):
                _fill_matcher(a, &ms[i], qm.name, qm.string_match, False, False)
            else:
                _fill_matcher(a, &ms[i], qm.name, None, True, False)
        r.query, r.n_query = ms, len(m.query_parameters)

    action = route.WhichOneof("action")
    if action == "route":
        ra = route.route
        r.action = MC_ACTION_ROUTE
        if ra.WhichOneof("cluster_specifier") == "weighted_clusters":
            wcs = list(ra.weighted_clusters.clusters)
        else:
            wcs = None
        n = len(wcs) if wcs else 1
        names = <const char **>a.alloc(n, sizeof(char *))
        weights = <uint32_t *>a.alloc(n, sizeof(uint32_t))
        if wcs:
            for i, wc in enumerate(wcs):
                names[i] = a.s(wc.name)
                weights[i] = _u32(wc, "weight", 1)
        else:
            names[0] = a.s(ra.cluster)
            weights[0] = 1
        r.clusters, r.weights, r.n_clusters = names, weights, n
        r.timeout_ms = _ms(ra, "timeout", _DEFAULT_ROUTE_TIMEOUT_MS)
        msd = ra.max_stream_duration
        if ra.HasField("max_stream_duration"):
            # Envoy's router ignores the deprecated pair once max_stream_duration is set
            if msd.HasField("grpc_timeout_header_max"):
                r.grpc_timeout_header = 1
                r.grpc_timeout_max_ms = _ms(msd, "grpc_timeout_header_max", 0)
                r.grpc_timeout_offset_ms = _ms(msd, "grpc_timeout_header_offset", 0)
            if msd.HasField("max_stream_duration"):
                r.stream_duration = 1
                r.stream_duration_ms = _ms(msd, "max_stream_duration", 0)
        elif ra.HasField("max_grpc_timeout"):
            r.max_grpc_timeout = 1
            r.max_grpc_timeout_ms = _ms(ra, "max_grpc_timeout", 0)
            r.grpc_offset_ms = _ms(ra, "grpc_timeout_offset", 0)
        if ra.HasField("retry_policy"):
            r.has_retry = 1
            _fill_retry(a, &r.retry, ra.retry_policy)
        if ra.prefix_rewrite:
            r.prefix_rewrite = a.s(ra.prefix_rewrite)
        if ra.HasField("regex_rewrite"):
            r.regex_rewrite = a.s(ra.regex_rewrite.pattern.regex)
            r.regex_substitution = a.s(ra.regex_rewrite.substitution)
        if ra.host_rewrite_literal:
            r.host_rewrite = a.s(ra.host_rewrite_literal)
        if ra.request_mirror_policies:
            mirrors = <mc_sb_mirror_t *>a.alloc(len(ra.request_mirror_policies), sizeof(mc_sb_mirror_t))
            for i, mp in enumerate(ra.request_mirror_policies):
                mirrors[i].cluster = a.s(mp.cluster)
                mirrors[i].ppm = (_ppm(mp.runtime_fraction.default_value)
                                  if mp.HasField("runtime_fraction") else 1000000)
            r.mirrors, r.n_mirrors = mirrors, len(ra.request_mirror_policies)
        if ra.hash_policy:
            hashes = <mc_sb_hash_policy_t *>a.alloc(len(ra.hash_policy), sizeof(mc_sb_hash_policy_t))
            for i, hp in enumerate(ra.hash_policy):
                kind = hp.WhichOneof("policy_specifier")
                if kind == "header":
                    hashes[i].kind, hashes[i].name = MC_HASH_HEADER, a.s(hp.header.header_name)
                elif kind == "cookie":
                    hashes[i].kind, hashes[i].name = MC_HASH_COOKIE, a.s(hp.cookie.name)
                else:
                    hashes[i].kind = MC_HASH_SOURCE_IP
                hashes[i].terminal = 1 if hp.terminal else 0
            r.hash, r.n_hash = hashes, len(ra.hash_policy)
        if _FAULT_FILTER in route.typed_per_filter_config:
            f = fault_pb2.HTTPFault()
            route.typed_per_filter_config[_FAULT_FILTER].Unpack(f)
            _fill_fault(&r.fault, f)
    elif action == "redirect":
        rd = route.redirect
        r.action = MC_ACTION_REDIRECT
        if rd.WhichOneof("scheme_rewrite_specifier") == "https_redirect" and rd.https_redirect:
            r.redirect_scheme = a.s("https")
        elif rd.scheme_redirect:
            r.redirect_scheme = a.s(rd.scheme_redirect)
        if rd.host_redirect:
            r.redirect_host = a.s(rd.host_redirect)
        r.redirect_port = rd.port_redirect
        if rd.WhichOneof("path_rewrite_specifier") == "path_redirect":
            r.redirect_path = a.s(rd.path_redirect)
        elif rd.WhichOneof("path_rewrite_specifier") == "prefix_rewrite":
            r.redirect_prefix = a.s(rd.prefix_rewrite)
        r.redirect_code = _REDIRECT_CODES.get(rd.response_code, 301)
        r.strip_query = 1 if rd.strip_query else 0
    elif action == "direct_response":
        dr = route.direct_response
        r.action = MC_ACTION_DIRECT
        r.direct_status = dr.status
        body = b""
        if dr.HasField("body"):
            which = dr.body.WhichOneof("specifier")
            body = dr.body.inline_string.encode() if which == "inline_string" else bytes(dr.body.inline_bytes)
        a.keep.append(body)
        r.direct_body = <const char *>body
        r.direct_body_len = len(body)
    else:
        raise CoreError(f"route {route.name!r}: action {action!r} cannot be compiled")
    _fill_ops(a, &r.request_ops, route.request_headers_to_add, route.request_headers_to_remove)
    _fill_ops(a, &r.response_ops, route.response_headers_to_add, route.response_headers_to_remove)


cdef void _compile_hcm(SnapshotBuilder b, int li, hcm, uint32_t log_id, trace=None) except *:
    # hcm: the HttpConnectionManager message, unpacked once (meshcore.plan.ChainPlan.hcm)

    cdef _Arena a = _Arena()
    cdef mc_sb_hcm_t h
    cdef mc_sb_route_t route
    cdef mc_sb_header_ops_t req_ops, resp_ops
    cdef mc_sb_retry_t retry
    cdef const char **domains
    cdef int vi
    memset(&h, 0, sizeof(h))
    h.stat_prefix = a.s(hcm.stat_prefix)
    h.access_log_id = log_id
    if trace is not None:
        h.tracer_id, h.random_sampling, h.span_kind = trace
    cp = hcm.common_http_protocol_options
    h.idle_timeout_ms = _ms(cp, "idle_timeout", _DEFAULT_HCM_IDLE_TIMEOUT_MS)
    h.max_requests_per_connection = _u32(cp, "max_requests_per_connection", 0)
    h.max_headers_count = _u32(cp, "max_headers_count", 100)
    h.headers_with_underscores_action = cp.headers_with_underscores_action  # ALLOW by default, as Envoy
    h.stream_idle_timeout_ms = _ms(hcm, "stream_idle_timeout", _DEFAULT_STREAM_IDLE_TIMEOUT_MS)
    h.request_timeout_ms = _ms(hcm, "request_timeout", 0)
    h.max_stream_duration_ms = _ms(cp, "max_stream_duration", 0)
    # 10 s when unset, not Envoy's "off": a sidecar's safe default (docs/hardening.md)
    h.request_headers_timeout_ms = _ms(hcm, "request_headers_timeout", _DEFAULT_REQUEST_HEADERS_TIMEOUT_MS)
    h.max_request_headers_kb = _u32(hcm, "max_request_headers_kb", 60)
    h.generate_request_id = hcm.generate_request_id.value if hcm.HasField("generate_request_id") else 1
    h.preserve_external_request_id = 1 if hcm.preserve_external_request_id else 0
    h.use_remote_address = 1 if hcm.use_remote_address.value else 0
    h.xff_num_trusted_hops = hcm.xff_num_trusted_hops
    if hcm.server_name:
        h.server_name = a.s(hcm.server_name)
    po = hcm.http_protocol_options  # HTTP/1.0: refused with 426 unless accept_http_10 (Envoy's default)
    h.accept_http_10 = 1 if po.accept_http_10 else 0
    if po.accept_http_10 and po.default_host_for_http_10:
        h.default_host_for_http_10 = a.s(po.default_host_for_http_10)
    h.normalize_path = 1 if hcm.normalize_path.value else 0  # unset: off, as Envoy's runtime default
    h.merge_slashes = 1 if hcm.merge_slashes else 0
    h.path_with_escaped_slashes_action = hcm.path_with_escaped_slashes_action
    h.codec_type = hcm.codec_type  # AUTO, HTTP1, HTTP2: Envoy's numbers
    h2 = hcm.http2_protocol_options  # unset fields: the C defaults (100 streams, 64 KiB, 1 MiB)
    h.h2_max_concurrent_streams = _u32(h2, "max_concurrent_streams", 0)
    h.h2_initial_stream_window = _u32(h2, "initial_stream_window_size", 0)
    h.h2_initial_connection_window = _u32(h2, "initial_connection_window_size", 0)
    h.h2_max_outbound_control_frames = _u32(h2, "max_outbound_control_frames", 0)
    if h2.HasField("max_consecutive_inbound_frames_with_empty_payload"):
        h.h2_max_empty_frames = h2.max_consecutive_inbound_frames_with_empty_payload.value + 1
    _fill_keepalive(&h.h2_keepalive, h2)
    # upgrade_configs: the websocket upgrade (the only type the schema accepts); enabled defaults to true
    h.upgrade_websocket = any(u.upgrade_type.lower() == "websocket" and (u.enabled.value if u.HasField("enabled")
                                                                         else True) for u in hcm.upgrade_configs)
    rbac_filters = []
    for f in hcm.http_filters:
        if f.typed_config.type_url == _FAULT:
            _fill_fault(&h.fault, xds_types.unpack(f.typed_config))
        elif f.typed_config.type_url == _HTTP_RBAC:
            rbac_filters.append(xds_types.unpack(f.typed_config).rules)
    rc = hcm.route_config
    _fill_ops(a, &h.request_ops, rc.request_headers_to_add, rc.request_headers_to_remove)
    _fill_ops(a, &h.response_ops, rc.response_headers_to_add, rc.response_headers_to_remove)
    b._check(mc_sb_set_hcm(b.b, li, &h))
    for rules in rbac_filters:
        _add_rbac(b, li, rules, 1)
    for vh in rc.virtual_hosts:
        domains = <const char **>a.alloc(len(vh.domains), sizeof(char *))
        for i, d in enumerate(vh.domains):
            domains[i] = a.s(d)
        _fill_ops(a, &req_ops, vh.request_headers_to_add, vh.request_headers_to_remove)
        _fill_ops(a, &resp_ops, vh.response_headers_to_add, vh.response_headers_to_remove)
        if vh.HasField("retry_policy"):
            _fill_retry(a, &retry, vh.retry_policy)
            vi = b._check(mc_sb_add_vhost(b.b, li, a.s(vh.name), domains, len(vh.domains), &req_ops,
                                          &resp_ops, &retry))
        else:
            vi = b._check(mc_sb_add_vhost(b.b, li, a.s(vh.name), domains, len(vh.domains), &req_ops,
                                          &resp_ops, NULL))
        for rt in vh.routes:
            _fill_route(a, &route, rt)
            b._check(mc_sb_add_route(b.b, li, vi, &route))


cdef uint32_t _ms32(msg, field):
    return min(_ms(msg, field, 0), 0xFFFFFFFF)  # past 49 days: as good as never


cdef void _fill_keepalive(mc_sb_h2_keepalive_t *k, o) except *:
    # Http2ProtocolOptions.connection_keepalive; absent: all 0 (no PING)
    if not o.HasField("connection_keepalive"):
        return
    ka = o.connection_keepalive
    k.interval_ms = _ms32(ka, "interval")
    k.timeout_ms = _ms32(ka, "timeout")
    k.idle_interval_ms = _ms32(ka, "connection_idle_interval")
    jitter = ka.interval_jitter.value if ka.HasField("interval_jitter") else 15.0  # Envoy's default
    k.jitter_ms = <uint32_t>(jitter * k.interval_ms / 100)  # as Envoy: random() % (percent * interval / 100)


cdef void _fill_h2_options(mc_sb_cluster_http_t *h, o) except *:
    # core.v3.Http2ProtocolOptions toward the upstream; 0 keeps the core's
    # defaults (the peer's stream limit, 64 KiB stream and 1 MiB connection windows)
    h.h2_max_concurrent_streams = _u32(o, "max_concurrent_streams", 0)
    h.h2_initial_stream_window = min(_u32(o, "initial_stream_window_size", 0), _H2_STREAM_WINDOW_MAX)
    h.h2_initial_connection_window = _u32(o, "initial_connection_window_size", 0)
    _fill_keepalive(&h.h2_keepalive, o)


def cluster_speaks_h2(c):
    """Whether a Cluster may speak HTTP/2 upstream (explicit, or the downstream's protocol)."""
    from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

    if _HTTP_PROTOCOL_OPTIONS in c.typed_extension_protocol_options:
        po = http_protocol_options_pb2.HttpProtocolOptions()
        c.typed_extension_protocol_options[_HTTP_PROTOCOL_OPTIONS].Unpack(po)
        which = po.WhichOneof("upstream_protocol_options")
        return (which == "use_downstream_protocol_config"
                or (which == "explicit_http_config" and po.explicit_http_config.HasField("http2_protocol_options")))
    return c.HasField("http2_protocol_options")


cdef void _compile_cluster_http(SnapshotBuilder b, int ci, c) except *:
    from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

    cdef mc_sb_cluster_http_t h
    memset(&h, 0, sizeof(h))
    h.max_connections = h.max_pending_requests = h.max_requests = 1024
    h.max_retries = 3
    for t in c.circuit_breakers.thresholds:
        if t.priority == 0:  # DEFAULT
            h.max_connections = _u32(t, "max_connections", 1024)
            h.max_pending_requests = _u32(t, "max_pending_requests", 1024)
            h.max_requests = _u32(t, "max_requests", 1024)
            h.max_retries = _u32(t, "max_retries", 3)
    if c.HasField("outlier_detection"):
        od = c.outlier_detection
        h.outlier = 1
        # Envoy enforces consecutive 5xx by default (100%) and consecutive
        # gateway failures only when asked (0% by default); meshcore treats any
        # enforcing percentage above 0 as "on".
        h.consecutive_5xx = _u32(od, "consecutive_5xx", 5) if _u32(od, "enforcing_consecutive_5xx", 100) else 0
        h.consecutive_gateway_failure = (_u32(od, "consecutive_gateway_failure", 5)
                                         if _u32(od, "enforcing_consecutive_gateway_failure", 0) else 0)
        h.interval_ms = _ms(od, "interval", 10000)
        h.base_ejection_ms = _ms(od, "base_ejection_time", 30000)
        h.max_ejection_ms = _ms(od, "max_ejection_time", 300000)
        h.max_ejection_percent = _u32(od, "max_ejection_percent", 10)
    h.idle_timeout_ms = _DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS
    h.max_requests_per_connection = _u32(c, "max_requests_per_connection", 0)
    if _HTTP_PROTOCOL_OPTIONS in c.typed_extension_protocol_options:
        po = http_protocol_options_pb2.HttpProtocolOptions()
        c.typed_extension_protocol_options[_HTTP_PROTOCOL_OPTIONS].Unpack(po)
        cp = po.common_http_protocol_options
        h.idle_timeout_ms = _ms(cp, "idle_timeout", _DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS)
        h.max_requests_per_connection = _u32(cp, "max_requests_per_connection", h.max_requests_per_connection)
        which = po.WhichOneof("upstream_protocol_options")
        if which == "explicit_http_config" and po.explicit_http_config.HasField("http2_protocol_options"):
            h.protocol = MC_UPSTREAM_HTTP2
            _fill_h2_options(&h, po.explicit_http_config.http2_protocol_options)
        elif which == "use_downstream_protocol_config":
            h.protocol = MC_UPSTREAM_DOWNSTREAM
            _fill_h2_options(&h, po.use_downstream_protocol_config.http2_protocol_options)
    elif c.HasField("http2_protocol_options"):  # the deprecated cluster field
        h.protocol = MC_UPSTREAM_HTTP2
        _fill_h2_options(&h, c.http2_protocol_options)
    if c.HasField("ring_hash_lb_config"):
        h.ring_min = _u32(c.ring_hash_lb_config, "minimum_ring_size", 1024)
        h.ring_max = _u32(c.ring_hash_lb_config, "maximum_ring_size", 8 * 1024 * 1024)
    b._check(mc_sb_set_cluster_http(b.b, ci, &h))


def pem_uri_san(pem):
    """The URI SAN (SPIFFE ID) of the first certificate in PEM bytes, or None."""
    cdef char buf[1024]
    cdef bytes p = pem if isinstance(pem, bytes) else pem.encode()
    n = mc_pem_uri_san(p, len(p), buf, sizeof(buf))
    return buf[:n].decode(errors="replace") if n else None


def regex_check(pattern):
    """None if the pattern compiles as a route regex (PCRE2), else the reason."""
    cdef char err[256]
    cdef bytes p = pattern.encode()
    if mc_regex_check(p, err, sizeof(err)) < 0:
        return err.decode()
    return None

# Compilation: validated xDS v3 resources -> SnapshotBuilder calls.
#
# The one place where xDS messages become the core's structs. Inputs have
# already been validated by meshcore.config (which names file, resource and
# field in its errors); a CoreError here means a validator gap, not user
# error. Envoy's defaults are applied here, where the field is read.

# envoy.config.cluster.v3.Cluster.LbPolicy -> MC_LB_*
_LB_POLICY = {0: MC_LB_ROUND_ROBIN, 1: MC_LB_LEAST_REQUEST, 2: MC_LB_RING_HASH, 3: MC_LB_RANDOM}

_DEFAULT_CONNECT_TIMEOUT_MS = 5000      # Cluster.connect_timeout
_DEFAULT_IDLE_TIMEOUT_MS = 3600 * 1000  # TcpProxy.idle_timeout; 0s disables


def _ms(msg, field, default_ms):
    # Same rounding as meshcore.durations.duration_ms: a positive duration
    # below 1 ms is 1 ms, never 0 (which means "disabled" for timeouts).
    if not msg.HasField(field):
        return default_ms
    d = getattr(msg, field)
    ns = d.seconds * 1_000_000_000 + d.nanos
    return -((-ns) // 1_000_000) if ns > 0 else 0


def _u32(msg, field, default):
    return getattr(msg, field).value if msg.HasField(field) else default


_ISTIO_FILTERS = ("istio.stats", "istio.metadata_exchange")

_TRANSPORT = {"": MC_CHAIN_ANY, "tls": MC_CHAIN_TLS, "raw_buffer": MC_CHAIN_RAW}


def compile_snapshot(listeners, clusters, chains=None, secrets=None, services=None, TlsCache tls_cache=None,
                     global_max_connections=0):
    """Listener and Cluster messages -> a SnapshotBuilder ready to apply.
    chains: (listener name, chain index) -> meshcore.plan.ChainPlan: the
    chain's terminal filter (unpacked), its access-log id (0: none), its
    Istio metrics (reporter, peer metadata, its id) and its tracing (tracer
    id, random sampling per million, SPAN_SERVER / SPAN_CLIENT); a chain
    without a plan has none of these. secrets: Secret name -> Secret message
    (static SDS). services: cluster name -> Istio service label id
    (meshcore.telemetry.istio_metrics). tls_cache: shares OpenSSL contexts
    across TLS contexts and compiles (TlsCache). global_max_connections: the
    overload manager's global_downstream_max_connections (0: none configured,
    the engine derives a limit from RLIMIT_NOFILE)."""
    chains = chains or {}
    secrets = secrets or {}
    im_services = services or {}

    b = SnapshotBuilder()
    files_before = _files_read
    if tls_cache is not None:
        b.use_tls_cache(tls_cache)
    if global_max_connections:
        b.set_global_downstream_max_connections(global_max_connections)
    for c in clusters:
        if c.lb_policy not in _LB_POLICY:
            raise CoreError(f"cluster {c.name!r}: lb_policy {c.lb_policy} cannot be compiled")
        ci = b.add_cluster(c.name, _LB_POLICY[c.lb_policy],
                           _ms(c, "connect_timeout", _DEFAULT_CONNECT_TIMEOUT_MS))
        for locality in c.load_assignment.endpoints:
            for lbe in locality.lb_endpoints:
                sa = lbe.endpoint.address.socket_address
                b.add_endpoint(ci, sa.address, sa.port_value, _u32(lbe, "load_balancing_weight", 1))
        _compile_cluster_http(b, ci, c)
        if im_services.get(c.name):
            b.set_cluster_service(ci, im_services[c.name])
        if c.HasField("transport_socket"):
            _compile_cluster_tls(b, ci, c.transport_socket, secrets, cluster_speaks_h2(c))
    for l in listeners:
        sa = l.address.socket_address
        li = b.add_listener(l.name, sa.address, sa.port_value, l.stat_prefix,
                            _u32(l, "tcp_backlog_size", 0))
        if l.HasField("enable_reuse_port") and l.enable_reuse_port.value:
            b.set_reuse_port(li, True)
        handshake_ms = _ms(l, "listener_filters_timeout", 0)
        for k, chain in enumerate(l.filter_chains):
            b._check(mc_sb_add_chain(b.b, li, _TRANSPORT[chain.filter_chain_match.transport_protocol]))
            if chain.HasField("transport_socket"):
                _compile_chain_tls(b, li, chain.transport_socket, secrets,
                                   _ms(chain, "transport_socket_connect_timeout", handshake_ms))
            plan = chains.get((l.name, k))
            log_id = plan.log_id if plan is not None else 0
            terminal = plan.terminal if plan is not None else None
            if plan is not None and plan.istio is not None:
                b.set_istio_stats(li, *plan.istio)
            for f in chain.filters:
                url = f.typed_config.type_url
                if url == _CONN_LIMIT:
                    cl = xds_types.unpack(f.typed_config)
                    b.set_connection_limit(li, cl.stat_prefix, cl.max_connections.value)
                elif url == _TCP_PROXY:
                    tp = terminal if terminal is not None else xds_types.unpack(f.typed_config)
                    b.set_tcp_proxy(li, tp.stat_prefix, _ms(tp, "idle_timeout", _DEFAULT_IDLE_TIMEOUT_MS),
                                    _u32(tp, "max_connect_attempts", 1))
                    if log_id:
                        b._check(mc_sb_set_tcp_access_log(b.b, li, log_id))
                    if tp.cluster:
                        b.add_tcp_proxy_cluster(li, tp.cluster, 1)
                    for wc in tp.weighted_clusters.clusters:
                        b.add_tcp_proxy_cluster(li, wc.name, wc.weight)
                elif url == _HCM:
                    hcm = terminal if terminal is not None else xds_types.unpack(f.typed_config)
                    _compile_hcm(b, li, hcm, log_id, plan.tracing if plan is not None else None)
                elif url == _NETWORK_RBAC:
                    nr = xds_types.unpack(f.typed_config)
                    _add_rbac(b, li, nr.rules, 0)
                elif f.name in _ISTIO_FILTERS:
                    pass  # set above, as meshcore.telemetry.istio_metrics planned it
                else:
                    raise CoreError(f"listener {l.name!r}: filter {f.name} ({url}) cannot be compiled")
    b.reads_files = _files_read != files_before  # the same config may read other bytes next time
    return b

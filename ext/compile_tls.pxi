# Compilation of TLS transport sockets (envoy.transport_sockets.tls):
# DownstreamTlsContext on listener filter chains, UpstreamTlsContext on
# clusters, with certificates and trust bundles inline, from files, or from
# static SDS Secrets (static_resources.secrets). PEM is read here, in
# Python, and handed to the core in memory: the core never opens a file.

# TlsParameters.TlsProtocol -> OpenSSL version numbers (TLS_AUTO = default)
_TLS_VERSIONS = {0: 0, 1: 0x0301, 2: 0x0302, 3: 0x0303, 4: 0x0304}
_SAN_URI = 3  # SubjectAltNameMatcher.SanType.URI


_files_read = 0  # files data_source_bytes has read (compile_snapshot notes whether a compile read any)


def data_source_bytes(ds):
    """envoy.config.core.v3.DataSource -> bytes (files are read now)."""
    global _files_read
    which = ds.WhichOneof("specifier")
    if which == "inline_string":
        return ds.inline_string.encode()
    if which == "inline_bytes":
        return bytes(ds.inline_bytes)
    if which == "filename":
        _files_read += 1
        with open(ds.filename, "rb") as f:
            return f.read()
    return b""


cdef void _fill_san_matchers(_Arena a, mc_sb_tls_t *t, vc) except *:
    cdef mc_sb_matcher_t *ms
    matchers = [m.matcher for m in vc.match_typed_subject_alt_names if m.san_type == _SAN_URI]
    matchers += list(vc.match_subject_alt_names)
    if not matchers:
        return
    ms = <mc_sb_matcher_t *>a.alloc(len(matchers), sizeof(mc_sb_matcher_t))
    for i, sm in enumerate(matchers):
        _fill_matcher(a, &ms[i], "", sm, False, False)
    t.sans, t.n_sans = ms, len(matchers)


cdef void _fill_tls(_Arena a, mc_sb_tls_t *t, common, secrets, int downstream) except *:
    """CommonTlsContext (+ static secrets) -> the core's TLS spec."""
    memset(t, 0, sizeof(mc_sb_tls_t))
    t.downstream = downstream
    cert = None
    if common.tls_certificates:
        cert = common.tls_certificates[0]
    elif common.tls_certificate_sds_secret_configs:
        cert = secrets[common.tls_certificate_sds_secret_configs[0].name].tls_certificate
    if cert is not None:
        chain = data_source_bytes(cert.certificate_chain)
        key = data_source_bytes(cert.private_key)
        a.keep.append(chain)
        a.keep.append(key)
        t.cert_chain, t.cert_chain_len = <const char *>chain, len(chain)
        t.private_key, t.private_key_len = <const char *>key, len(key)
    vc = None
    which = common.WhichOneof("validation_context_type")
    if which == "validation_context":
        vc = common.validation_context
        trust_from = vc
    elif which == "validation_context_sds_secret_config":
        vc = secrets[common.validation_context_sds_secret_config.name].validation_context
        trust_from = vc
    elif which == "combined_validation_context":
        cvc = common.combined_validation_context
        vc = cvc.default_validation_context
        trust_from = secrets[cvc.validation_context_sds_secret_config.name].validation_context
    if vc is not None:
        if trust_from.HasField("trusted_ca"):
            ca = data_source_bytes(trust_from.trusted_ca)
            a.keep.append(ca)
            t.trusted_ca, t.trusted_ca_len = <const char *>ca, len(ca)
        _fill_san_matchers(a, t, vc)
    p = common.tls_params
    t.min_version = _TLS_VERSIONS.get(p.tls_minimum_protocol_version, 0)
    t.max_version = _TLS_VERSIONS.get(p.tls_maximum_protocol_version, 0)
    if p.cipher_suites:
        t.cipher_list = a.s(":".join(p.cipher_suites))
    if common.alpn_protocols:
        t.alpn = a.s(",".join(common.alpn_protocols))


cdef void _compile_chain_tls(SnapshotBuilder b, int li, ts, secrets, uint32_t handshake_ms) except *:
    from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

    cdef _Arena a = _Arena()
    cdef mc_sb_tls_t t
    ctx = tls_pb2.DownstreamTlsContext()
    ts.typed_config.Unpack(ctx)
    _fill_tls(a, &t, ctx.common_tls_context, secrets, 1)
    t.require_client_certificate = 1 if ctx.require_client_certificate.value else 0
    t.handshake_timeout_ms = handshake_ms
    cdef int rc
    with nogil:  # OpenSSL's part (PEM decoding, the trust store) runs without the GIL
        rc = mc_sb_set_chain_tls(b.b, li, &t)
    b._check(rc)


cdef void _compile_cluster_tls(SnapshotBuilder b, int ci, ts, secrets, h2=False) except *:
    from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

    cdef _Arena a = _Arena()
    cdef mc_sb_tls_t t
    ctx = tls_pb2.UpstreamTlsContext()
    ts.typed_config.Unpack(ctx)
    _fill_tls(a, &t, ctx.common_tls_context, secrets, 0)
    if ctx.sni:
        t.sni = a.s(ctx.sni)
    if h2 and not ctx.common_tls_context.alpn_protocols:
        t.alpn = a.s("h2,http/1.1")  # as Envoy offers for an HTTP/2 cluster
    cdef int rc
    with nogil:
        rc = mc_sb_set_cluster_tls(b.b, ci, &t)
    b._check(rc)

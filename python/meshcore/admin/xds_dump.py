"""/config_dump of a proxy fed by xDS, in Envoy's shape.

Envoy shows what it received from a control plane as dynamic resources, each
with the version it came with and when it was last updated:

    BootstrapConfigDump   the bootstrap the proxy started from (node, ADS source)
    ClustersConfigDump    version_info, dynamic_active_clusters, dynamic_warming_clusters
    EndpointsConfigDump   dynamic_endpoint_configs
    ListenersConfigDump   version_info, dynamic_listeners (active_state / warming_state)
    RoutesConfigDump      dynamic_route_configs
    SecretsConfigDump     dynamic_active_secrets (the proxy's own, private key redacted)

"Active" is what the running snapshot was built from; "warming" is what was
accepted (ACKed) but waits for its routes or endpoints. `client` is a
meshcore.xds.client.XdsClient (read through its attributes only).
"""
from __future__ import annotations

from meshcore.xds.resources import CDS, EDS, LDS, RDS


def _ts(seconds: float | None):
    from google.protobuf import timestamp_pb2

    ts = timestamp_pb2.Timestamp()
    if seconds is None:
        ts.GetCurrentTime()
    else:
        ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def xds_dumps(client, base, engine) -> list:
    """The config dump messages of an xDS-fed proxy (see the module docstring)."""
    from envoy.admin.v3 import config_dump_pb2, config_dump_shared_pb2

    from meshcore.admin.server import redact

    with client._lock:
        active = client.applied
        accepted = client.resources
        types = {t: client.types[t] for t in (CDS, EDS, LDS, RDS)}

        def entry(t, name):
            st = types[t]
            return st.versions.get(name, ""), _ts(st.updated.get(name))

        def warming(t):
            held = active.of(t) if active is not None else {}
            return {n: m for n, m in accepted.of(t).items() if held.get(n) != m}

        boot = config_dump_pb2.BootstrapConfigDump(bootstrap=base, last_updated=_ts(client.started_at))
        cd = config_dump_shared_pb2.ClustersConfigDump(version_info=types[CDS].version)
        for name, c in sorted((active.of(CDS) if active else {}).items()):
            v, at = entry(CDS, name)
            cd.dynamic_active_clusters.add(version_info=v, last_updated=at).cluster.Pack(c)
        for name, c in sorted(warming(CDS).items()):
            v, at = entry(CDS, name)
            cd.dynamic_warming_clusters.add(version_info=v, last_updated=at).cluster.Pack(c)
        ed = config_dump_shared_pb2.EndpointsConfigDump()
        for name, cla in sorted((active.of(EDS) if active else {}).items()):
            v, at = entry(EDS, name)
            ed.dynamic_endpoint_configs.add(version_info=v, last_updated=at).endpoint_config.Pack(cla)
        ld = config_dump_shared_pb2.ListenersConfigDump(version_info=types[LDS].version)
        pending = warming(LDS)
        for name in sorted(set(active.of(LDS) if active else ()) | set(pending)):
            dl = ld.dynamic_listeners.add(name=name)
            v, at = entry(LDS, name)
            if active is not None and name in active.of(LDS):
                dl.active_state.version_info = v
                dl.active_state.last_updated.CopyFrom(at)
                dl.active_state.listener.Pack(active.of(LDS)[name])
            if name in pending:
                dl.warming_state.version_info = v
                dl.warming_state.last_updated.CopyFrom(at)
                dl.warming_state.listener.Pack(pending[name])
        rd = config_dump_shared_pb2.RoutesConfigDump()
        for name, rc in sorted((active.of(RDS) if active else {}).items()):
            v, at = entry(RDS, name)
            rd.dynamic_route_configs.add(version_info=v, last_updated=at).route_config.Pack(rc)
    sd = config_dump_pb2.SecretsConfigDump()
    b = engine.bootstrap
    for secret in (b.static_resources.secrets if b is not None else ()):
        copy = type(secret)()
        copy.CopyFrom(secret)
        redact(copy)
        ds = sd.dynamic_active_secrets.add(name=secret.name, version_info=_secret_version(secret),
                                           last_updated=engine.applied_at or _ts(None))
        ds.secret.Pack(copy)
    return [boot, cd, ed, ld, rd, sd]


def _secret_version(secret) -> str:
    """A version for a local secret: the leaf certificate's serial (hex), as istio-agent's."""
    import hashlib

    if secret.HasField("tls_certificate"):
        pem = secret.tls_certificate.certificate_chain.inline_string
    else:
        pem = secret.validation_context.trusted_ca.inline_string
    if not pem:
        return ""
    try:
        from cryptography import x509
    except ImportError:  # a core-only install: the digest, not the serial
        return hashlib.sha256(pem.encode()).hexdigest()[:16]
    try:
        return format(x509.load_pem_x509_certificate(pem.encode()).serial_number, "x")
    except ValueError:
        return hashlib.sha256(pem.encode()).hexdigest()[:16]

"""The admin API: Envoy's paths, served from a Python thread.

Listens on 127.0.0.1:15000 by default (never on a public address unless
asked). Nothing here runs per proxied connection: every endpoint reads the
engine's summed stats or its current config on request.

    GET  /ready              200 LIVE, 503 DRAINING (or, fed by xDS, 503 PRE_INITIALIZING
                             until the first complete config and a certificate)
    GET  /stats              text "name: value" (?format=json, ?filter=REGEX)
    GET  /stats/prometheus   Prometheus text format
    GET  /config_dump        envoy.admin.v3.ConfigDump as JSON
                             (?resource=static_secrets|static_listeners|static_clusters:
                             only those entries, as Envoy; secrets with their private
                             keys redacted). Fed by xDS: dynamic_active_clusters,
                             dynamic_listeners, ... with their versions (xds_dump.py)
    GET  /certs              envoy.admin.v3.Certificates: the static secrets' certificates
    GET  /clusters           per-endpoint stats (?format=json)
    GET  /listeners          listener name::address (?format=json)
    GET  /server_info        state, version, uptime, concurrency
    POST /drain_listeners    stop accepting; connections continue
    POST /reload             re-read the config file (meshcore; Envoy has no equivalent)
    POST /quitquitquit       graceful shutdown

Mutating endpoints require POST, as in Envoy, so a browser or a scraper
cannot trigger them by accident.
"""
from __future__ import annotations

import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format

from meshcore.admin.httpd import TEXT, HttpServer
from meshcore.errors import MissingExtraError
from meshcore.extras import require

if TYPE_CHECKING:
    from meshcore.engine import Engine
    from meshcore.telemetry.stats import Stats

log = logging.getLogger("meshcore.admin")

# POST /quitquitquit where the host gave AdminContext no quit callable (an
# embedded engine): the admin API does not end a program it does not own.
QUIT_UNSUPPORTED = ("embedded: the host program owns the process lifecycle; call Engine.stop() "
                    "(or give AdminContext a quit callable)\n")

STATS_QUANTILES = (0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100)


class AdminContext:
    """What the admin API needs from its host (a proxy, a test, an embedder).

    engine: a started meshcore.Engine. reload / quit: callables (or None when
    unsupported); reload returns (ok, message). counters: a callable
    returning extra counters (e.g. config reload counts) to merge into stats.
    not_ready: a callable returning None once the proxy is ready, else the
    state to report (e.g. "PRE_INITIALIZING"). dumps: a callable returning the
    config dump messages, when the config is not static (xDS).
    """

    def __init__(self, engine: Engine, reload: Callable[[], tuple[bool, str]] | None = None,
                 quit: Callable[[], object] | None = None, counters: Callable[[], Mapping[str, int]] | None = None,
                 version: str = "meshcore", not_ready: Callable[[], str | None] | None = None,
                 dumps: Callable[[], Any] | None = None) -> None:
        self.engine = engine
        self.reload = reload
        self.quit = quit
        self.counters = counters or (lambda: {})
        self.version = version
        self.not_ready = not_ready or (lambda: None)
        self.dumps = dumps
        self.started = time.time()
        self.draining = False

    def stats(self) -> Stats:
        return self.engine.stats(self.counters())


# ---- renderers (pure functions of the context, easy to test) -----------------


def render_stats_text(stats, pattern: str | None) -> str:
    rx = re.compile(pattern) if pattern else None
    lines = []
    for name, value in sorted(stats.values().items()):
        if rx is None or rx.search(name):
            lines.append(f"{name}: {value}")
    for name, h in sorted(stats.histograms.items()):
        if rx is None or rx.search(name):
            if h.count == 0:
                lines.append(f"{name}: No recorded values")
                continue
            qs = " ".join(f"P{q:g}({h.quantile(q / 100):g})" for q in STATS_QUANTILES)
            lines.append(f"{name}: {qs}")
    return "\n".join(lines) + "\n"


def render_stats_json(stats, pattern: str | None) -> str:
    rx = re.compile(pattern) if pattern else None
    out = [{"name": n, "value": v} for n, v in sorted(stats.values().items())
           if rx is None or rx.search(n)]
    hists = []
    for name, h in sorted(stats.histograms.items()):
        if rx is None or rx.search(name):
            hists.append({
                "name": name,
                "count": h.count,
                "sum": h.sum,
                "quantiles": {f"P{q:g}": h.quantile(q / 100) for q in STATS_QUANTILES},
            })
    out.append({"histograms": hists})
    return json.dumps({"stats": out}, indent=2) + "\n"


def _last_updated():
    from google.protobuf import timestamp_pb2

    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts


def _static_dumps(engine) -> list:
    """[BootstrapConfigDump, ListenersConfigDump, ClustersConfigDump] of the applied
    static config, redacted; [] before any config was applied."""
    from envoy.admin.v3 import config_dump_pb2, config_dump_shared_pb2

    b = _redacted(engine.bootstrap)
    if b is None:
        return []
    updated = getattr(engine, "applied_at", None) or _last_updated()
    ld = config_dump_shared_pb2.ListenersConfigDump()
    for listener in b.static_resources.listeners:
        ld.static_listeners.add(last_updated=updated).listener.Pack(listener)
    cd = config_dump_shared_pb2.ClustersConfigDump()
    for cluster in b.static_resources.clusters:
        cd.static_clusters.add(last_updated=updated).cluster.Pack(cluster)
    return [config_dump_pb2.BootstrapConfigDump(bootstrap=b, last_updated=updated), ld, cd]


def config_dump(engine, dumps=None) -> dict:
    """The applied resources as envoy.admin.v3.ConfigDump (Envoy's JSON shape).
    dumps: a callable giving the dump messages when the config is not static (xDS)."""
    from envoy.admin.v3 import config_dump_pb2

    dump = config_dump_pb2.ConfigDump()
    for d in (dumps() if dumps is not None else _static_dumps(engine)):
        dump.configs.add().Pack(d)
    return json_format.MessageToDict(dump, preserving_proto_field_name=True)


REDACTED = "[redacted]"


def _redacted(bootstrap):
    """A copy of the applied bootstrap with private keys (and any other
    sensitive field) redacted: the admin API never serves key material."""
    if bootstrap is None:
        return None
    copy = type(bootstrap)()
    copy.CopyFrom(bootstrap)
    redact(copy)
    return copy


def redact(msg) -> None:
    """Envoy's MessageUtil::redact, in place: every field marked
    (udpa.annotations.sensitive) (TlsCertificate.private_key, password, ...)
    keeps its shape but its strings and bytes become "[redacted]"."""
    from udpa.annotations import sensitive_pb2

    for fd, value in msg.ListFields():
        items = value if fd.is_repeated else [value]
        if fd.GetOptions().Extensions[sensitive_pb2.sensitive]:
            if fd.message_type is None:
                if fd.is_repeated:
                    value[:] = [_redacted_scalar(fd)] * len(value)
                else:
                    setattr(msg, fd.name, _redacted_scalar(fd))
            else:
                for m in items:
                    _redact_all(m)
        elif fd.message_type is not None and fd.message_type.full_name == "google.protobuf.Any":
            for m in items:
                _redact_any(m)
        elif fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            vfd = fd.message_type.fields_by_name["value"]
            if vfd.message_type is not None:
                for v in value.values():
                    if vfd.message_type.full_name == "google.protobuf.Any":
                        _redact_any(v)
                    else:
                        redact(v)
        elif fd.message_type is not None:
            for m in items:
                redact(m)


def _redact_any(any_msg) -> None:
    """Redacts inside an Any (a TLS context in a transport_socket...), as Envoy does."""
    from google.protobuf import symbol_database

    try:
        cls = symbol_database.Default().GetSymbol(any_msg.TypeName())
    except KeyError:
        return  # a type we never loaded cannot hold a key we were given
    inner = cls()
    if any_msg.Unpack(inner):
        redact(inner)
        any_msg.Pack(inner)


def _redacted_scalar(fd):
    if fd.type == fd.TYPE_BYTES:
        return REDACTED.encode()
    return REDACTED if fd.type == fd.TYPE_STRING else fd.default_value


def _redact_all(msg) -> None:
    for fd, value in msg.ListFields():
        if fd.message_type is not None:
            for m in (value if fd.is_repeated else [value]):
                _redact_all(m)
        elif fd.type not in (fd.TYPE_STRING, fd.TYPE_BYTES):
            msg.ClearField(fd.name)
        elif fd.is_repeated:
            value[:] = [_redacted_scalar(fd)] * len(value)
        else:
            setattr(msg, fd.name, _redacted_scalar(fd))


def secrets_config_dump(engine):
    """envoy.admin.v3.SecretsConfigDump of the applied static secrets, redacted."""
    from envoy.admin.v3 import config_dump_pb2

    dump = config_dump_pb2.SecretsConfigDump()
    b = engine.bootstrap
    if b is None:
        return dump
    updated = getattr(engine, "applied_at", None) or _last_updated()
    for secret in b.static_resources.secrets:
        copy = type(secret)()
        copy.CopyFrom(secret)
        redact(copy)
        dump.static_secrets.add(name=secret.name, last_updated=updated).secret.Pack(copy)
    return dump


def config_dump_resource(engine, resource: str, dumps=None) -> dict | None:
    """Envoy's /config_dump?resource=NAME: the entries of the repeated field
    NAME (static_listeners, static_clusters, static_secrets, dynamic_listeners...)
    of every config dump, each packed as an Any. None when no dump has that field."""
    from envoy.admin.v3 import config_dump_pb2
    from google.protobuf import any_pb2

    dumps = dumps() if dumps is not None else [*_static_dumps(engine), secrets_config_dump(engine)]
    found = False
    out = config_dump_pb2.ConfigDump()
    for d in dumps:
        fd = d.DESCRIPTOR.fields_by_name.get(resource)
        if fd is None or not fd.is_repeated or fd.message_type is None:
            continue
        found = True
        for item in getattr(d, resource):
            packed = any_pb2.Any()
            packed.Pack(item)
            out.configs.append(packed)
    if not found:
        return None
    return json_format.MessageToDict(out, preserving_proto_field_name=True)


def _data_source_pem(ds) -> tuple[str, bytes | None]:
    """(path for /certs, PEM bytes or None when unreadable) of a DataSource."""
    which = ds.WhichOneof("specifier")
    if which == "filename":
        try:
            with open(ds.filename, "rb") as f:
                return ds.filename, f.read()
        except OSError:
            return ds.filename, None
    if which == "inline_string":
        return "<inline>", ds.inline_string.encode()
    if which == "inline_bytes":
        return "<inline>", bytes(ds.inline_bytes)
    return "<none>", None


def _cert_details(out, path: str, pem: bytes | None) -> None:
    """Appends one envoy.admin.v3.CertificateDetails per certificate in pem."""
    import datetime as dt

    require("cryptography", "the admin API's certificate details (/certs)")
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(pem) if pem else []
    except ValueError:
        certs = []
    if not certs:
        out.add(path=path)  # unreadable or not PEM: the path alone, as Envoy for a missing file
        return
    now = dt.datetime.now(dt.timezone.utc)
    for cert in certs:
        d = out.add(path=path, serial_number=format(cert.serial_number, "x"))
        d.valid_from.FromDatetime(cert.not_valid_before_utc)
        d.expiration_time.FromDatetime(cert.not_valid_after_utc)
        d.days_until_expiration = max(0, (cert.not_valid_after_utc - now).days)
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            continue
        for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
            d.subject_alt_names.add(uri=uri)
        for dns in san.get_values_for_type(x509.DNSName):
            d.subject_alt_names.add(dns=dns)
        for ip in san.get_values_for_type(x509.IPAddress):
            d.subject_alt_names.add(ip_address=str(ip))


def render_certs(engine) -> str:
    """envoy.admin.v3.Certificates: one Certificate per static secret, in the
    order of static_resources.secrets (tls_certificate -> cert_chain, leaf
    first; validation_context -> ca_cert, one per root). Files are read now,
    as the proxy's certificate watch reads them; private keys are never read."""
    from envoy.admin.v3 import certs_pb2

    out = certs_pb2.Certificates()
    b = engine.bootstrap
    for secret in (b.static_resources.secrets if b is not None else ()):
        entry = out.certificates.add()
        if secret.HasField("tls_certificate"):
            _cert_details(entry.cert_chain, *_data_source_pem(secret.tls_certificate.certificate_chain))
        elif secret.HasField("validation_context"):
            _cert_details(entry.ca_cert, *_data_source_pem(secret.validation_context.trusted_ca))
    return json_format.MessageToJson(out, preserving_proto_field_name=True) + "\n"


def _cluster_hosts(engine):
    """[(cluster name, [(ip, port, weight)])] of the applied bootstrap."""
    b = engine.bootstrap
    if b is None:
        return []
    out = []
    for c in b.static_resources.clusters:
        hosts = []
        for loc in c.load_assignment.endpoints:
            for lbe in loc.lb_endpoints:
                sa = lbe.endpoint.address.socket_address
                w = lbe.load_balancing_weight.value if lbe.HasField("load_balancing_weight") else 1
                hosts.append((sa.address, sa.port_value, w))
        out.append((c.name, hosts))
    return out


def _host_key(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _ejected(engine, cluster: str, ip: str, port: int) -> bool:
    """Whether outlier detection has the host out of rotation now (Envoy's
    health flag /failed_outlier_check)."""
    state = engine.host_outlier(cluster, ip, port)
    return bool(state and state[0])


def render_clusters_text(engine, stats) -> str:
    lines = []
    for cname, hosts in _cluster_hosts(engine):
        lines.append(f"{cname}::observability_name::{cname}")
        for ip, port, weight in hosts:
            key = _host_key(ip, port)
            scope = stats.hosts.get(f"{cname}::{key}")
            values = {**scope.counters, **scope.gauges} if scope else {}
            for stat in sorted(values):
                lines.append(f"{cname}::{key}::{stat}::{values[stat]}")
            ejected = _ejected(engine, cname, ip, port)
            lines.append(f"{cname}::{key}::health_flags::{'/failed_outlier_check' if ejected else 'healthy'}")
            lines.append(f"{cname}::{key}::weight::{weight}")
    return "\n".join(lines) + "\n"


def render_clusters_json(engine, stats) -> str:
    from envoy.admin.v3 import clusters_pb2

    out = clusters_pb2.Clusters()
    for cname, hosts in _cluster_hosts(engine):
        cs = out.cluster_statuses.add(name=cname)
        for ip, port, weight in hosts:
            hs = cs.host_statuses.add(weight=weight)
            hs.address.socket_address.address = ip
            hs.address.socket_address.port_value = port
            hs.health_status.eds_health_status = 1  # HEALTHY
            hs.health_status.failed_outlier_check = _ejected(engine, cname, ip, port)
            scope = stats.hosts.get(f"{cname}::{_host_key(ip, port)}")
            if scope:
                for name, v in sorted(scope.counters.items()):
                    hs.stats.add(name=name, value=v, type=0)  # COUNTER
                for name, v in sorted(scope.gauges.items()):
                    hs.stats.add(name=name, value=max(v, 0), type=1)  # GAUGE
    return json_format.MessageToJson(out, preserving_proto_field_name=True) + "\n"


def render_listeners(engine, fmt: str | None) -> str:
    listeners = engine.listeners()
    if fmt == "json":
        statuses = []
        for name, addr, port in listeners:
            ip = addr.rsplit(":", 1)[0].strip("[]")
            statuses.append({"name": name,
                             "local_address": {"socket_address": {"address": ip, "port_value": port}}})
        return json.dumps({"listener_statuses": statuses}, indent=2) + "\n"
    return "".join(f"{name}::{addr}\n" for name, addr, _ in listeners)


# ---- endpoints: (ctx, query) -> (status, body, content type) ------------------------

JSON = "application/json"


def _index(ctx, q):
    paths = sorted(set(_GET) | set(_POST))
    return 200, "meshcore admin\n" + "".join(f"  {p}\n" for p in paths), TEXT


def _state(ctx) -> str:
    return "DRAINING" if ctx.draining else ctx.not_ready() or "LIVE"


def _ready(ctx, q):
    state = _state(ctx)
    return (200 if state == "LIVE" else 503), state + "\n", TEXT


def _stats(ctx, q):
    if q.get("format") == "prometheus":
        return _prometheus(ctx, q)
    stats = ctx.stats()
    if q.get("format") == "json":
        return 200, render_stats_json(stats, q.get("filter")), JSON
    return 200, render_stats_text(stats, q.get("filter")), TEXT


def _prometheus(ctx, q):
    from meshcore.telemetry import prometheus as metrics  # prometheus_client is loaded on the first scrape only

    body, ctype = metrics.exposition(ctx.stats(), ctx.engine.istio)
    return 200, body, ctype


def _config_dump(ctx, q):
    if "resource" in q:  # Envoy's ?resource=: one kind of entry (e.g. static_secrets)
        dump = config_dump_resource(ctx.engine, q["resource"], ctx.dumps)
        if dump is None:
            return 404, f"no config dump resource {q['resource']!r}\n", TEXT
        return 200, json.dumps(dump, indent=2) + "\n", JSON
    return 200, json.dumps(config_dump(ctx.engine, ctx.dumps), indent=2) + "\n", JSON


def _certs(ctx, q):
    return 200, render_certs(ctx.engine), JSON


def _clusters(ctx, q):
    stats = ctx.stats()
    if q.get("format") == "json":
        return 200, render_clusters_json(ctx.engine, stats), JSON
    return 200, render_clusters_text(ctx.engine, stats), TEXT


def _listeners(ctx, q):
    fmt = q.get("format")
    return 200, render_listeners(ctx.engine, fmt), JSON if fmt == "json" else TEXT


def _server_info(ctx, q):
    info = {
        "version": ctx.version,
        "state": _state(ctx),
        "uptime_current_epoch": f"{int(time.time() - ctx.started)}s",
        "concurrency": ctx.engine.concurrency,
        "config_source": ctx.engine.source,
    }
    return 200, json.dumps(info, indent=2) + "\n", JSON


def _drain_listeners(ctx, q):
    ctx.engine.drain_listeners()
    ctx.draining = True
    return 200, "OK\n", TEXT


def _reload(ctx, q):
    if ctx.reload is None:
        return 501, "this process has no config file to reload\n", TEXT
    ok, message = ctx.reload()
    return (200 if ok else 400), message.rstrip("\n") + "\n", TEXT


def _quit(ctx, q):
    if ctx.quit is None:
        return 501, QUIT_UNSUPPORTED, TEXT
    ctx.quit()
    return 200, "OK\n", TEXT


_GET = {
    "/": _index,
    "/ready": _ready,
    "/stats": _stats,
    "/stats/prometheus": _prometheus,
    "/config_dump": _config_dump,
    "/certs": _certs,
    "/clusters": _clusters,
    "/listeners": _listeners,
    "/server_info": _server_info,
}
_POST = {
    "/drain_listeners": _drain_listeners,
    "/reload": _reload,
    "/quitquitquit": _quit,
}


def dispatch(ctx: AdminContext, method: str, target: str) -> tuple[int, str, str]:
    """Routes one admin request; never raises."""
    url = urllib.parse.urlsplit(target)
    query = dict(urllib.parse.parse_qsl(url.query))
    path = url.path.rstrip("/") or "/"
    table = _GET if method in ("GET", "HEAD") else _POST if method == "POST" else None
    if table is None:
        return 405, f"method {method} not allowed\n", TEXT
    handler = table.get(path)
    if handler is None:
        if path in _POST:
            return 405, f"{path} requires POST\n", TEXT
        if path in _GET:
            return 405, f"{path} requires GET\n", TEXT
        return 404, f"no admin endpoint {path}; see /\n", TEXT
    try:
        return handler(ctx, query)
    except re.error as e:
        return 400, f"bad filter regex: {e}\n", TEXT
    except MissingExtraError as e:  # e.g. /stats/prometheus in a core-only install
        return 501, f"{e}\n", TEXT
    except Exception:  # the admin API must never take the proxy down
        log.exception("admin endpoint %s failed", path)
        return 500, "internal error; see the proxy log\n", TEXT


# ---- the server ------------------------------------------------------------------------


class AdminServer(HttpServer):
    """The admin HTTP server (httpd.py): a selector thread, a small handler pool,
    a connection cap, an idle timeout and descriptors in reserve."""

    def __init__(self, ctx: AdminContext, host: str = "127.0.0.1", port: int = 15000, **limits: Any) -> None:
        super().__init__(lambda method, target: dispatch(ctx, method, target), host, port, **limits)
        self.ctx = ctx

"""The admin API: Envoy's paths, served from a Python thread.

Listens on 127.0.0.1:15000 by default (never on a public address unless
asked). Nothing here runs per proxied connection: every endpoint reads the
engine's summed stats or its current config on request.

    GET  /ready              200 LIVE, 503 DRAINING
    GET  /stats              text "name: value" (?format=json, ?filter=REGEX)
    GET  /stats/prometheus   Prometheus text format
    GET  /config_dump        envoy.admin.v3.ConfigDump as JSON
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

import http.server
import json
import logging
import re
import threading
import time
import urllib.parse

from google.protobuf import json_format

from meshcore import metrics

log = logging.getLogger("meshcore.admin")

STATS_QUANTILES = (0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100)


class AdminContext:
    """What the admin API needs from its host (a proxy, a test, an embedder).

    engine: a started meshcore.Engine. reload / quit: callables (or None when
    unsupported); reload returns (ok, message). counters: a callable
    returning extra counters (e.g. config reload counts) to merge into stats.
    """

    def __init__(self, engine, reload=None, quit=None, counters=None, version="meshcore"):
        self.engine = engine
        self.reload = reload
        self.quit = quit
        self.counters = counters or (lambda: {})
        self.version = version
        self.started = time.time()
        self.draining = False

    def stats(self):
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


def config_dump(engine) -> dict:
    """The applied resources as envoy.admin.v3.ConfigDump (Envoy's JSON shape)."""
    from envoy.admin.v3 import config_dump_pb2, config_dump_shared_pb2

    dump = config_dump_pb2.ConfigDump()
    b = engine.bootstrap
    if b is None:
        return json_format.MessageToDict(dump, preserving_proto_field_name=True)
    updated = getattr(engine, "applied_at", None) or _last_updated()
    dump.configs.add().Pack(config_dump_pb2.BootstrapConfigDump(bootstrap=b, last_updated=updated))
    ld = config_dump_shared_pb2.ListenersConfigDump()
    for listener in b.static_resources.listeners:
        sl = ld.static_listeners.add(last_updated=updated)
        sl.listener.Pack(listener)
    dump.configs.add().Pack(ld)
    cd = config_dump_shared_pb2.ClustersConfigDump()
    for cluster in b.static_resources.clusters:
        sc = cd.static_clusters.add(last_updated=updated)
        sc.cluster.Pack(cluster)
    dump.configs.add().Pack(cd)
    return json_format.MessageToDict(dump, preserving_proto_field_name=True)


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
            lines.append(f"{cname}::{key}::health_flags::healthy")
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


# ---- HTTP plumbing -------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    ctx: AdminContext  # set on the subclass made per server
    server_version = "meshcore-admin"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # route to logging, quietly
        log.debug("admin: " + fmt, *args)

    def _send(self, code: int, body: str, ctype: str = "text/plain; charset=UTF-8"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, max-age=0")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _route(self, method: str):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        path = url.path.rstrip("/") or "/"
        handler = _GET.get(path) if method in ("GET", "HEAD") else _POST.get(path)
        if handler is None:
            if path in _POST and method in ("GET", "HEAD"):
                return self._send(405, f"{path} requires POST\n")
            if path in _GET and method == "POST":
                return self._send(405, f"{path} requires GET\n")
            return self._send(404, f"no admin endpoint {path}; see /\n")
        try:
            handler(self, query)
        except re.error as e:
            self._send(400, f"bad filter regex: {e}\n")
        except Exception:  # the admin API must never take the proxy down
            log.exception("admin endpoint %s failed", path)
            self._send(500, "internal error; see the proxy log\n")

    def do_GET(self):
        self._route("GET")

    def do_HEAD(self):
        self._route("HEAD")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        self._route("POST")


def _index(h, q):
    paths = sorted(set(_GET) | set(_POST))
    h._send(200, "meshcore admin\n" + "".join(f"  {p}\n" for p in paths))


def _ready(h, q):
    if h.ctx.draining:
        h._send(503, "DRAINING\n")
    else:
        h._send(200, "LIVE\n")


def _stats(h, q):
    stats = h.ctx.stats()
    if q.get("format") == "json":
        h._send(200, render_stats_json(stats, q.get("filter")), "application/json")
    elif q.get("format") == "prometheus":
        _prometheus(h, q)
    else:
        h._send(200, render_stats_text(stats, q.get("filter")))


def _prometheus(h, q):
    body, ctype = metrics.exposition(h.ctx.stats())
    h._send(200, body, ctype)


def _config_dump(h, q):
    h._send(200, json.dumps(config_dump(h.ctx.engine), indent=2) + "\n", "application/json")


def _clusters(h, q):
    stats = h.ctx.stats()
    if q.get("format") == "json":
        h._send(200, render_clusters_json(h.ctx.engine, stats), "application/json")
    else:
        h._send(200, render_clusters_text(h.ctx.engine, stats))


def _listeners(h, q):
    ctype = "application/json" if q.get("format") == "json" else "text/plain; charset=UTF-8"
    h._send(200, render_listeners(h.ctx.engine, q.get("format")), ctype)


def _server_info(h, q):
    ctx = h.ctx
    info = {
        "version": ctx.version,
        "state": "DRAINING" if ctx.draining else "LIVE",
        "uptime_current_epoch": f"{int(time.time() - ctx.started)}s",
        "concurrency": ctx.engine.concurrency,
        "config_source": ctx.engine.source,
    }
    h._send(200, json.dumps(info, indent=2) + "\n", "application/json")


def _drain_listeners(h, q):
    h.ctx.engine.drain_listeners()
    h.ctx.draining = True
    h._send(200, "OK\n")


def _reload(h, q):
    if h.ctx.reload is None:
        return h._send(501, "this process has no config file to reload\n")
    ok, message = h.ctx.reload()
    h._send(200 if ok else 400, message.rstrip("\n") + "\n")


def _quit(h, q):
    if h.ctx.quit is None:
        return h._send(501, "shutdown is not available here\n")
    h._send(200, "OK\n")
    h.ctx.quit()


_GET = {
    "/": _index,
    "/ready": _ready,
    "/stats": _stats,
    "/stats/prometheus": _prometheus,
    "/config_dump": _config_dump,
    "/clusters": _clusters,
    "/listeners": _listeners,
    "/server_info": _server_info,
}
_POST = {
    "/drain_listeners": _drain_listeners,
    "/reload": _reload,
    "/quitquitquit": _quit,
}


class AdminServer:
    """The admin HTTP server on its own daemon thread."""

    def __init__(self, ctx: AdminContext, host: str = "127.0.0.1", port: int = 15000):
        handler = type("Handler", (_Handler,), {"ctx": ctx})
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = http.server.ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.ctx = ctx
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="mc-admin", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self.httpd.server_address[:2]

    def start(self) -> AdminServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

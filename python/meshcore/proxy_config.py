"""`meshcore proxy-config listeners|routes|clusters|endpoints|secrets ADMIN_ADDR`.

What a running proxy holds, one row per thing, from its admin API (as
`istioctl proxy-config` reads a sidecar's Envoy):

    listeners  a row per listener and filter chain: bound address, chain match,
               terminal filter (route config or tcp_proxy clusters), TLS, RBAC
    routes     a row per route: route config, virtual host domains, match,
               action (cluster, weighted clusters, redirect, direct response),
               timeout, retry policy
    clusters   a row per cluster: type, load balancer, endpoints, circuit-breaker
               thresholds against the live gauges, outlier detection, TLS
    endpoints  a row per endpoint: health, weight, active requests/connections,
               success rate
    secrets    a row per static secret: certificate or trust bundle, SPIFFE ID,
               serial, validity; never key material

Sources: /config_dump, /config_dump?resource=static_secrets, /certs,
/clusters?format=json, /stats?format=json, /listeners?format=json and
/server_info. `-o json` (or yaml) prints the rows as data: the same facts as
the table, unabbreviated. Rows are built by pure functions of the admin
documents (``*_rows``), so they can be tested without a proxy.

Wired into the `meshcore` parser by one call, add_parser(sub), from
cli.build_parser(). An unreachable admin API is a MeshcoreError naming the
address (exit 1); bad arguments exit 2 (argparse).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import socket
import sys
import urllib.parse

from meshcore.errors import MeshcoreError

KINDS = ("listeners", "routes", "clusters", "endpoints", "secrets")

# Envoy's defaults, where the config leaves a field out.
DEFAULT_THRESHOLDS = {"max_connections": 1024, "max_pending_requests": 1024, "max_requests": 1024,
                      "max_retries": 3}
DEFAULT_ROUTE_TIMEOUT = "15s"
REDIRECT_CODES = {"MOVED_PERMANENTLY": 301, "FOUND": 302, "SEE_OTHER": 303, "TEMPORARY_REDIRECT": 307,
                  "PERMANENT_REDIRECT": 308}


# ---- the admin API --------------------------------------------------------------------


def admin_address(text: str) -> tuple[str, int]:
    """argparse type: "HOST:PORT", "[V6]:PORT", "http://HOST:PORT/" or "PORT" (127.0.0.1)."""
    t = text.strip()
    if "://" in t:
        t = t.split("://", 1)[1]
    t = t.rstrip("/")
    if t.isdigit():
        host, port = "127.0.0.1", t
    else:
        host, sep, port = t.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit():
            raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT or a port")
    if not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: port out of range")
    return host, int(port)


def show_address(addr: tuple[str, int]) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Admin:
    """GETs JSON from one admin API; every failure is a MeshcoreError naming the address."""

    def __init__(self, addr: tuple[str, int], timeout: float = 5.0):
        self.addr = addr
        self.timeout = timeout

    def fetch(self, path: str, headers: dict | None = None) -> tuple[int, str, str]:
        """(status, reason, body) of GET path; an unreachable admin API is a
        MeshcoreError naming it (`meshcore stat` scrapes through this too)."""
        import http.client  # here, not at import: `meshcore proxy` builds this parser too (admin.py: RSS)

        conn = http.client.HTTPConnection(*self.addr, timeout=self.timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.reason, resp.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as e:
            reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
            if isinstance(e, socket.timeout):
                reason = f"no answer within {self.timeout:g}s"
            raise MeshcoreError(f"cannot reach the admin API at {show_address(self.addr)}: {reason}") from None
        finally:
            conn.close()

    def get(self, path: str, missing_ok: bool = False):
        """The JSON document at path; None for a 404 when missing_ok."""
        where = show_address(self.addr)
        status, reason, body = self.fetch(path, {"Accept": "application/json"})
        if status == 404 and missing_ok:
            return None
        if status != 200:
            line = body.strip().splitlines()[0] if body.strip() else ""
            raise MeshcoreError(f"admin API at {where}: GET {path}: {status} {reason}"
                                + (f": {line}" if line else ""))
        try:
            return json.loads(body)
        except ValueError:
            raise MeshcoreError(f"admin API at {where}: GET {path}: not JSON "
                                f"(is {where} a meshcore or Envoy admin API?)") from None


# ---- reading the config dump (Envoy's JSON shape) -------------------------------------------


def _type(doc) -> str:
    """The message name of an Any in JSON: "...tcp_proxy.v3.TcpProxy" -> "TcpProxy"."""
    return (doc or {}).get("@type", "").rsplit(".", 1)[-1]


def _configs(dump, name: str) -> list[dict]:
    return [c for c in (dump or {}).get("configs", []) if _type(c) == name]


def dump_listeners(dump) -> list[dict]:
    out = []
    for c in _configs(dump, "ListenersConfigDump"):
        out += [x["listener"] for x in c.get("static_listeners", []) if "listener" in x]
        out += [x["active_state"]["listener"] for x in c.get("dynamic_listeners", [])
                if "listener" in x.get("active_state", {})]
    return out


def dump_clusters(dump) -> list[dict]:
    out = []
    for c in _configs(dump, "ClustersConfigDump"):
        for key in ("static_clusters", "dynamic_active_clusters"):
            out += [x["cluster"] for x in c.get(key, []) if "cluster" in x]
    return out


def dump_route_configs(dump) -> dict:
    """Route configurations delivered apart from listeners (Envoy's RDS), by name."""
    out = {}
    for c in _configs(dump, "RoutesConfigDump"):
        for key in ("static_route_configs", "dynamic_route_configs"):
            for x in c.get(key, []):
                rc = x.get("route_config", {})
                out[rc.get("name", "")] = rc
    return out


def _socket_address(addr) -> str:
    sa = (addr or {}).get("socket_address")
    if not sa:
        return "-"
    host, port = sa.get("address", ""), sa.get("port_value", 0)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def duration(text) -> str:
    """Envoy's JSON duration ("0.500s", "90s") shown short: "500ms", "1m30s"."""
    if text is None:
        return "-"
    try:
        secs = float(str(text).rstrip("s"))
    except ValueError:
        return str(text)
    if secs == 0:
        return "0s"
    if secs < 1:
        return f"{secs * 1000:g}ms"
    if secs != int(secs) or secs < 60:
        return f"{secs:g}s"
    secs = int(secs)
    parts = [(secs // 86400, "d"), (secs % 86400 // 3600, "h"), (secs % 3600 // 60, "m"), (secs % 60, "s")]
    return "".join(f"{n}{u}" for n, u in parts if n)


def _seconds(text, default: float) -> float:
    if text is None:
        return default
    try:
        return float(str(text).rstrip("s"))
    except ValueError:
        return default


# ---- listeners -------------------------------------------------------------------------------


def _chain_match(m: dict) -> str:
    if not m:
        return "all"
    parts = []
    for key, value in m.items():
        short = {"transport_protocol": "transport", "server_names": "sni",
                 "application_protocols": "alpn", "destination_port": "port"}.get(key, key)
        if isinstance(value, list):
            value = ",".join(v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in value)
        elif isinstance(value, dict):
            value = json.dumps(value, sort_keys=True)
        parts.append(f"{short}={value}")
    return " ".join(parts)


def _tls_context(ts, downstream: bool):
    """A transport socket's TLS as {mode, ...}; None for plaintext."""
    ctx = (ts or {}).get("typed_config", {})
    name = _type(ctx)
    if name not in ("DownstreamTlsContext", "UpstreamTlsContext"):
        return None
    common = ctx.get("common_tls_context", {})
    certs = [s.get("name", "") for s in common.get("tls_certificate_sds_secret_configs", [])]
    certs += ["<inline>"] * len(common.get("tls_certificates", []))
    validation, vc = None, None
    if "validation_context_sds_secret_config" in common:
        validation = common["validation_context_sds_secret_config"].get("name")
    elif "combined_validation_context" in common:
        cvc = common["combined_validation_context"]
        validation = cvc.get("validation_context_sds_secret_config", {}).get("name")
        vc = cvc.get("default_validation_context", {})
    elif "validation_context" in common:
        validation, vc = "<inline>", common["validation_context"]
    sans = []
    for m in (vc or {}).get("match_typed_subject_alt_names", []):
        sans.append(_string_match(m.get("matcher", {})))
    sans += [_string_match(m) for m in (vc or {}).get("match_subject_alt_names", [])]
    if downstream:
        mode = "mTLS" if ctx.get("require_client_certificate") else "TLS"
    else:
        mode = "mTLS" if certs else "TLS"
    out = {"mode": mode, "certificates": certs, "validation_context": validation}
    if sans:
        out["san_match"] = sans
    if common.get("alpn_protocols"):
        out["alpn"] = common["alpn_protocols"]
    if not downstream and ctx.get("sni"):
        out["sni"] = ctx["sni"]
    return out


def _rbac(filter_doc, where: str):
    cfg = filter_doc.get("typed_config", {})
    if _type(cfg) != "RBAC":
        return None
    out = {"filter": where}
    if "rules" in cfg:
        out["action"] = cfg["rules"].get("action", "ALLOW")
        out["policies"] = sorted(cfg["rules"].get("policies", {}))
    if "shadow_rules" in cfg:
        out["shadow_policies"] = sorted(cfg["shadow_rules"].get("policies", {}))
    return out


def _terminal(filters) -> dict:
    """The chain's terminal filter: http_connection_manager or tcp_proxy (or the last one)."""
    for f in reversed(filters):
        cfg = f.get("typed_config", {})
        name = _type(cfg)
        if name == "HttpConnectionManager":
            rc = cfg.get("route_config")
            route = rc.get("name", "") if rc is not None else cfg.get("rds", {}).get("route_config_name", "")
            return {"filter": "http_connection_manager", "route_config": route,
                    "http_filters": [h.get("name", "") for h in cfg.get("http_filters", [])]}
        if name == "TcpProxy":
            if "cluster" in cfg:
                clusters = [{"name": cfg["cluster"], "weight": 1}]
            else:
                clusters = [{"name": c.get("name", ""), "weight": c.get("weight", 1)}
                            for c in cfg.get("weighted_clusters", {}).get("clusters", [])]
            return {"filter": "tcp_proxy", "clusters": clusters}
    return {"filter": filters[-1].get("name", "?") if filters else "-"}


def listener_rows(dump, bound=None) -> list[dict]:
    """bound: {listener name: "ip:port"} from /listeners (the port really bound, for port 0)."""
    bound = bound or {}
    rows = []
    for li in dump_listeners(dump):
        name = li.get("name", "")
        chains = list(li.get("filter_chains", []))
        if "default_filter_chain" in li:
            chains.append({**li["default_filter_chain"], "name": li["default_filter_chain"].get("name", "default")})
        for k, chain in enumerate(chains or [{}]):
            filters = chain.get("filters", [])
            rbac = [r for r in (_rbac(f, "network") for f in filters) if r]
            for f in filters:
                if _type(f.get("typed_config")) == "HttpConnectionManager":
                    rbac += [r for r in (_rbac(h, "http") for h in f["typed_config"].get("http_filters", [])) if r]
            rows.append({
                "listener": name,
                "address": bound.get(name) or _socket_address(li.get("address")),
                "configured_address": _socket_address(li.get("address")),
                "chain": k,
                "chain_name": chain.get("name", ""),
                "match": chain.get("filter_chain_match", {}),
                "terminal": _terminal(filters),
                "tls": _tls_context(chain.get("transport_socket"), downstream=True),
                "rbac": rbac,
            })
    return rows


def _destination(t: dict) -> str:
    if t["filter"] == "http_connection_manager":
        return f"route {t['route_config'] or '-'}"
    if t["filter"] == "tcp_proxy":
        cs = t["clusters"]
        if len(cs) == 1:
            return f"cluster {cs[0]['name']}"
        return "clusters " + ", ".join(f"{c['name']}={c['weight']}" for c in cs)
    return "-"


def _rbac_text(rbac) -> str:
    if not rbac:
        return "-"
    out = []
    for r in rbac:
        if "action" in r:
            out.append(f"{r['action']} {','.join(r['policies']) or '(no policies)'}")
        if r.get("shadow_policies"):
            out.append(f"shadow {','.join(r['shadow_policies'])}")
    return "; ".join(out) or "-"


LISTENER_COLUMNS = [
    ("NAME", lambda r: r["listener"]),
    ("ADDRESS", lambda r: r["address"]),
    ("CHAIN", lambda r: r["chain_name"] or str(r["chain"])),
    ("MATCH", lambda r: _chain_match(r["match"])),
    ("FILTER", lambda r: r["terminal"]["filter"].replace("http_connection_manager", "HCM")),
    ("DESTINATION", lambda r: _destination(r["terminal"])),
    ("TLS", lambda r: r["tls"]["mode"] if r["tls"] else "none"),
    ("RBAC", lambda r: _rbac_text(r["rbac"])),
]


# ---- routes ------------------------------------------------------------------------------------


def _string_match(m: dict) -> str:
    """A StringMatcher as text: "=v", "^=v" (prefix), "$=v" (suffix), "*=v" (contains), "~v" (regex)."""
    ci = " (ignore case)" if m.get("ignore_case") else ""
    for key, op in (("exact", "="), ("prefix", "^="), ("suffix", "$="), ("contains", "*=")):
        if key in m:
            return f"{op}{m[key]}{ci}"
    if "safe_regex" in m:
        return f"~{m['safe_regex'].get('regex', '')}{ci}"
    return json.dumps(m, sort_keys=True)


def _header_match(h: dict) -> str:
    name = h.get("name", "")
    neg = "!" if h.get("invert_match") else ""
    if "string_match" in h:
        return f"{neg}{name}{_string_match(h['string_match'])}"
    if "present_match" in h:  # present_match: false means "absent"; invert_match flips either
        return f"{neg}{name}" if h["present_match"] else (name if neg else f"!{name}")
    for key, op in (("exact_match", "="), ("prefix_match", "^="), ("suffix_match", "$="),
                    ("contains_match", "*=")):
        if key in h:
            return f"{neg}{name}{op}{h[key]}"
    if "safe_regex_match" in h:
        return f"{neg}{name}~{h['safe_regex_match'].get('regex', '')}"
    return f"{neg}{name}"


def _route_match(m: dict) -> dict:
    out = {}
    for key in ("prefix", "path", "path_separated_prefix"):
        if key in m:
            out[key] = m[key]
    if "safe_regex" in m:
        out["regex"] = m["safe_regex"].get("regex", "")
    if m.get("case_sensitive") is False:
        out["case_sensitive"] = False
    if m.get("headers"):
        out["headers"] = [_header_match(h) for h in m["headers"]]
    if m.get("query_parameters"):
        out["query_parameters"] = [
            q.get("name", "") + (_string_match(q["string_match"]) if "string_match" in q else "")
            for q in m["query_parameters"]]
    return out


def _match_text(m: dict) -> str:
    path = next((f"{k} {m[k]}" for k in ("prefix", "path", "path_separated_prefix", "regex") if k in m), "any")
    extra = [*m.get("headers", []), *("?" + q for q in m.get("query_parameters", []))]
    if m.get("case_sensitive") is False:
        extra.append("case-insensitive")
    return path + (f" [{' '.join(extra)}]" if extra else "")


def _retry(rp, source: str):
    if rp is None:
        return None
    out = {"from": source, "retry_on": rp.get("retry_on", ""), "num_retries": rp.get("num_retries", 1)}
    for key in ("per_try_timeout", "retriable_status_codes", "retry_back_off"):
        if key in rp:
            out[key] = rp[key]
    if rp.get("retry_host_predicate"):
        out["retry_host_predicate"] = [p.get("name", "") for p in rp["retry_host_predicate"]]
    return out


def _action(route: dict) -> dict:
    if "route" in route:
        ra = route["route"]
        if "weighted_clusters" in ra:
            out = {"type": "weighted_clusters",
                   "clusters": [{"name": c.get("name", ""), "weight": c.get("weight", 1)}
                                for c in ra["weighted_clusters"].get("clusters", [])]}
        elif "cluster" in ra:
            out = {"type": "cluster", "cluster": ra["cluster"]}
        elif "cluster_header" in ra:
            out = {"type": "cluster_header", "header": ra["cluster_header"]}
        else:
            out = {"type": "route"}
        for key in ("prefix_rewrite", "host_rewrite_literal"):
            if key in ra:
                out[key] = ra[key]
        if "regex_rewrite" in ra:
            out["regex_rewrite"] = {"pattern": ra["regex_rewrite"].get("pattern", {}).get("regex", ""),
                                    "substitution": ra["regex_rewrite"].get("substitution", "")}
        if ra.get("request_mirror_policies"):
            out["mirrors"] = [m.get("cluster", "") for m in ra["request_mirror_policies"]]
        return out
    if "redirect" in route:
        rd = route["redirect"]
        out = {"type": "redirect", "response_code": REDIRECT_CODES.get(rd.get("response_code"), 301)}
        if rd.get("https_redirect"):
            out["scheme"] = "https"
        for key in ("scheme_redirect", "host_redirect", "port_redirect", "path_redirect", "prefix_rewrite",
                    "strip_query"):
            if key in rd:
                out[key] = rd[key]
        return out
    if "direct_response" in route:
        dr = route["direct_response"]
        body = dr.get("body", {})
        size = len(body.get("inline_string", "")) if "inline_string" in body else None
        return {"type": "direct_response", "status": dr.get("status", 0), "body_bytes": size}
    return {"type": "unknown"}


def _action_text(a: dict) -> str:
    t = a["type"]
    if t == "cluster":
        return a["cluster"]
    if t == "weighted_clusters":
        total = sum(c["weight"] for c in a["clusters"]) or 1
        return ", ".join(f"{c['name']} {c['weight']}" + ("%" if total == 100 else f"/{total}")
                         for c in a["clusters"])
    if t == "cluster_header":
        return f"cluster from header {a['header']}"
    if t == "redirect":
        scheme = a.get("scheme") or a.get("scheme_redirect")
        target = (f"{scheme}://" if scheme else "") + a.get("host_redirect", "")
        if a.get("port_redirect"):
            target += f":{a['port_redirect']}"
        target += a.get("path_redirect", "") or (f"{a['prefix_rewrite']}*" if "prefix_rewrite" in a else "")
        return f"redirect {a['response_code']} {target or '(same URL)'}"
    if t == "direct_response":
        return f"direct_response {a['status']}"
    return t


def _retry_text(r) -> str:
    if not r:
        return "-"
    text = f"{r['num_retries']}x on {r['retry_on'] or '(nothing)'}"
    if "per_try_timeout" in r:
        text += f", per try {duration(r['per_try_timeout'])}"
    if r["from"] == "virtual_host":
        text += " (vhost)"
    return text


def route_rows(dump) -> list[dict]:
    rows = []
    rds = dump_route_configs(dump)
    for li in dump_listeners(dump):
        for chain in li.get("filter_chains", []):
            for f in chain.get("filters", []):
                cfg = f.get("typed_config", {})
                if _type(cfg) != "HttpConnectionManager":
                    continue
                rc = cfg.get("route_config")
                if rc is None:
                    rc = rds.get(cfg.get("rds", {}).get("route_config_name", ""), {})
                for vh in rc.get("virtual_hosts", []):
                    for route in vh.get("routes", []):
                        action = _action(route)
                        timeout = None
                        if "route" in route:
                            timeout = route["route"].get("timeout", DEFAULT_ROUTE_TIMEOUT)
                        retry = _retry(route.get("route", {}).get("retry_policy"), "route") \
                            if "route" in route else None
                        if retry is None and "route" in route:
                            retry = _retry(vh.get("retry_policy"), "virtual_host")
                        rows.append({
                            "listener": li.get("name", ""),
                            "route_config": rc.get("name", ""),
                            "virtual_host": vh.get("name", ""),
                            "domains": vh.get("domains", []),
                            "name": route.get("name", ""),
                            "match": _route_match(route.get("match", {})),
                            "action": action,
                            "timeout": timeout,
                            "timeout_is_default": "route" in route and "timeout" not in route["route"],
                            "retry": retry,
                        })
    return rows


def _timeout_text(r) -> str:
    if r["timeout"] is None:
        return "-"
    if _seconds(r["timeout"], 1) == 0:
        return "disabled"
    return duration(r["timeout"]) + (" (default)" if r["timeout_is_default"] else "")


ROUTE_COLUMNS = [
    ("ROUTE CONFIG", lambda r: r["route_config"] or f"({r['listener']})"),
    ("VIRTUAL HOST", lambda r: r["virtual_host"]),
    ("DOMAINS", lambda r: ",".join(r["domains"])),
    ("NAME", lambda r: r["name"] or "-"),
    ("MATCH", lambda r: _match_text(r["match"])),
    ("ACTION", lambda r: _action_text(r["action"])),
    ("TIMEOUT", _timeout_text),
    ("RETRIES", lambda r: _retry_text(r["retry"])),
]


def _route_clusters(r) -> set:
    a = r["action"]
    names = {a.get("cluster")} | {c["name"] for c in a.get("clusters", [])} | set(a.get("mirrors", []))
    return names - {None}


# ---- clusters --------------------------------------------------------------------------------------


def _thresholds(cluster: dict) -> dict:
    out = dict(DEFAULT_THRESHOLDS)
    configured = False
    for t in cluster.get("circuit_breakers", {}).get("thresholds", []):
        if t.get("priority", "DEFAULT") == "DEFAULT":
            configured = True
            for key in DEFAULT_THRESHOLDS:
                if key in t:
                    out[key] = int(t[key])
    out["configured"] = configured
    return out


def _outlier(cluster: dict):
    od = cluster.get("outlier_detection")
    if od is None:
        return None
    # The core's reading of the fields (ext/compile_http.pxi): enforcing_* 0 turns a detector off.
    c5 = int(od.get("consecutive_5xx", 5)) if int(od.get("enforcing_consecutive_5xx", 100)) else 0
    gw = (int(od.get("consecutive_gateway_failure", 5))
          if int(od.get("enforcing_consecutive_gateway_failure", 0)) else 0)
    return {"consecutive_5xx": c5, "consecutive_gateway_failure": gw,
            "interval": od.get("interval", "10s"), "base_ejection_time": od.get("base_ejection_time", "30s"),
            "max_ejection_time": od.get("max_ejection_time", "300s"),
            "max_ejection_percent": int(od.get("max_ejection_percent", 10))}


def _config_hosts(cluster: dict) -> list[dict]:
    hosts = []
    for loc in cluster.get("load_assignment", {}).get("endpoints", []):
        for lbe in loc.get("lb_endpoints", []):
            hosts.append({"address": _socket_address(lbe.get("endpoint", {}).get("address")),
                          "weight": int(lbe.get("load_balancing_weight", 1))})
    return hosts


def _live_hosts(clusters_json) -> dict:
    """{cluster name: [HostStatus dicts]} from /clusters?format=json."""
    return {c.get("name", ""): c.get("host_statuses", [])
            for c in (clusters_json or {}).get("cluster_statuses", [])}


def _host_stats(h: dict) -> dict:
    return {s["name"]: int(s.get("value", 0)) for s in h.get("stats", []) if "name" in s}


def _cstat(stats: dict, cluster: str, name: str) -> int:
    return int(stats.get(f"cluster.{cluster}.{name}", 0))


def cluster_rows(dump, stats: dict, clusters_json=None) -> list[dict]:
    """stats: {name: value} from /stats?format=json."""
    live = _live_hosts(clusters_json)
    rows = []
    for c in dump_clusters(dump):
        name = c.get("name", "")
        th = _thresholds(c)
        hosts = live.get(name)
        rows.append({
            "name": name,
            "type": c.get("type") or c.get("cluster_type", {}).get("name") or "STATIC",
            "lb_policy": c.get("lb_policy", "ROUND_ROBIN"),
            "endpoints": len(hosts) if hosts is not None else len(_config_hosts(c)),
            "connect_timeout": c.get("connect_timeout", "5s"),
            "circuit_breakers": th,
            "live": {
                "cx_active": _cstat(stats, name, "upstream_cx_active"),
                "rq_active": _cstat(stats, name, "upstream_rq_active"),
                "rq_pending": _cstat(stats, name, "upstream_rq_pending_active"),
                "cx_overflow": _cstat(stats, name, "upstream_cx_overflow"),
                "rq_pending_overflow": _cstat(stats, name, "upstream_rq_pending_overflow"),
                "rq_overflow": _cstat(stats, name, "upstream_rq_overflow"),
                "rq_retry_overflow": _cstat(stats, name, "upstream_rq_retry_overflow"),
            },
            "outlier_detection": _outlier(c),
            "ejections_enforced_total": _cstat(stats, name, "outlier_detection.ejections_enforced_total"),
            "tls": _tls_context(c.get("transport_socket"), downstream=False),
        })
    return rows


def _gauge(active: int, limit: int) -> str:
    # Envoy calls a breaker "open" when its resource is at the limit: the next one overflows.
    return f"{active}/{limit}" + (" open" if active >= limit else "")


def _outlier_text(r) -> str:
    od = r["outlier_detection"]
    if od is None:
        return "off"
    parts = []
    if od["consecutive_5xx"]:
        parts.append(f"{od['consecutive_5xx']}x5xx")
    if od["consecutive_gateway_failure"]:
        parts.append(f"{od['consecutive_gateway_failure']}xgw")
    parts.append(f"eject {duration(od['base_ejection_time'])}")
    return f"on ({', '.join(parts)}; ejections {r['ejections_enforced_total']})"


def _tls_text(t) -> str:
    if not t:
        return "none"
    parts = [t["mode"]]
    if t.get("sni"):
        parts.append(f"sni={t['sni']}")
    if t.get("san_match"):
        parts.append("san" + ",".join(t["san_match"]))
    return " ".join(parts)


CLUSTER_COLUMNS = [
    ("NAME", lambda r: r["name"]),
    ("TYPE", lambda r: r["type"]),
    ("LB", lambda r: r["lb_policy"]),
    ("ENDPOINTS", lambda r: str(r["endpoints"])),
    ("CX", lambda r: _gauge(r["live"]["cx_active"], r["circuit_breakers"]["max_connections"])),
    ("RQ", lambda r: _gauge(r["live"]["rq_active"], r["circuit_breakers"]["max_requests"])),
    ("PENDING", lambda r: _gauge(r["live"]["rq_pending"], r["circuit_breakers"]["max_pending_requests"])),
    ("MAX RETRIES", lambda r: str(r["circuit_breakers"]["max_retries"])),
    ("OUTLIER", _outlier_text),
    ("TLS", lambda r: _tls_text(r["tls"])),
]


# ---- endpoints ---------------------------------------------------------------------------------------


def _reported_health(h: dict):
    """Health the admin API states (Envoy's HostHealthStatus), or None for plain "healthy"."""
    hs = h.get("health_status", {})
    if hs.get("failed_outlier_check"):
        return "ejected"
    if hs.get("failed_active_health_check"):
        return "unhealthy"
    if hs.get("pending_dynamic_removal"):
        return "removing"
    eds = hs.get("eds_health_status", "HEALTHY")
    return None if eds in ("HEALTHY", "UNKNOWN") else eds.lower()


def endpoint_rows(dump, clusters_json, stats: dict) -> list[dict]:
    configs = {c.get("name", ""): c for c in dump_clusters(dump)}
    rows = []
    for cname, hosts in _live_hosts(clusters_json).items():
        od = _outlier(configs.get(cname, {}))
        for h in hosts:
            hst = _host_stats(h)
            ok, bad = hst.get("rq_success", 0), hst.get("rq_error", 0)
            if "success_rate" in h:  # Envoy's outlier detector's rate, in percent
                rate = float(h["success_rate"].get("value", 0))
            elif od is not None and ok + bad:  # meshcore counts outcomes while outlier detection is on
                rate = round(100.0 * ok / (ok + bad), 2)
            else:
                rate = None
            rows.append({
                "address": _socket_address(h.get("address")),
                "cluster": cname,
                "health": _reported_health(h) or "healthy",
                "weight": int(h.get("weight", 1)),
                "rq_active": hst.get("rq_active", 0),
                "cx_active": hst.get("cx_active", 0),
                "rq_total": hst.get("rq_total", 0),
                "rq_success": ok,
                "rq_error": bad,
                "cx_total": hst.get("cx_total", 0),
                "cx_connect_fail": hst.get("cx_connect_fail", 0),
                "success_rate": rate,
            })
    return rows


ENDPOINT_COLUMNS = [
    ("ENDPOINT", lambda r: r["address"]),
    ("CLUSTER", lambda r: r["cluster"]),
    ("HEALTH", lambda r: r["health"]),
    ("WEIGHT", lambda r: str(r["weight"])),
    ("RQ ACTIVE", lambda r: str(r["rq_active"])),
    ("CX ACTIVE", lambda r: str(r["cx_active"])),
    ("RQ TOTAL", lambda r: str(r["rq_total"])),
    ("SUCCESS", lambda r: "-" if r["success_rate"] is None else f"{r['success_rate']:g}%"),
]


# ---- secrets -------------------------------------------------------------------------------------------


def _parse_time(text):
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def remaining(seconds: int | None) -> str:
    """Validity left, two largest units: "11h59m"; "EXPIRED 3m ago" once past."""
    if seconds is None:
        return "-"
    s = abs(int(seconds))
    parts = [(s // 86400, "d"), (s % 86400 // 3600, "h"), (s % 3600 // 60, "m"), (s % 60, "s")]
    text = "".join(f"{n}{u}" for n, u in parts if n)
    text = "".join(re.findall(r"\d+[dhms]", text)[:2]) or "0s"
    return text if seconds > 0 else f"EXPIRED {text} ago"


def _cert_row(d: dict, now: dt.datetime) -> dict:
    sans = d.get("subject_alt_names", [])
    uris = [s["uri"] for s in sans if "uri" in s]
    nb, na = _parse_time(d.get("valid_from")), _parse_time(d.get("expiration_time"))
    return {
        "spiffe_id": next((u for u in uris if u.startswith("spiffe://")), None),
        "subject_alt_names": [next(iter(s.values())) for s in sans if s],
        "serial": d.get("serial_number"),
        "not_before": d.get("valid_from"),
        "not_after": d.get("expiration_time"),
        "remaining_seconds": int((na - now).total_seconds()) if na else None,
        "valid": bool(nb and na and nb <= now < na),
    }


def _source(ds: dict) -> str:
    if "filename" in ds:
        return ds["filename"]
    return "inline" if ds else "-"


def secret_rows(secrets_dump, certs, now: dt.datetime | None = None) -> list[dict]:
    """secrets_dump: /config_dump?resource=static_secrets; certs: /certs (one
    entry per static secret, in the same order)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    entries = (certs or {}).get("certificates", [])
    rows = []
    for i, item in enumerate((secrets_dump or {}).get("configs", [])):
        secret = item.get("secret", {})
        name = item.get("name") or secret.get("name", "")
        entry = entries[i] if i < len(entries) else {}
        if "tls_certificate" in secret:
            kind, ds, details = "certificate", secret["tls_certificate"].get("certificate_chain", {}), \
                entry.get("cert_chain", [])
        elif "validation_context" in secret:
            kind, ds, details = "validation context", secret["validation_context"].get("trusted_ca", {}), \
                entry.get("ca_cert", [])
        else:
            kind, ds, details = next((k for k in secret if k not in ("name", "@type")), "unknown"), {}, []
        certs_ = [_cert_row(d, now) for d in details if d.get("serial_number")]
        row = {"name": name, "kind": kind, "source": _source(ds), "certificates": certs_}
        if kind == "validation context":
            row["root_count"] = len(certs_)
            # The bundle is as good as its first root to expire.
            first = min(certs_, key=lambda c: c["remaining_seconds"] if c["remaining_seconds"] is not None
                        else float("inf"), default=None)
        else:
            row["chain_length"] = len(certs_)
            first = certs_[0] if certs_ else None  # the leaf
        for key in ("spiffe_id", "serial", "not_before", "not_after", "remaining_seconds", "valid"):
            row[key] = first[key] if first else None
        if kind == "validation context":
            row["trust_domains"] = sorted({c["spiffe_id"] for c in certs_ if c["spiffe_id"]})
        if details and not certs_:
            row["error"] = f"cannot read a certificate from {row['source']}"
        rows.append(row)
    return rows


def _identity(r) -> str:
    if r["kind"] == "validation context" and r.get("trust_domains"):
        return ",".join(r["trust_domains"])
    if r.get("spiffe_id"):
        return r["spiffe_id"]
    sans = r["certificates"][0]["subject_alt_names"] if r["certificates"] else []
    return ",".join(sans) or "-"


def _count_text(r) -> str:
    if "root_count" in r:
        return f"{r['root_count']} root" + "s" * (r["root_count"] != 1)
    return f"chain {r['chain_length']}"


SECRET_COLUMNS = [
    ("NAME", lambda r: r["name"]),
    ("KIND", lambda r: r["kind"]),
    ("IDENTITY", _identity),
    ("SERIAL", lambda r: r["serial"] or "-"),
    ("NOT BEFORE", lambda r: r["not_before"] or "-"),
    ("NOT AFTER", lambda r: r["not_after"] or "-"),
    ("REMAINING", lambda r: r.get("error") or remaining(r["remaining_seconds"])),
    ("CERTS", _count_text),
    ("SOURCE", lambda r: r["source"]),
]


# ---- output -----------------------------------------------------------------------------------------------


def render_table(columns, rows) -> str:
    cells = [[h for h, _ in columns]] + [[str(fmt(r)) for _, fmt in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n"
                   for row in cells)


def render(rows, columns, output: str) -> str:
    if output == "json":
        return json.dumps(rows, indent=2) + "\n"
    if output == "yaml":
        import yaml

        return yaml.safe_dump(rows, sort_keys=False, default_flow_style=False)
    return render_table(columns, rows)


# ---- the command ------------------------------------------------------------------------------------------


def _stats(admin: Admin, pattern: str) -> dict:
    doc = admin.get("/stats?format=json&filter=" + urllib.parse.quote(pattern))
    return {s["name"]: s["value"] for s in doc.get("stats", []) if "name" in s}


def collect(kind: str, admin: Admin) -> list[dict]:
    """The rows of one kind, from the admin API."""
    if kind == "secrets":
        dump = admin.get("/config_dump?resource=static_secrets", missing_ok=True)
        if dump is None:
            raise MeshcoreError(f"admin API at {show_address(admin.addr)} does not list secrets "
                                "(/config_dump?resource=static_secrets)")
        certs = admin.get("/certs", missing_ok=True) or {}
        return secret_rows(dump, certs)
    dump = admin.get("/config_dump")
    if kind == "listeners":
        doc = admin.get("/listeners?format=json")
        bound = {ls.get("name", ""): _socket_address(ls.get("local_address"))
                 for ls in doc.get("listener_statuses", [])}
        return listener_rows(dump, bound)
    if kind == "routes":
        return route_rows(dump)
    stats = _stats(admin, r"^cluster\.")
    clusters_json = admin.get("/clusters?format=json")
    if kind == "clusters":
        return cluster_rows(dump, stats, clusters_json)
    return endpoint_rows(dump, clusters_json, stats)


def select(kind: str, rows: list[dict], args) -> list[dict]:
    """Applies the kind's filters (--name, --port, --cluster, ...)."""
    def keep(r):
        name = getattr(args, "name", None)
        if kind == "listeners":
            port = str(args.port) if args.port is not None else None
            return ((name is None or r["listener"] == name)
                    and (port is None or port in (r["address"].rsplit(":", 1)[-1],
                                                  r["configured_address"].rsplit(":", 1)[-1]))
                    and (args.address is None or r["address"].rsplit(":", 1)[0].strip("[]") == args.address))
        if kind == "routes":
            return ((name is None or r["route_config"] == name)
                    and (args.cluster is None or args.cluster in _route_clusters(r))
                    and (args.domain is None or args.domain in r["domains"]))
        if kind == "clusters":
            return name is None or r["name"] == name
        if kind == "endpoints":
            host, _, port = r["address"].rpartition(":")
            return ((args.cluster is None or r["cluster"] == args.cluster)
                    and (args.address is None or host.strip("[]") == args.address)
                    and (args.port is None or port == str(args.port))
                    and (args.status is None or r["health"] == args.status))
        return name is None or r["name"] == name
    return [r for r in rows if keep(r)]


COLUMNS = {"listeners": LISTENER_COLUMNS, "routes": ROUTE_COLUMNS, "clusters": CLUSTER_COLUMNS,
           "endpoints": ENDPOINT_COLUMNS, "secrets": SECRET_COLUMNS}


def _cmd(args) -> int:
    admin = Admin(args.admin, args.timeout)
    rows = select(args.kind_name, collect(args.kind_name, admin), args)
    sys.stdout.write(render(rows, COLUMNS[args.kind_name], args.output))
    return 0


def add_parser(sub) -> argparse.ArgumentParser:
    """Adds `meshcore proxy-config` (alias `pc`) to the `meshcore` subcommands."""
    pc = sub.add_parser(
        "proxy-config", aliases=["pc"], help="show a running proxy's listeners, routes, clusters, endpoints, "
        "secrets (from its admin API)",
        description="Summarise a running meshcore proxy's configuration and live state from its admin API, "
                    "as `istioctl proxy-config` does for Envoy. See docs/cli.md.")
    kinds = pc.add_subparsers(dest="kind", required=True, metavar="{" + ",".join(KINDS) + "}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("admin", metavar="ADMIN_ADDR", type=admin_address,
                        help="the proxy's admin API: HOST:PORT, or a port on 127.0.0.1")
    common.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table",
                        help="table (default), or the rows as json / yaml")
    common.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the admin API (default 5)")

    def kind(name, aliases, help_text):
        p = kinds.add_parser(name, aliases=aliases, parents=[common], help=help_text, description=help_text)
        p.set_defaults(func=_cmd, kind_name=name)
        return p

    p = kind("listeners", ["listener", "l"], "a row per listener and filter chain")
    p.add_argument("--name", help="only this listener")
    p.add_argument("--port", type=int, help="only listeners on this port (bound or configured)")
    p.add_argument("--address", help="only listeners bound to this IP")
    p = kind("routes", ["route", "r"], "a row per route")
    p.add_argument("--name", help="only this route configuration")
    p.add_argument("--cluster", help="only routes sending to (or mirroring to) this cluster")
    p.add_argument("--domain", help="only virtual hosts listing this domain")
    p = kind("clusters", ["cluster", "c"], "a row per cluster, with live circuit-breaker gauges")
    p.add_argument("--name", help="only this cluster")
    p = kind("endpoints", ["endpoint", "ep"], "a row per endpoint of every cluster")
    p.add_argument("--cluster", help="only this cluster's endpoints")
    p.add_argument("--address", help="only endpoints with this IP")
    p.add_argument("--port", type=int, help="only endpoints on this port")
    p.add_argument("--status", choices=["healthy", "ejected", "unhealthy"],
                   help="only endpoints in this state")
    p = kind("secrets", ["secret", "s"], "a row per static secret (certificates and trust bundles)")
    p.add_argument("--name", help="only this secret")
    return pc

"""`meshcore proxy-config clusters` and `endpoints`: a row per cluster, a row per endpoint,
with the live gauges next to the configured limits."""
from __future__ import annotations

from .dump import dump_clusters, duration, socket_address
from .listeners import tls_context

# Envoy's defaults, where the config leaves a field out.
DEFAULT_THRESHOLDS = {"max_connections": 1024, "max_pending_requests": 1024, "max_requests": 1024,
                      "max_retries": 3}


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
            hosts.append({"address": socket_address(lbe.get("endpoint", {}).get("address")),
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
            "tls": tls_context(c.get("transport_socket"), downstream=False),
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
                "address": socket_address(h.get("address")),
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

"""`meshcore proxy-config routes`: a row per route."""
from __future__ import annotations

import json

from .dump import dump_listeners, dump_route_configs, duration, duration_seconds, short_type

# Envoy's defaults, where the config leaves a field out.
DEFAULT_ROUTE_TIMEOUT = "15s"
REDIRECT_CODES = {"MOVED_PERMANENTLY": 301, "FOUND": 302, "SEE_OTHER": 303, "TEMPORARY_REDIRECT": 307,
                  "PERMANENT_REDIRECT": 308}


def string_match(m: dict) -> str:
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
        return f"{neg}{name}{string_match(h['string_match'])}"
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
            q.get("name", "") + (string_match(q["string_match"]) if "string_match" in q else "")
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
                if short_type(cfg) != "HttpConnectionManager":
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
    if duration_seconds(r["timeout"], 1) == 0:
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


def route_clusters(r) -> set:
    a = r["action"]
    names = {a.get("cluster")} | {c["name"] for c in a.get("clusters", [])} | set(a.get("mirrors", []))
    return names - {None}

"""`meshcore proxy-config listeners`: a row per listener and filter chain."""
from __future__ import annotations

import json

from .dump import dump_listeners, short_type, socket_address
from .routes import string_match


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


def tls_context(ts, downstream: bool):
    """A transport socket's TLS as {mode, ...}; None for plaintext."""
    ctx = (ts or {}).get("typed_config", {})
    name = short_type(ctx)
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
        sans.append(string_match(m.get("matcher", {})))
    sans += [string_match(m) for m in (vc or {}).get("match_subject_alt_names", [])]
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
    if short_type(cfg) != "RBAC":
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
        name = short_type(cfg)
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
                if short_type(f.get("typed_config")) == "HttpConnectionManager":
                    rbac += [r for r in (_rbac(h, "http") for h in f["typed_config"].get("http_filters", [])) if r]
            rows.append({
                "listener": name,
                "address": bound.get(name) or socket_address(li.get("address")),
                "configured_address": socket_address(li.get("address")),
                "chain": k,
                "chain_name": chain.get("name", ""),
                "match": chain.get("filter_chain_match", {}),
                "terminal": _terminal(filters),
                "tls": tls_context(chain.get("transport_socket"), downstream=True),
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

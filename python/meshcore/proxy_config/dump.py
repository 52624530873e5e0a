"""Reading a config dump (Envoy's JSON shape, /config_dump) and printing rows:
the helpers every kind of row shares."""
from __future__ import annotations

import json


def short_type(doc) -> str:
    """The message name of an Any in JSON: "...tcp_proxy.v3.TcpProxy" -> "TcpProxy"."""
    return (doc or {}).get("@type", "").rsplit(".", 1)[-1]


def _configs(dump, name: str) -> list[dict]:
    return [c for c in (dump or {}).get("configs", []) if short_type(c) == name]


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


def socket_address(addr) -> str:
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


def duration_seconds(text, default: float) -> float:
    if text is None:
        return default
    try:
        return float(str(text).rstrip("s"))
    except ValueError:
        return default





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

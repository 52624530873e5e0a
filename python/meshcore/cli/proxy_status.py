"""`meshcore proxy-status [STATUS_ADDR]`: every proxy connected to a control
plane and, per xDS type, whether it has what was sent, as `istioctl
proxy-status` shows it (read from the control plane's /debug/syncz).

    SYNCED     the last response sent was ACKed
    NOT SENT   nothing of that type sent (not subscribed, or nothing to send yet)
    STALE      sent, not ACKed (yet)
    NACK       the last response sent was rejected (`-o json` has the message)
"""
from __future__ import annotations

TYPES = ("CDS", "LDS", "EDS", "RDS", "SDS")


def fetch(address: str, timeout: float) -> dict:
    import json
    import urllib.error
    import urllib.request

    from meshcore.errors import MeshcoreError

    url = f"http://{address}/debug/syncz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise MeshcoreError(f"control plane status {url}: {getattr(e, 'reason', e)}") from None


def rows(status: dict) -> list[list[str]]:
    out = []
    proxies = status.get("proxies", [])
    count: dict = {}
    for p in proxies:
        count[p.get("workload")] = count.get(p.get("workload"), 0) + 1
    for p in proxies:
        name = f"{p.get('name')}.{p.get('namespace')}" if p.get("workload") else f"(connecting #{p['id']})"
        if count.get(p.get("workload"), 0) > 1:
            name += f" #{p['id']}"
        types = p.get("types", {})
        out.append([name, *[types.get(t, {}).get("state", "NOT SENT") for t in TYPES],
                    p.get("config_version") or "-", p.get("mode", "")])
    return out


def table(status: dict) -> str:
    header = ["NAME", *TYPES, "VERSION", "XDS"]
    body = rows(status)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *body]]
    return "\n".join(lines) + "\n"


def run(args) -> int:
    import json
    import sys

    status = fetch(args.status, args.timeout)
    if args.output == "json":
        sys.stdout.write(json.dumps(status, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(table(status))
        rejected = status.get("config", {}).get("rejected") or []
        if status.get("config", {}).get("last_rejected_version"):
            last = rejected[-1] if rejected else {}
            sys.stdout.write(f"\nconfig {last.get('version')} rejected ({len(last.get('reasons', []))} "
                             f"error(s)); serving {status['config'].get('version')}\n")
    return 0


def _address(text: str) -> str:
    return f"127.0.0.1:{text}" if text.isdigit() else text


def register(subparsers) -> None:
    p = subparsers.add_parser("proxy-status", help="what every proxy connected to a control plane has ACKed",
                              description="The proxies connected to a control plane and, per xDS type, SYNCED, "
                                          "NOT SENT, STALE (sent, not ACKed) or NACK, as `istioctl proxy-status`.")
    p.add_argument("status", nargs="?", default="127.0.0.1:15014", type=_address, metavar="STATUS_ADDR",
                   help="the control plane's status address: HOST:PORT, or a port on 127.0.0.1 "
                        "(default 127.0.0.1:15014)")
    p.add_argument("-o", "--output", choices=["table", "json"], default="table",
                   help="table (default), or json: the whole /debug/syncz")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the control plane (default 5)")
    p.set_defaults(func=run)

"""`meshcore proxy-config secrets`: a row per static secret; never key material."""
from __future__ import annotations

import datetime as dt
import re


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

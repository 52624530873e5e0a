"""Durations, each parser named for its input and the unit it returns.

- `go_duration_ns("1m30s")` -> 90_000_000_000: Istio's YAML durations (Go /
  Kubernetes syntax: ns, us, ms, s, m, h; fractions allowed), in nanoseconds,
  None when malformed (the schema reports it).
- `parse_lifetime("24h")` -> timedelta: certificate lifetimes (s, m, h, d, w,
  y; whole seconds), ConfigError when malformed; `format_lifetime` is its inverse.
- `duration_ms(msg, field, default)` -> int: a google.protobuf.Duration field of
  an xDS message, in whole milliseconds (what the core takes).
"""
from __future__ import annotations

import datetime as dt
import re

from meshcore.errors import ConfigError

# ---- Go / Kubernetes durations (Istio YAML) -> nanoseconds --------------------------------------

_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}
MS = 1_000_000


def go_duration_ns(text) -> int | None:
    """A Go/Kubernetes duration ("10s", "1.5s", "1m30s", "250ms") in nanoseconds, or None."""
    if not isinstance(text, str) or not text:
        return None
    if text == "0":
        return 0
    pos, total = 0, 0
    for m in _GO_DURATION.finditer(text):
        if m.start() != pos:
            return None
        total += round(float(m.group(1)) * _UNIT_NS[m.group(2)])
        pos = m.end()
    return total if pos == len(text) else None


# ---- certificate lifetimes -> timedelta ------------------------------------------------------

_LIFETIME_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_LIFETIME = re.compile(r"(?:\d+[smhdwy])+")
_LIFETIME_PART = re.compile(r"(\d+)([smhdwy])")
_MAX_LIFETIME = dt.timedelta(days=100 * 365)


def parse_lifetime(value, what: str = "duration") -> dt.timedelta:
    """"24h", "5s", "90m", "7d", "10y" (365 days), "1h30m"; a timedelta or a
    number of seconds passes through. Whole seconds, at least one second."""
    if isinstance(value, dt.timedelta):
        td = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        td = dt.timedelta(seconds=value)
    elif isinstance(value, str):
        text = value.strip()
        if not _LIFETIME.fullmatch(text):
            raise ConfigError(f"{what} {value!r}: expected a number and a unit (s, m, h, d, w, y), "
                              "e.g. 5s, 90m, 24h, 10y")
        td = dt.timedelta(seconds=sum(int(n) * _LIFETIME_UNIT_S[u] for n, u in _LIFETIME_PART.findall(text)))
    else:
        raise ConfigError(f"{what} {value!r}: expected a duration such as 24h")
    if td.microseconds:
        raise ConfigError(f"{what} {value!r}: certificates count whole seconds")
    if td < dt.timedelta(seconds=1):
        raise ConfigError(f"{what} {value!r}: must be at least 1s")
    if td > _MAX_LIFETIME:
        raise ConfigError(f"{what} {value!r}: longer than 100 years")
    return td


def format_lifetime(td: dt.timedelta) -> str:
    """The inverse of parse_lifetime, in days (from two days on), hours,
    minutes and seconds: 5s, 1h30m, 24h, 36h, 90d."""
    total = int(td.total_seconds())
    if total <= 0:
        return "0s"
    out = []
    for unit in ("d", "h", "m", "s") if total >= 2 * 86400 else ("h", "m", "s"):
        n, total = divmod(total, _LIFETIME_UNIT_S[unit])
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


# ---- google.protobuf.Duration -> milliseconds -------------------------------------------------


def duration_ms(parent, field: str, default_ms: int) -> int:
    """parent.<field> (a google.protobuf.Duration) in whole milliseconds, or default_ms if unset.

    A positive duration below 1 ms rounds up to 1: for timeouts 0 means
    "disabled", which a user asking for 0.5ms did not mean.
    """
    if not parent.HasField(field):
        return default_ms
    d = getattr(parent, field)
    ns = d.seconds * 1_000_000_000 + d.nanos
    return -((-ns) // 1_000_000) if ns > 0 else ns // 1_000_000

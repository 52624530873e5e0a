"""argparse types shared by the subcommands: each turns a command-line word
into a value or an ArgumentTypeError (exit 2, with the usage line)."""
from __future__ import annotations

import argparse
import datetime as dt

from meshcore.durations import parse_lifetime
from meshcore.errors import ConfigError


def workload_ref(text: str) -> str:
    """NAMESPACE/NAME, or NAME (namespace default) -> "NAMESPACE/NAME"."""
    ns, _, name = text.rpartition("/")
    if not name or "/" in ns:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAMESPACE/NAME or NAME")
    return f"{ns or 'default'}/{name}"


def ip(text: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None
    return text


def lifetime(what: str):
    """A certificate lifetime ("24h", "90d") -> timedelta; `what` names the flag in errors."""
    def parse(text: str) -> dt.timedelta:
        try:
            return parse_lifetime(text, what)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


def lifetime_text(text: str) -> str:
    """A certificate lifetime, checked and kept as written (ca.yaml keeps the text)."""
    try:
        parse_lifetime(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def bounded(unit: str, low: float, high: float):
    """An argparse type: a number of `unit` between low and high."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {unit}") from None
        if not low <= v <= high:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {low:g}..{high:g} {unit}")
        return v
    return parse

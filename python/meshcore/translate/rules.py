"""Rules and node builders shared by the resource schemas (Istio's own rules for
header names, regexes, percentages, ports, hosts, labels, exportTo)."""
from __future__ import annotations

import re

from meshcore.config import route as xds_route
from meshcore.config.rules import MAX_DIRECT_RESPONSE_BODY as XDS_MAX_DIRECT_RESPONSE_BODY

from . import hosts
from .schema import (
    Int,
    List,
    Map,
    Num,
    Obj,
    Str,
)

# ---- small rules ------------------------------------------------------------------------------

_HEADER_NAME = re.compile(r"[-_A-Za-z0-9]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
MAX_DIRECT_RESPONSE_BODY = XDS_MAX_DIRECT_RESPONSE_BODY  # meshcore's limit (Envoy's default)
ISTIO_MAX_DIRECT_RESPONSE_BODY = 1024 * 1024

# Istio's supportedRetryOnPolicies; HTTP status codes are accepted besides.
ISTIO_RETRY_ON = frozenset({
    "5xx", "gateway-error", "reset", "connect-failure", "envoy-ratelimited", "retriable-4xx",
    "refused-stream", "retriable-status-codes", "retriable-headers", "reset-before-request",
    "http3-post-connect-failure", "cancelled", "deadline-exceeded", "internal", "resource-exhausted",
    "unavailable",
})
# Go's http.StatusText codes: what Istio takes as a status code in retryOn.
HTTP_STATUS_CODES = frozenset(
    [100, 101, 102, 103, *range(200, 209), 226, 300, 301, 302, 303, 304, 305, 307, 308,
     *range(400, 419), 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, *range(500, 509), 510, 511]
)
REDIRECT_CODES = (301, 302, 303, 307, 308)  # what Envoy (and so meshcore) can send
GRPC_STATUS = frozenset({
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
})
MESH_GATEWAY = "mesh"


def header_name_problem(name) -> str | None:
    if not name:
        return "header name cannot be empty"
    if not _HEADER_NAME.fullmatch(name):
        return f'header name "{name}" is not a valid header name'
    return None


def regex_problem(regex: str) -> str | None:
    if regex == "":
        return "regex string match should not be empty"
    if len(regex) > 1024:
        return "regex is too large, max length allowed is 1024"
    return xds_route.regex_problem(regex)  # the same RE2 check the bootstrap validator makes


def label_map():
    def value_check(v, path, out):
        problem = hosts.label_value_problem(v)
        if problem:
            out.error(path, problem)

    return Map(Str(check=value_check), key_check=hosts.label_key_problem)


def subset_labels():
    m = label_map()
    m.to = "the subset's endpoints: those with all these labels"
    return m


def target_ref():
    """A policy's targetRef (Gateway API: gateways and waypoints)."""
    return Obj(fields={"group": Str(max_len=253), "kind": Str(max_len=63), "name": Str(max_len=253),
                       "namespace": Str()}, required=("kind", "name"))


def selector_labels(max_props=4096):
    m = label_map()
    m.max_props = max_props
    return m


def check_percent(v, path, out):
    if not 0 <= v <= 100:
        out.error(path, f"percentage {v:g} is not in range 0..100")


def percent_node(to=""):
    return Obj(fields={"value": Num(check=check_percent)}, to=to)


def check_host(v, path, out):
    problem = hosts.host_problem(v)
    if problem and not hosts.is_ip(v):
        out.error(path, problem)


def check_dest_host(v, path, out):
    if v == "*":
        out.error(path, f"invalid destination host {v}")
    else:
        check_host(v, path, out)


def check_subset_name(v, path, out):
    if not v:
        out.error(path, "subset name cannot be empty")
    elif not hosts.is_dns1123_label(v):
        out.error(path, f"subset name is invalid: {v}")


def check_dns_label(what):
    def check(v, path, out):
        if not hosts.is_dns1123_label(v):
            out.error(path, f"{what} {v} is invalid")

    return check


def port_number(what="port number", to=""):
    return Int(lo=1, hi=65535, what=f"{what} must be between 1-65535", to=to)


def check_header_value(v, path, out):
    if _BAD_VALUE.search(v):
        out.error(path, "header values must not contain CR, LF or NUL")
    elif "%" in v:
        out.unsupported(path, 'Envoy substitution commands ("%...%") are not supported, so "%" may not appear')


def check_gateway_names(names, path, out):
    for i, name in enumerate(names):
        if not isinstance(name, str):
            continue
        ns, sep, gw = name.partition("/")
        if not sep:
            problem = hosts.host_problem(name, wildcard_ok=False)
            if problem:
                out.error(f"{path}[{i}]", problem)
        elif not ns or not gw:
            out.error(f"{path}[{i}]", "config namespace and gateway name cannot be empty")
        elif not hosts.is_dns1123_label(ns) or not hosts.is_dns1123_label(gw):
            out.error(f"{path}[{i}]", f'invalid gateway name "{name}"')


def check_export_to(values, path, out):
    for i, v in enumerate(values):
        if v not in (".", "*", "~") and not hosts.is_dns1123_label(v):
            out.error(f"{path}[{i}]", f'exportTo "{v}" is not ".", "*", "~" or a namespace name')


def export_to():
    return List(Str(), check=check_export_to, to="visibility: which namespaces' sidecars get the resource")


def check_http_status(v, path, out):
    if not 200 <= v <= 599:
        out.error(path, f"HTTP status {v} is not in range 200-599")


def nonneg(what, to=""):
    return Int(lo=0, what=f"{what} must be non-negative", to=to)


def check_percent_int(v, path, out):
    if not 0 <= v <= 100:
        out.error(path, f"percentage {v} is not in range 0..100")


def workload_selector():
    return Obj(fields={"matchLabels": selector_labels()})

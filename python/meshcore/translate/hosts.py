"""Names: Kubernetes/Istio name rules, host resolution and matching as Istio does them."""
from __future__ import annotations

import ipaddress
import re

DOMAIN = "cluster.local"  # the mesh's DNS domain (Istio's default)

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_]*[A-Za-z0-9])?|[A-Za-z0-9]")
_PORT_NAME = re.compile(r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?")


def is_dns1123_label(s: str) -> bool:
    return isinstance(s, str) and len(s) <= 63 and bool(_DNS1123_LABEL.fullmatch(s))


def is_dns1123_subdomain(s: str) -> bool:
    return isinstance(s, str) and len(s) <= 253 and bool(_DNS1123_SUBDOMAIN.fullmatch(s))


def label_key_problem(key: str) -> str | None:
    """Kubernetes label key rules: [prefix/]name."""
    prefix, _, name = key.rpartition("/")
    if "*" in key:
        return "wildcard not allowed in label key match"
    if prefix and not is_dns1123_subdomain(prefix):
        return f'invalid label key "{key}": the prefix must be a DNS subdomain'
    if not name or len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        return f'invalid label key "{key}"'
    return None


def label_value_problem(value) -> str | None:
    if not isinstance(value, str):
        return "label values must be strings"
    if "*" in value:
        return "wildcard is not supported in selector"
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        return f'invalid label value "{value}"'
    return None


def port_name_problem(name: str) -> str | None:
    if len(name) >= 63 or not _PORT_NAME.fullmatch(name):
        return f'port name "{name}" must be valid (letters, digits and "-", starting and ending alphanumeric)'
    return None


def is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def is_cidr(s: str) -> bool:
    try:
        ipaddress.ip_network(s, strict=False)
        return True
    except ValueError:
        return False


def host_problem(host: str, wildcard_ok: bool = True) -> str | None:
    """Istio's ValidateWildcardDomain: a DNS name, optionally starting with "*"."""
    if not isinstance(host, str) or not host:
        return "host must not be empty"
    if len(host) > 255:
        return f'host "{host}" is longer than 255 characters'
    name = host
    if host.startswith("*"):
        if not wildcard_ok:
            return f'host "{host}": wildcards are not allowed here'
        name = host[1:]
        if name.startswith("."):
            name = name[1:]
        if not name:
            return None  # "*"
    for label in name.split("."):
        if not label or len(label) > 63 or not _HOST_LABEL.fullmatch(label):
            return f'host "{host}" is not a valid domain name'
    return None


def fqdn(host: str, namespace: str) -> str:
    """Istio's ResolveShortnameToFQDN: "reviews" in namespace "default" ->
    reviews.default.svc.cluster.local; names with a dot and "*" stay as written."""
    if host == "*" or "." in host:
        return host
    return f"{host}.{namespace}.svc.{DOMAIN}"


def is_wildcard(host: str) -> bool:
    return host.startswith("*")


def matches(host: str, pattern: str) -> bool:
    """Whether `host` (may itself be a wildcard) falls under `pattern` (Istio's host.Name.Matches, one way)."""
    if pattern == "*":
        return True
    if is_wildcard(pattern):
        suffix = pattern[1:]
        if is_wildcard(host):
            return host[1:].endswith(suffix)
        return host.endswith(suffix) and len(host) > len(suffix)
    return host == pattern


def specificity(pattern: str) -> int:
    """Larger is more specific: exact hosts beat every wildcard; longer suffixes beat shorter."""
    return 10_000 if not is_wildcard(pattern) else len(pattern)


def k8s_parts(host: str):
    """(name, namespace) for name.namespace.svc.cluster.local, else None."""
    suffix = f".svc.{DOMAIN}"
    if not host.endswith(suffix):
        return None
    parts = host[: -len(suffix)].split(".")
    if len(parts) != 2:
        return None
    return parts[0], parts[1]


def alt_names(host: str, proxy_namespace: str) -> list[str]:
    """The names an app may use for a host (Istio's GenerateAltVirtualHosts):
    the FQDN, name.namespace.svc, name.namespace and, from the same
    namespace, the short name."""
    out = [host]
    parts = k8s_parts(host)
    if parts:
        name, ns = parts
        out += [f"{name}.{ns}.svc", f"{name}.{ns}"]
        if ns == proxy_namespace:
            out.append(name)
    return out

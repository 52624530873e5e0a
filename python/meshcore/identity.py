"""Workload identity: SPIFFE IDs, trust domains, service accounts.

One home for what the CA, the translation and the telemetry all say about who
a workload is: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.

- `spiffe_id` formats a workload's ID as the translation writes it (no
  validation; an empty service account is DEFAULT_SERVICE_ACCOUNT);
  `workload_id` formats and validates (what the CA signs).
- `parse_spiffe_id` / `parse_workload_id` parse strictly (SPIFFE ID spec 2);
  `principal_namespace` reads the namespace of a principal leniently (metrics labels).
"""
from __future__ import annotations

import re

from meshcore.errors import ConfigError

DEFAULT_TRUST_DOMAIN = "cluster.local"  # Istio's default meshConfig.trustDomain
DEFAULT_SERVICE_ACCOUNT = "default"  # what a pod without one runs as in Kubernetes
CERT_SECRET = "default"  # Istio's SDS names: the workload's certificate...
ROOT_SECRET = "ROOTCA"  # ...and the roots it trusts
MAX_SPIFFE_ID_LENGTH = 2048  # SPIFFE-ID 2.3
MAX_TRUST_DOMAIN_LENGTH = 255
UNKNOWN = "unknown"


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    """The workload's SPIFFE ID as the translation writes it (not validated)."""
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account or DEFAULT_SERVICE_ACCOUNT}"


def principal_namespace(principal: str) -> str:
    """NS of spiffe://TD/ns/NS/sa/SA, else unknown."""
    parts = principal.split("/")
    if len(parts) >= 7 and parts[0] == "spiffe:" and parts[3] == "ns":
        return parts[4]
    return UNKNOWN


_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


def validate_trust_domain(trust_domain: str) -> str:
    """Returns the trust domain; ConfigError unless it is a valid SPIFFE trust
    domain name (SPIFFE-ID 2.1: lowercase letters, digits, '.', '-', '_')."""
    if not isinstance(trust_domain, str) or not trust_domain:
        raise ConfigError("trust domain: must not be empty")
    if trust_domain.startswith("spiffe://"):
        raise ConfigError(f"trust domain {trust_domain!r}: give the name alone, e.g. "
                          f"{trust_domain[len('spiffe://'):].rstrip('/')!r}")
    if len(trust_domain) > MAX_TRUST_DOMAIN_LENGTH:
        raise ConfigError(f"trust domain {trust_domain[:40]!r}...: longer than {MAX_TRUST_DOMAIN_LENGTH} bytes")
    if not _TRUST_DOMAIN.fullmatch(trust_domain):
        raise ConfigError(f"trust domain {trust_domain!r}: only lowercase letters, digits, '.', '-' and '_' "
                          "are allowed (SPIFFE ID spec 2.1)")
    return trust_domain


def _validate_segment(segment: str, spiffe_id: str, what: str = "path segment") -> None:
    if segment in (".", ".."):
        raise ConfigError(f"SPIFFE ID {spiffe_id!r}: {what} {segment!r} is not allowed")
    if not _PATH_SEGMENT.fullmatch(segment):
        raise ConfigError(f"SPIFFE ID {spiffe_id!r}: {what} {segment!r}: only letters, digits, '.', '-' and '_' "
                          "are allowed (SPIFFE ID spec 2.2)")


def parse_spiffe_id(spiffe_id: str) -> tuple[str, tuple[str, ...]]:
    """"spiffe://td/a/b" -> ("td", ("a", "b")); ConfigError naming the rule a
    malformed ID breaks (SPIFFE ID spec 2). Scheme and trust domain must be
    lowercase: that is how meshcore writes and compares them."""
    if not isinstance(spiffe_id, str):
        raise ConfigError(f"SPIFFE ID {spiffe_id!r}: not a string")
    if len(spiffe_id.encode()) > MAX_SPIFFE_ID_LENGTH:
        raise ConfigError(f"SPIFFE ID {spiffe_id[:60]!r}...: longer than {MAX_SPIFFE_ID_LENGTH} bytes")
    if not spiffe_id.startswith("spiffe://"):
        raise ConfigError(f"SPIFFE ID {spiffe_id!r}: must start with spiffe://")
    rest = spiffe_id[len("spiffe://"):]
    for ch, what in (("?", "a query"), ("#", "a fragment"), ("%", "percent-encoding")):
        if ch in rest:
            raise ConfigError(f"SPIFFE ID {spiffe_id!r}: must not contain {what}")
    trust_domain, slash, path = rest.partition("/")
    if not trust_domain:
        raise ConfigError(f"SPIFFE ID {spiffe_id!r}: no trust domain")
    if not _TRUST_DOMAIN.fullmatch(trust_domain) or len(trust_domain) > MAX_TRUST_DOMAIN_LENGTH:
        raise ConfigError(f"SPIFFE ID {spiffe_id!r}: trust domain {trust_domain!r}: only lowercase letters, "
                          "digits, '.', '-' and '_' are allowed (no port, no user info)")
    if not slash:
        return trust_domain, ()
    segments = tuple(path.split("/"))
    if segments[-1] == "":
        raise ConfigError(f"SPIFFE ID {spiffe_id!r}: must not end with '/'")
    for segment in segments:
        if not segment:
            raise ConfigError(f"SPIFFE ID {spiffe_id!r}: empty path segment")
        _validate_segment(segment, spiffe_id)
    return trust_domain, segments


def workload_id(trust_domain: str, namespace: str, service_account: str) -> str:
    """spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>, validated."""
    validate_trust_domain(trust_domain)
    spiffe_id = f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"
    for value, what in ((namespace, "namespace"), (service_account, "service account")):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{what}: must not be empty")
        _validate_segment(value, spiffe_id, what)
    return spiffe_id


def parse_workload_id(spiffe_id: str) -> tuple[str, str, str]:
    """"spiffe://td/ns/NS/sa/SA" -> (td, NS, SA); ConfigError for anything else."""
    trust_domain, segments = parse_spiffe_id(spiffe_id)
    if len(segments) != 4 or segments[0] != "ns" or segments[2] != "sa":
        raise ConfigError(f"SPIFFE ID {spiffe_id!r}: a workload ID has the form "
                          f"spiffe://{trust_domain}/ns/<namespace>/sa/<service-account>")
    return trust_domain, segments[1], segments[3]

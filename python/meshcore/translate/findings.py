"""Findings: what loading, validating, analyzing or translating mesh config found.

One shape for all of them, so `meshcore check`, the proxy's log and the
future control plane report alike. A finding names the file, the resource
(`Kind namespace/name`) and the field path, like the bootstrap errors:

    checkout.yaml: VirtualService default/checkout: spec.http[0].route[1].weight: must be 0..100

Severity: "error" findings make a config unusable (the proxy refuses it,
`meshcore check` exits 1); "warning" findings are reported and the config
is used. The code says which rule fired (documented in docs/istio.md).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

ERROR = "error"
WARNING = "warning"

# Codes. "invalid" resources are left out of the model (nothing is built from
# them); every other finding keeps its resource in.
INVALID = "invalid"  # not valid Istio/Kubernetes config (Istio would reject it too)
UNSUPPORTED = "unsupported"  # valid, but meshcore does not implement it and ignoring it would change traffic
IGNORED = "ignored"  # valid, not implemented; ignoring it does not change where requests go
NOT_ENFORCED = "not-enforced"  # security settings, loaded, enforced by a later release
UNSUPPORTED_KIND = "unsupported-kind"
DUPLICATE = "duplicate"  # the same Kind namespace/name twice
UNKNOWN_HOST = "unknown-host"
UNDEFINED_SUBSET = "undefined-subset"
DUPLICATE_HOST = "duplicate-host"  # two VirtualServices (or services) for one host
SHADOWED_ROUTE = "shadowed-route"
NO_ENDPOINTS = "no-endpoints"
RETRY_TIMEOUT = "retry-timeout"
PORT_CONFLICT = "port-conflict"
UNKNOWN_WORKLOAD = "unknown-workload"
DEPRECATED = "deprecated"
MTLS_CONFLICT = "mtls-conflict"  # TLS settings that make connections fail or leave endpoints out
NO_SIDECAR = "no-sidecar"  # a port or policy that needs a sidecar the workload does not have
AUTHZ_NEVER_MATCHES = "authz-never-matches"  # an authorization rule (or part of it) that can never match
UNKNOWN_IDENTITY = "unknown-identity"  # a principal or namespace no workload has
NO_WORKLOAD = "no-workload"  # a selector that matches no WorkloadEntry
NEEDS_CERTIFICATE = "needs-certificate"  # mTLS without a certificate to do it with
UNNORMALIZED_PATH = "unnormalized-path"  # a path-based DENY rule with pathNormalization NONE
UNKNOWN_PROVIDER = "unknown-provider"  # a telemetry provider name no extensionProviders entry has


@dataclass(frozen=True)
class Finding:
    severity: str
    code: str
    file: str = ""
    resource: str = ""
    path: str = ""
    message: str = ""

    def __str__(self) -> str:
        return ": ".join(p for p in (self.file, self.resource, self.path, self.message) if p)

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def to_dict(self) -> dict:
        return asdict(self)


def errors(findings) -> list[Finding]:
    return [f for f in findings if f.is_error]


def unique(findings) -> list[Finding]:
    """Findings without repeats, in first-seen order."""
    return list(dict.fromkeys(findings))


def sort_key(f: Finding):
    return (f.file, f.resource, f.severity != ERROR, f.path, f.message)

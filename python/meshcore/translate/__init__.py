"""Istio API -> Envoy xDS v3: the one translation shared by file mode
(`meshcore proxy --mesh-dir`), `meshcore check` and the control plane.

    mesh = load_dir("examples/mesh")               # validated resources + findings
    t = translate(mesh, "default/frontend")        # one workload's sidecar: t.bootstrap, t.findings
    findings = check(mesh)                         # everything `meshcore check` reports

See docs/istio.md for the supported subset, field by field.
"""
from __future__ import annotations

from ..errors import ConfigError
from . import findings
from .analyze import analyze
from .build import DEFAULT_OUTBOUND_ADDRESS, Translation, translate
from .findings import ERROR, WARNING, Finding
from .model import Mesh, Resource, load_dir, load_documents, load_texts, read_documents
from .registry import Registry
from .security import Security

__all__ = [
    "DEFAULT_OUTBOUND_ADDRESS",
    "ERROR",
    "WARNING",
    "Finding",
    "Mesh",
    "Registry",
    "Resource",
    "Security",
    "Translation",
    "analyze",
    "check",
    "load_dir",
    "load_documents",
    "load_texts",
    "read_documents",
    "sidecar_config",
    "sidecar_translation",
    "translate",
]


def check(mesh: Mesh, workloads=None, security: Security | None = None) -> list[Finding]:
    """Every finding for a mesh: loading and validation, the cross-resource
    analysis, and the translation for each workload (all WorkloadEntries
    unless `workloads` names some)."""
    registry = Registry(mesh)
    security = security or Security()
    out = list(mesh.findings) + analyze(mesh, registry, security)
    refs = workloads if workloads is not None else [w.id for w in registry.workloads]
    for ref in refs:
        out += translate(mesh, ref, registry=registry, security=security).findings
    if workloads is None and not refs:
        out += registry.findings
    return sorted(findings.unique(out), key=findings.sort_key)


def sidecar_config(directory, workload: str, outbound_address: str = DEFAULT_OUTBOUND_ADDRESS,
                   security: Security | None = None):
    """(Bootstrap, warnings) for a workload's sidecar from a mesh directory.

    ConfigError naming every error when the directory has any (what
    `meshcore check DIR` would report as errors, or the workload's own)."""
    result, warnings = sidecar_translation(directory, workload, outbound_address, security)
    return result.bootstrap, warnings


def sidecar_translation(directory, workload: str, outbound_address: str = DEFAULT_OUTBOUND_ADDRESS,
                        security: Security | None = None):
    """(Translation, warnings); ConfigError as sidecar_config."""
    security = security or Security()
    mesh = load_dir(directory)
    registry = Registry(mesh)
    result = translate(mesh, workload, outbound_address, registry=registry, security=security)
    found = findings.unique(list(mesh.findings) + analyze(mesh, registry, security) + result.findings)
    errors = [f for f in found if f.is_error]
    if errors:
        raise ConfigError(format_errors(errors))
    return result, [f for f in found if not f.is_error]


def format_errors(errors: list[Finding]) -> str:
    if len(errors) == 1:
        return str(errors[0])
    return f"{errors[0]}\n" + "\n".join(f"  also: {e}" for e in errors[1:])

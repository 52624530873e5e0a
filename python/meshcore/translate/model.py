"""A mesh config directory -> validated resources (the model) and findings.

A mesh directory holds Istio YAML files (*.yaml, *.yml, any depth, several
documents per file): networking.istio.io VirtualService, DestinationRule,
ServiceEntry and WorkloadEntry; Kubernetes v1 Service (the registry, with
WorkloadEntries as the endpoints a Service selects); security.istio.io
PeerAuthentication and AuthorizationPolicy (security.py, authz.py);
telemetry.istio.io Telemetry and the ConfigMap `istio` holding Istio's
MeshConfig (telemetry.py, meshconfig.py). Other kinds are reported by name
and left out.

Loading never stops at the first problem: every document is checked and
every finding kept. A resource with an "invalid" finding is left out of
the model; the rest is in it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import yaml

from ..errors import ConfigError
from . import findings as fnd
from . import hosts, meshconfig
from .schema import Obj, Opaque, Out, Str, show, unknown_field
from .validate import validate_spec

NETWORKING = "networking.istio.io"
SECURITY = "security.istio.io"
TELEMETRY = "telemetry.istio.io"
VERSIONS = {NETWORKING: ("v1alpha3", "v1beta1", "v1"), SECURITY: ("v1beta1", "v1"), TELEMETRY: ("v1alpha1", "v1")}

# (group, kind) -> loaded into the model; the rest of these groups' kinds are
# known and reported as unsupported.
LOADED = {
    (NETWORKING, "VirtualService"),
    (NETWORKING, "DestinationRule"),
    (NETWORKING, "ServiceEntry"),
    (NETWORKING, "WorkloadEntry"),
    (SECURITY, "PeerAuthentication"),
    (SECURITY, "AuthorizationPolicy"),
    (TELEMETRY, "Telemetry"),
    ("", "Service"),
    ("", "ConfigMap"),  # only the one named istio: Istio's MeshConfig (meshconfig.py); others are not read
}
KNOWN_UNSUPPORTED = {
    NETWORKING: {"Gateway": "meshcore runs sidecars, not gateways",
                 "Sidecar": "sidecar scoping is not implemented (every visible service gets a listener)",
                 "EnvoyFilter": "raw Envoy patches cannot apply to meshcore's xDS subset",
                 "WorkloadGroup": "WorkloadEntries are written by hand (no auto-registration)",
                 "ProxyConfig": "proxy settings come from the command line"},
    SECURITY: {"RequestAuthentication": "JWT authentication is not implemented"},
    TELEMETRY: {},
}
NOT_ENFORCED: dict = {}  # kinds loaded but not yet enforced (none since the security release)

YAML_SUFFIXES = (".yaml", ".yml")

_METADATA = Obj(fields={
    "name": Str(), "namespace": Str(), "labels": Opaque(), "annotations": Opaque(),
    **{k: Opaque() for k in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                             "finalizers", "ownerReferences", "generateName", "selfLink", "deletionTimestamp",
                             "deletionGracePeriodSeconds")},
}, required=("name",))
_TOP = ("apiVersion", "kind", "metadata", "spec", "status")


@dataclass
class Resource:
    group: str
    version: str
    kind: str
    namespace: str
    name: str
    spec: dict
    metadata: dict
    file: str
    line: int = 0

    @property
    def label(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def key(self) -> tuple:
        return (self.group, self.kind, self.namespace, self.name)

    @property
    def labels(self) -> dict:
        return self.metadata.get("labels") or {}

    @property
    def annotations(self) -> dict:
        return self.metadata.get("annotations") or {}

    def finding(self, severity, code, path, message) -> fnd.Finding:
        return fnd.Finding(severity, code, self.file, self.label, path, message)


@dataclass
class Mesh:
    """The resources of a mesh directory, in load order, and what loading found."""

    resources: list = field(default_factory=list)
    findings: list = field(default_factory=list)
    source: str = ""

    def of(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r.kind == kind]

    @property
    def errors(self) -> list[fnd.Finding]:
        return fnd.errors(self.findings)


# ---- files --------------------------------------------------------------------------------------------


def mesh_files(directory) -> list[str]:
    """The YAML files of a mesh directory, sorted, hidden files and folders skipped
    (editors' temporaries; Kubernetes ConfigMap mounts' ..data folders)."""
    out = []
    for root, dirs, files in os.walk(directory, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.endswith(YAML_SUFFIXES) and not f.startswith("."):
                out.append(os.path.join(root, f))
    return sorted(out, key=lambda p: os.path.relpath(p, directory))


def load_dir(directory) -> Mesh:
    """Loads every YAML file under directory. ConfigError only if it cannot be listed."""
    if not os.path.isdir(directory):
        raise ConfigError(f"{directory}: not a directory")
    mesh = Mesh(source=os.fspath(directory))
    for path in mesh_files(directory):
        name = os.path.relpath(path, directory)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            mesh.findings.append(fnd.Finding(fnd.ERROR, fnd.INVALID, name, "", "", f"cannot read: {e.strerror or e}"))
            continue
        except UnicodeDecodeError as e:
            mesh.findings.append(fnd.Finding(fnd.ERROR, fnd.INVALID, name, "", "", f"not UTF-8 text: {e.reason}"))
            continue
        _load_text(mesh, text, name)
    _check_duplicates(mesh)
    return mesh


def load_texts(files: dict) -> Mesh:
    """{file name: YAML text} -> Mesh (tests, the control plane)."""
    mesh = Mesh(source="<texts>")
    for name, text in files.items():
        _load_text(mesh, text, name)
    _check_duplicates(mesh)
    return mesh


def load_documents(docs, filename: str = "<documents>") -> Mesh:
    """Already-parsed documents (dicts) -> Mesh."""
    mesh = Mesh(source=filename)
    for i, doc in enumerate(docs):
        if doc is not None:
            _load_document(mesh, doc, filename, i + 1)
    _check_duplicates(mesh)
    return mesh


# ---- YAML ---------------------------------------------------------------------------------------------


class _DuplicateKeys:
    """Rejects duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f'duplicate key "{key}"', key_node.start_mark)
                    seen.add(key)
                except TypeError:
                    pass
        return super().construct_mapping(node, deep)


class _Loader(_DuplicateKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """libyaml: fast."""


class _PyLoader(_DuplicateKeys, yaml.SafeLoader):
    """Pure Python: reads a flow list item such as 2001:db8:: that libyaml refuses."""


def read_documents(text) -> list:
    """The YAML documents of text as meshcore reads them (duplicate keys rejected,
    Kubernetes' reading of flow lists); yaml.YAMLError on bad YAML."""
    return [doc for _, doc in _documents(text)]


def _documents(text):
    """(line, document) for each YAML document; yaml.YAMLError on bad YAML."""
    try:
        return list(_parse(_Loader, text))
    except yaml.scanner.ScannerError:
        return list(_parse(_PyLoader, text))  # libyaml is stricter than Kubernetes' parser on ":"


def _parse(loader_class, text):
    loader = loader_class(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            yield node.start_mark.line + 1, _flow_colons(loader.construct_document(node))
    finally:
        loader.dispose()


def _flow_colons(value):
    """Undoes YAML 1.2's reading of a flow-sequence item ending in "::" as a mapping.

    `addresses: [1.2.3.4, 2001:db8::]` is a list of two strings to Kubernetes
    (and in Istio's own test data) but {"2001:db8:": null} to a YAML 1.2
    parser: the last ":" before "]" is a value indicator there."""
    if isinstance(value, list):
        return [_flow_item(v) for v in value]
    if isinstance(value, dict):
        for k, v in value.items():
            value[k] = _flow_colons(v)
    return value


def _flow_item(v):
    if isinstance(v, dict) and len(v) == 1:
        (k, item), = v.items()
        if item is None and isinstance(k, str) and k.endswith(":"):
            return k + ":"
    return _flow_colons(v)


def _load_text(mesh, text, filename):
    try:
        docs = list(_documents(text))
    except yaml.MarkedYAMLError as e:
        where = f"line {e.problem_mark.line + 1}: " if e.problem_mark else ""
        what = e.problem or e.context or "invalid YAML"
        mesh.findings.append(fnd.Finding(fnd.ERROR, fnd.INVALID, filename, "", "", f"{where}{what}"))
        return
    except yaml.YAMLError as e:
        mesh.findings.append(fnd.Finding(fnd.ERROR, fnd.INVALID, filename, "", "", str(e)))
        return
    for line, doc in docs:
        if doc is not None:
            _load_document(mesh, doc, filename, line)


# ---- documents ------------------------------------------------------------------------------------------


def _split_api_version(api_version):
    group, _, version = api_version.rpartition("/")
    return group, version


def _load_document(mesh, doc, filename, line):
    where = f"document at line {line}"

    def error(resource, path, message):
        mesh.findings.append(fnd.Finding(fnd.ERROR, fnd.INVALID, filename, resource, path, message))

    if not isinstance(doc, dict):
        error(where, "", f"expected a mapping, got {show(doc)}")
        return
    kind, api_version = doc.get("kind"), doc.get("apiVersion")
    if not isinstance(kind, str) or not kind:
        error(where, "kind", "Required value")
        return
    if not isinstance(api_version, str) or not api_version:
        error(where, "apiVersion", "Required value")
        return
    if kind.endswith("List") and isinstance(doc.get("items"), list):  # kubectl's v1 List
        for item in doc["items"]:
            _load_document(mesh, item, filename, line)
        return
    group, version = _split_api_version(api_version)
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    namespace = namespace if isinstance(namespace, str) and namespace else "default"
    label = f"{kind} {namespace}/{name}" if isinstance(name, str) else f"{kind} ({where})"

    if (group, kind) not in LOADED or ((group, kind) == ("", "ConfigMap") and name != meshconfig.NAME):
        _report_other_kind(mesh, filename, label, group, version, kind)
        return
    if group in VERSIONS and version not in VERSIONS[group]:
        error(label, "apiVersion", f'{api_version}: unknown version (supported: '
                                   f'{", ".join(group + "/" + v for v in VERSIONS[group])})')
        return
    if group == "" and version != "v1":
        error(label, "apiVersion", f"{api_version}: unknown version (supported: v1)")
        return

    out = Out()
    top = meshconfig.CONFIG_MAP_TOP if kind == "ConfigMap" else _TOP
    for key in doc:
        if key not in top:
            out.error("", unknown_field(key, top))
    if meta is None:
        out.error("metadata", "Required value")
    else:
        _METADATA.walk(meta, "metadata", out)
        if isinstance(meta, dict):
            _check_metadata(meta, out)
    if kind == "ConfigMap":
        spec = meshconfig.validate_config_map(doc, out, read_documents)
    else:
        spec = doc.get("spec") or {}
        out.items += validate_spec(kind, doc.get("spec")).items
    for severity, code, path, message in out.items:
        mesh.findings.append(fnd.Finding(severity, code, filename, label, path, message))
    if out.invalid:
        return
    if kind in NOT_ENFORCED:
        mesh.findings.append(fnd.Finding(fnd.WARNING, fnd.NOT_ENFORCED, filename, label, "",
                                         f"loaded, not yet enforced: {NOT_ENFORCED[kind]}"))
    mesh.resources.append(Resource(group, version, kind, namespace, name, spec, meta, filename, line))


def _check_metadata(meta, out):
    name, namespace = meta.get("name"), meta.get("namespace")
    if isinstance(name, str) and not hosts.is_dns1123_subdomain(name):
        out.error("metadata.name", f'"{name}" is not a valid name (lowercase letters, digits, "-" and ".")')
    if namespace is not None and not (isinstance(namespace, str) and hosts.is_dns1123_label(namespace)):
        out.error("metadata.namespace", f"{show(namespace)} is not a valid namespace name")
    labels = meta.get("labels")
    if labels is not None:
        if not isinstance(labels, dict):
            out.error("metadata.labels", f"expected a mapping, got {show(labels)}")
        else:
            for k, v in labels.items():
                problem = hosts.label_key_problem(str(k)) or hosts.label_value_problem(v)
                if problem:
                    out.error(f'metadata.labels["{k}"]', problem)
    annotations = meta.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        out.error("metadata.annotations", f"expected a mapping, got {show(annotations)}")


def _report_other_kind(mesh, filename, label, group, version, kind):
    def add(severity, code, message):
        mesh.findings.append(fnd.Finding(severity, code, filename, label, "", message))

    if group in KNOWN_UNSUPPORTED:
        reason = KNOWN_UNSUPPORTED[group].get(kind)
        if reason:
            add(fnd.WARNING, fnd.UNSUPPORTED_KIND, f"{group}/{version} {kind} is not supported by meshcore, "
                                                   f"ignored: {reason}")
        else:
            add(fnd.ERROR, fnd.INVALID, f"{group}/{version}: unknown kind {kind}")
        return
    add(fnd.WARNING, fnd.UNSUPPORTED_KIND, f"{group + '/' if group else ''}{version} {kind} is not a mesh "
                                           "resource meshcore reads, ignored")


def _check_duplicates(mesh):
    seen = {}
    kept = []
    for r in mesh.resources:
        first = seen.get(r.key)
        if first is not None:
            mesh.findings.append(r.finding(fnd.ERROR, fnd.DUPLICATE, "metadata.name",
                                           f"{r.label} is already defined in {first.file} (line {first.line})"))
            continue
        seen[r.key] = r
        kept.append(r)
    mesh.resources = kept

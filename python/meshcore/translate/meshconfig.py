"""Istio's MeshConfig, the subset meshcore reads: telemetry providers and defaults.

Istio keeps its MeshConfig in the ConfigMap `istio` of the root namespace
(istio-system), as YAML text under `data.mesh`; so does a mesh directory:

    apiVersion: v1
    kind: ConfigMap
    metadata: {name: istio, namespace: istio-system}
    data:
      mesh: |
        extensionProviders:
        - name: otel
          opentelemetry: {service: otel-collector.observability.svc.cluster.local, port: 4318,
                          http: {path: /v1/traces, timeout: 1s}}
        defaultProviders: {tracing: [otel]}
        accessLogFile: /dev/stdout

Read: `extensionProviders` (opentelemetry over HTTP, zipkin, envoyFileAccessLog,
prometheus), `defaultProviders`, `accessLogFile`, `accessLogEncoding`,
`accessLogFormat`, `enableTracing`, `defaultConfig.tracing.sampling`,
`pathNormalization.normalization` (every sidecar HCM's path normalization;
Istio's default BASE). Any
other MeshConfig field is valid Istio that meshcore does not read: a warning
names it. Other ConfigMaps are not mesh resources (the loader says so).

Istio's built-in providers are known by name as istiod knows them:
`prometheus` (metrics), `envoy` (an access log to /dev/stdout, formatted as
the MeshConfig's accessLogEncoding / accessLogFormat say) and `stackdriver`
(not implemented by meshcore).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from meshcore.telemetry.access_log import check_format
from meshcore.xds_types import FILE_ACCESS_LOG, type_url

from . import findings as fnd
from .rules import port_number
from .schema import Bool, Dur, Enum, List, Map, Num, Obj, Opaque, Out, Str, Warned, join, show

NAME = "istio"  # the ConfigMap istiod reads its MeshConfig from
DATA_KEY = "mesh"
ROOT = "data.mesh"  # where MeshConfig paths start in findings

PROMETHEUS = "prometheus"
ENVOY = "envoy"
STACKDRIVER = "stackdriver"
BUILTIN = {PROMETHEUS: {"name": PROMETHEUS, "prometheus": {}},
           ENVOY: {"name": ENVOY, "envoyFileAccessLog": {"path": "/dev/stdout"}},
           STACKDRIVER: {"name": STACKDRIVER, "stackdriver": {}}}
DEFAULT_METRICS_PROVIDERS = (PROMETHEUS,)  # Istio's default MeshConfig: defaultProviders.metrics
DEFAULT_SAMPLING = 1.0  # percent: Istio's default (PILOT_TRACE_SAMPLING)
OTEL_PATH = "/v1/traces"
ZIPKIN_PATH = "/api/v2/spans"

# Istio's provider kinds (the ExtensionProvider oneof) meshcore does not implement.
OTHER_KINDS = ("envoyExtAuthzHttp", "envoyExtAuthzGrpc", "stackdriver", "skywalking", "datadog", "lightstep",
               "opencensus", "envoyHttpAls", "envoyTcpAls", "envoyOtelAls", "sds")
KINDS = ("opentelemetry", "zipkin", "envoyFileAccessLog", "prometheus") + OTHER_KINDS
TRACING_KINDS = ("opentelemetry", "zipkin")
LOGGING_KINDS = ("envoyFileAccessLog",)

# Istio's default text access log line (EnvoyTextLogFormat), with the operators
# meshcore does not record written as "-" so that the columns stay where
# Istio's log parsers look for them.
ISTIO_TEXT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% - - "-" '
    '%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" '
    '"%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% - - '
    "%DOWNSTREAM_REMOTE_ADDRESS% - %ROUTE_NAME%\n"
)

# Istio's meshConfig.pathNormalization.normalization -> the HCM fields istiod sets.
PATH_NORMALIZATION = {
    "DEFAULT": {"normalize_path": True},
    "NONE": {"normalize_path": False},
    "BASE": {"normalize_path": True},
    "MERGE_SLASHES": {"normalize_path": True, "merge_slashes": True},
    "DECODE_AND_MERGE_SLASHES": {"normalize_path": True, "merge_slashes": True,
                                 "path_with_escaped_slashes_action": "UNESCAPE_AND_FORWARD"},
}
DEFAULT_PATH_NORMALIZATION = "BASE"

# ---- access log formats ---------------------------------------------------------------------------

_OPERATOR = re.compile(r"%([A-Z0-9_]+)(?:\(([^)]*)\))?(?::\d+)?%")


def supported_format(fmt: str) -> tuple[str, list[str]]:
    """(the format meshcore can render, what was changed): operators the core does not
    record become "-" (%REQ(A?B)% is rendered as is when one of A, B is recorded)."""
    problems = []

    def one(m):
        op = m.group(0)
        if check_format(op) is None:
            return op
        name, arg = m.group(1), m.group(2) or ""
        if name in ("REQ", "RESP") and "?" in arg:
            for alt in arg.split("?")[1:]:
                candidate = f"%{name}({alt})%"
                if check_format(candidate) is None:
                    problems.append(f"{op}: meshcore does not record {arg.split('?')[0]}, written as {candidate}")
                    return candidate
        problems.append(f"{op}: {check_format(op)}, written as -")
        return "-"

    return _OPERATOR.sub(one, fmt), problems


def supported_labels(labels: dict) -> tuple[dict, list[str]]:
    """labels (a JSON access log's fields) with each string value as supported_format makes it."""
    out, problems = {}, []
    for k, v in labels.items():
        if isinstance(v, str):
            v, p = supported_format(v)
            problems += [f"{k}: {x}" for x in p]
        elif isinstance(v, dict):
            v, p = supported_labels(v)
            problems += [f"{k}.{x}" for x in p]
        out[k] = v
    return out, problems


def _check_format_text(v, path, out):
    for problem in supported_format(v)[1]:
        out.warn(path, f"not supported by meshcore: {problem}")


def _check_labels(v, path, out):
    for problem in supported_labels(v)[1]:
        out.warn(path, f"not supported by meshcore: {problem}")


def _check_mesh(v, path, out):
    seen = {}
    for i, p in enumerate(v.get("extensionProviders") or []):
        if not isinstance(p, dict):
            continue
        name = p.get("name")
        if isinstance(name, str):
            if name in seen:
                out.error(f"{path}.extensionProviders[{i}].name",
                          f'duplicate extension provider name "{name}" (also extensionProviders[{seen[name]}])')
            seen.setdefault(name, i)
        kinds = [k for k in KINDS if p.get(k) is not None]
        if len(kinds) > 1:
            out.error(f"{path}.extensionProviders[{i}]", f"one provider kind only, got {', '.join(kinds)}")
    fmt = v.get("accessLogFormat")
    if isinstance(fmt, str) and fmt and v.get("accessLogEncoding") == "JSON":
        try:
            obj = json.loads(fmt)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            out.warn(join(path, "accessLogFormat"), "with accessLogEncoding JSON this must be a JSON object of "
                                                   "log fields: meshcore's default JSON record is used (Istio "
                                                   "falls back to its default too)")
        else:
            _check_labels(obj, join(path, "accessLogFormat"), out)
    elif isinstance(fmt, str) and fmt:
        _check_format_text(fmt, join(path, "accessLogFormat"), out)


def _check_provider(v, path, out):
    if not any(v.get(k) is not None for k in KINDS):
        out.error(path, f"a provider kind is required ({', '.join(KINDS[:4])}, ...)")


def _service(to):
    return Str(to=to)


_HEADERS = Warned(Opaque(), "extra headers to the collector are not sent")

_OPENTELEMETRY = Obj(
    fields={
        "service": _service("the collector's Service or ServiceEntry host: cluster outbound|<port>||<host> "
                            "(it must be in the registry)"),
        "port": port_number("port", to="the port in the cluster name and in http_uri.uri"),
        "http": Obj(fields={
            "path": Str(to="http_uri.uri path (default /v1/traces)"),
            "timeout": Dur(to="http_uri.timeout (default 1s)"),
            "headers": _HEADERS,
        }, to="OpenTelemetryConfig.http_service (OTLP/HTTP, protobuf); required: meshcore does not export "
              "OTLP over gRPC"),
        "grpc": Warned(Obj(fields={"timeout": Dur(), "initialMetadata": Opaque()}),
                       "meshcore exports OTLP/HTTP only: a provider without http is refused where it is used"),
        "maxTagLength": Warned(Num(), "span tags are not truncated"),
        "resourceDetectors": Warned(Opaque(), "spans carry service.name and Istio's node attributes"),
        "dynatraceSampler": Warned(Opaque(), "sampling is random_sampling (Telemetry randomSamplingPercentage)"),
    },
    unknown="warn", required=("service", "port"),
)

_ZIPKIN = Obj(
    fields={
        "service": _service("the collector's Service or ServiceEntry host: collector_cluster "
                            "outbound|<port>||<host>, collector_hostname"),
        "port": port_number("port", to="the port in the cluster name"),
        "path": Str(to="ZipkinConfig.collector_endpoint (default /api/v2/spans; HTTP_JSON)"),
        "maxTagLength": Warned(Num(), "span tags are not truncated"),
        "enable64bitTraceId": Warned(Bool(), "trace ids are 128 bits"),
        "traceContextOption": Warned(Str(), "meshcore reads and writes both B3 and W3C trace context"),
        "timeout": Warned(Dur(), "the exporter's timeout is 1s"),
        "headers": _HEADERS,
    },
    unknown="warn", required=("service", "port"),
)

_FILE_LOG = Obj(
    fields={
        "path": Str(to="FileAccessLog.path (default /dev/stdout)"),
        "logFormat": Obj(fields={
            "text": Str(check=_check_format_text,
                        to="log_format.text_format_source (operators meshcore does not record: -)"),
            "labels": Map(Opaque(), check=_check_labels,
                          to="log_format.json_format (empty: meshcore's default JSON record)"),
            "omitEmptyValues": Warned(Bool(), "empty values are written as - or null"),
        }, exclusive=(("text", "labels"),), to="absent: Istio's default text line (fields meshcore does not "
                                               "record written as -)"),
    },
    unknown="warn",
)

_PROVIDER = Obj(
    fields={
        "name": Str(to="named by defaultProviders and Telemetry providers"),
        "opentelemetry": _OPENTELEMETRY,
        "zipkin": _ZIPKIN,
        "envoyFileAccessLog": _FILE_LOG,
        "prometheus": Obj(fields={}, to="Istio's standard metrics (istio.stats filters; on by default)"),
    },
    unknown="warn", required=("name",), check=_check_provider,
)


def _names(to):
    return List(Str(), to=to)


MESH_CONFIG = Obj(
    fields={
        "extensionProviders": List(_PROVIDER, to="telemetry providers, by name"),
        "defaultProviders": Obj(fields={
            "tracing": _names("the tracing provider when no Telemetry names one (the first is used, as Istio)"),
            "accessLogging": _names("the access log providers when no Telemetry names any"),
            "metrics": _names("the metrics providers (default prometheus)"),
        }, unknown="warn"),
        "accessLogFile": Str(to="without Telemetry access logging: an access_log (FileAccessLog.path) on every "
                                "http_connection_manager and tcp_proxy"),
        "accessLogEncoding": Enum(values=("TEXT", "JSON"),
                                  to="TEXT (default): text_format_source; JSON: json_format, or meshcore's "
                                     "default JSON record"),
        "accessLogFormat": Str(to="the text line (TEXT) or a JSON object of fields (JSON); default: Istio's text "
                                  "line"),
        "enableTracing": Bool(to="tracing without a Telemetry or defaultProviders.tracing needs a provider: "
                                 "warned when true"),
        "defaultConfig": Obj(fields={
            "tracing": Obj(fields={
                "sampling": Num(lo=0, hi=100, to="random_sampling when no Telemetry sets "
                                                 "randomSamplingPercentage (default 1)"),
            }, unknown="warn"),
        }, unknown="warn"),
        "pathNormalization": Obj(fields={
            "normalization": Enum(values=tuple(PATH_NORMALIZATION),
                                  to="normalize_path, merge_slashes, path_with_escaped_slashes_action on every "
                                     "sidecar http_connection_manager (DEFAULT: BASE, as Istio)"),
        }, unknown="warn"),
        "h2UpgradePolicy": Enum(values=("DO_NOT_UPGRADE", "UPGRADE"),
                                to="UPGRADE: HTTP/2 (http2_protocol_options) to the outbound clusters of HTTP ports "
                                   "whose DestinationRule does not say otherwise (default DO_NOT_UPGRADE, as Istio)"),
        "rootNamespace": Str(to="checked: meshcore's root namespace is --root-namespace (default istio-system); "
                                "a warning when they differ"),
        "trustDomain": Str(to="checked: meshcore's trust domain is the CA's (--ca-dir) or --trust-domain; a "
                              "warning when they differ"),
    },
    unknown="warn", check=_check_mesh,
)


# ---- the ConfigMap -------------------------------------------------------------------------------------

CONFIG_MAP_TOP = ("apiVersion", "kind", "metadata", "data", "binaryData", "immutable")


def validate_config_map(doc: dict, out: Out, read_yaml) -> dict:
    """The MeshConfig (a dict) of the `istio` ConfigMap, validated into `out`.
    read_yaml(text) -> documents; a YAML error is an `invalid` finding."""
    data = doc.get("data")
    if data is None:
        return {}
    if not isinstance(data, dict):
        out.error("data", f"expected a mapping, got {show(data)}")
        return {}
    mesh = {}
    for key, value in data.items():
        path = f'data["{key}"]' if not str(key).isidentifier() else f"data.{key}"
        if not isinstance(value, str):
            out.error(path, f"expected a string, got {show(value)}")
            continue
        if key != DATA_KEY:
            out.warn(path, "not read by meshcore, ignored (only data.mesh, the MeshConfig)")
            continue
        try:
            docs = [d for d in read_yaml(value) if d is not None]
        except Exception as e:  # noqa: BLE001 - yaml.YAMLError and its kin: the text is not YAML
            out.error(ROOT, f"not valid YAML: {getattr(e, 'problem', None) or e}")
            continue
        if len(docs) > 1:
            out.error(ROOT, "one YAML document expected")
            continue
        mesh = docs[0] if docs else {}
        MESH_CONFIG.walk(mesh, ROOT, out)
        if not isinstance(mesh, dict):
            mesh = {}
    return mesh


# ---- reading it ---------------------------------------------------------------------------------------


@dataclass
class Provider:
    """An extension provider: its definition and where it is written (for findings)."""

    name: str
    kind: str  # opentelemetry, zipkin, envoyFileAccessLog, prometheus, or another Istio kind
    spec: dict  # the kind's settings
    resource: object = None  # the ConfigMap, None for a built-in provider
    path: str = ""

    @property
    def builtin(self) -> bool:
        return self.resource is None


class MeshConfig:
    """The effective MeshConfig: the ConfigMap's (if any) over Istio's defaults."""

    def __init__(self, resource=None):
        self.resource = resource
        self.spec = resource.spec if resource is not None else {}
        self.providers: dict[str, Provider] = {}
        for name, p in BUILTIN.items():
            kind = next(k for k in KINDS if k in p)
            self.providers[name] = Provider(name, kind, p[kind])
        for i, p in enumerate(self.spec.get("extensionProviders") or []):
            kind = next((k for k in KINDS if p.get(k) is not None), "")
            if not kind:
                kind = next((k for k in p if k != "name"), "")
            self.providers[p["name"]] = Provider(p["name"], kind, p.get(kind) or {}, resource,
                                                 f"{ROOT}.extensionProviders[{i}]")

    @classmethod
    def of(cls, mesh, root_namespace: str) -> MeshConfig:
        found = next((r for r in mesh.of("ConfigMap") if r.namespace == root_namespace and r.name == NAME), None)
        return cls(found)

    def finding(self, severity, code, path, message) -> fnd.Finding:
        if self.resource is None:
            return fnd.Finding(severity, code, "", "", "", message)
        return self.resource.finding(severity, code, path, message)

    @property
    def label(self) -> str:
        return f"{self.resource.label} ({self.resource.file})" if self.resource is not None else \
            "Istio's default MeshConfig (no ConfigMap istio in the root namespace)"

    def default_providers(self, kind: str) -> list[str]:
        names = list(((self.spec.get("defaultProviders") or {}).get(kind)) or [])
        if kind == "metrics" and not names:
            return list(DEFAULT_METRICS_PROVIDERS)
        return names

    def default_provider_path(self, kind: str, i: int) -> str:
        return f"{ROOT}.defaultProviders.{kind}[{i}]"

    @property
    def sampling(self) -> float:
        v = (((self.spec.get("defaultConfig") or {}).get("tracing")) or {}).get("sampling")
        return float(v) if v is not None else DEFAULT_SAMPLING

    @property
    def path_normalization(self) -> str:
        """NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES (unset or DEFAULT: BASE)."""
        v = (self.spec.get("pathNormalization") or {}).get("normalization")
        return v if v in PATH_NORMALIZATION and v != "DEFAULT" else DEFAULT_PATH_NORMALIZATION

    @property
    def h2_upgrade(self) -> bool:
        """meshConfig.h2UpgradePolicy is UPGRADE (Istio's default: DO_NOT_UPGRADE)."""
        return self.spec.get("h2UpgradePolicy") == "UPGRADE"

    def hcm_path_fields(self) -> dict:
        """The http_connection_manager fields of pathNormalization, as istiod writes them."""
        return dict(PATH_NORMALIZATION[self.path_normalization])

    @property
    def access_log_file(self) -> str:
        return self.spec.get("accessLogFile") or ""

    def mesh_log_format(self) -> dict | None:
        """The log_format for the MeshConfig's accessLogEncoding / accessLogFormat
        (None: meshcore's default JSON record)."""
        fmt = self.spec.get("accessLogFormat") or ""
        if self.spec.get("accessLogEncoding") == "JSON":
            try:
                obj = json.loads(fmt) if fmt else None
            except ValueError:
                obj = None
            return json_log_format(obj) if isinstance(obj, dict) and obj else None
        return text_log_format(fmt or ISTIO_TEXT_FORMAT)


def text_log_format(fmt: str) -> dict:
    text = supported_format(fmt)[0]
    return {"text_format_source": {"inline_string": text if text.endswith("\n") else text + "\n"}}


def json_log_format(labels: dict) -> dict:
    return {"json_format": supported_labels(labels)[0]}




def file_access_log(path: str, log_format: dict | None) -> dict:
    """An envoy.config.accesslog.v3.AccessLog (dict) writing to path."""
    cfg = {"@type": type_url(FILE_ACCESS_LOG), "path": path}
    if log_format is not None:
        cfg["log_format"] = log_format
    return {"name": "envoy.access_loggers.file", "typed_config": cfg}


def provider_access_log(mc: MeshConfig, p: Provider) -> dict:
    """The AccessLog of an envoyFileAccessLog provider (Istio's telemetryAccessLog):
    the built-in `envoy` without a logFormat follows the MeshConfig's encoding and format."""
    path = p.spec.get("path") or "/dev/stdout"
    lf = p.spec.get("logFormat")
    if lf is None:
        return file_access_log(path, mc.mesh_log_format() if p.name == ENVOY else text_log_format(ISTIO_TEXT_FORMAT))
    if lf.get("text"):
        return file_access_log(path, text_log_format(lf["text"]))
    if lf.get("labels"):
        return file_access_log(path, json_log_format(lf["labels"]))
    if lf.get("labels") is not None:  # labels: {} -> the default JSON record
        return file_access_log(path, None)
    return file_access_log(path, text_log_format(ISTIO_TEXT_FORMAT))


def mesh_access_log(mc: MeshConfig) -> dict | None:
    """The legacy MeshConfig access log (accessLogFile), or None."""
    if not mc.access_log_file:
        return None
    return file_access_log(mc.access_log_file, mc.mesh_log_format())

"""Value checks for TLS: transport sockets, TLS contexts, certificates,
SAN matchers, data sources and (static) SDS secrets."""

import os


def check_transport_socket(ts):
    if not ts.HasField("typed_config"):
        yield "", "transport socket has no typed_config"


def check_common_tls(c):
    if len(c.tls_certificates) + len(c.tls_certificate_sds_secret_configs) > 1:
        yield "tls_certificates", "one certificate only"
    p = c.tls_params
    if p.tls_maximum_protocol_version and p.tls_minimum_protocol_version > p.tls_maximum_protocol_version:
        yield "tls_params", "tls_minimum_protocol_version is above tls_maximum_protocol_version"
    if p.tls_minimum_protocol_version in (1, 2) or p.tls_maximum_protocol_version in (1, 2):
        yield "tls_params", "TLS 1.0 and 1.1 are not supported (TLSv1_2 or TLSv1_3)"


def check_downstream_tls(d):
    c = d.common_tls_context
    if not c.tls_certificates and not c.tls_certificate_sds_secret_configs:
        yield "common_tls_context", "a downstream TLS context needs a certificate (tls_certificates or a secret)"
    if d.require_client_certificate.value and c.WhichOneof("validation_context_type") is None:
        yield "require_client_certificate", "needs a validation context (trusted_ca) to verify clients against"


def check_tls_certificate(t):
    if not t.HasField("certificate_chain"):
        yield "certificate_chain", "required"
    if not t.HasField("private_key"):
        yield "private_key", "required"


def check_san_matcher(m):
    if m.san_type != 3:  # URI
        yield "san_type", "only URI (SPIFFE IDs) is supported"
    if m.matcher.WhichOneof("match_pattern") == "safe_regex":
        yield "matcher", "safe_regex is not supported for SAN matching"


def check_data_source(d):
    if d.WhichOneof("specifier") == "filename" and not os.path.isfile(d.filename):
        yield "filename", f"no such file: {d.filename}"


def check_secret(s):
    if not s.name:
        yield "name", "required"
    if s.WhichOneof("type") not in ("tls_certificate", "validation_context"):
        yield "", "a secret must hold tls_certificate or validation_context"


def check_sds_config(c):
    if c.HasField("sds_config"):
        yield "sds_config", "dynamic SDS is not supported: use static_resources.secrets by name"

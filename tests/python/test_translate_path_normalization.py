"""MeshConfig pathNormalization in the translation (translate/meshconfig.py,
listeners.py) and its `meshcore check` warning (securitycheck.py)."""
from __future__ import annotations

import textwrap

import pytest
from google.protobuf import json_format

from meshcore.config import validate_bootstrap
from meshcore.translate import Security, check, load_texts, translate
from meshcore.translate import findings as fnd

REGISTRY = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: reviews-v1
  namespace: default
  annotations: {"sidecar.meshcore.dev/inbound-ports": "http=29080"}
spec: {address: 10.0.0.5, ports: {http: 19080}, labels: {app: reviews}, serviceAccount: reviews}
"""


def mesh_config(body: str) -> str:
    lines = "\n".join("    " + line for line in textwrap.dedent(body).strip("\n").splitlines())
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: istio, namespace: istio-system}}\n" \
           f"data:\n  mesh: |\n{lines}\n---\n"


def deny(paths_field: str = "paths", action: str = "DENY") -> str:
    return f"""apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: guard, namespace: default}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  action: {action}
  rules: [{{to: [{{operation: {{{paths_field}: ["/admin*"], ports: ["19080"]}}}}]}}]
---
"""


def texts(*extra):
    return {"registry.yaml": REGISTRY, **{f"t{i}.yaml": e for i, e in enumerate(extra)}}


def hcms(*extra):
    t = translate(load_texts(texts(*extra)), "default/reviews-v1", security=Security())
    assert [str(f) for f in t.errors] == []
    validate_bootstrap(t.bootstrap)
    doc = json_format.MessageToDict(t.bootstrap, preserving_proto_field_name=True)
    out = {}
    for lst in doc["static_resources"]["listeners"]:
        for ch in lst["filter_chains"]:
            for f in ch["filters"]:
                if f["name"] == "envoy.filters.network.http_connection_manager":
                    out[lst["name"]] = f["typed_config"]
    assert out
    return out


def fields(h):
    return {k: h[k] for k in ("normalize_path", "merge_slashes", "path_with_escaped_slashes_action") if k in h}


@pytest.mark.parametrize("level, want", [
    (None, {"normalize_path": True}),
    ("DEFAULT", {"normalize_path": True}),
    ("BASE", {"normalize_path": True}),
    ("NONE", {"normalize_path": False}),
    ("MERGE_SLASHES", {"normalize_path": True, "merge_slashes": True}),
    ("DECODE_AND_MERGE_SLASHES", {"normalize_path": True, "merge_slashes": True,
                                  "path_with_escaped_slashes_action": "UNESCAPE_AND_FORWARD"}),
])
def test_every_sidecar_hcm_gets_the_mesh_level(level, want):
    extra = [mesh_config(f"pathNormalization: {{normalization: {level}}}")] if level else []
    found = hcms(*extra)
    assert any(n.startswith("inbound_") for n in found) and any(not n.startswith("inbound_") for n in found)
    for name, h in found.items():
        got = fields(h)
        if want == {"normalize_path": False}:  # proto3 JSON: a false BoolValue is still present
            assert got.get("normalize_path") is False and "merge_slashes" not in got, name
        else:
            assert got == want, name


def test_an_unknown_level_is_invalid():
    mesh = load_texts(texts(mesh_config("pathNormalization: {normalization: SOMETIMES}")))
    assert any(f.is_error and "pathNormalization.normalization" in f.path for f in mesh.findings)


@pytest.mark.parametrize("level, field, action, warned", [
    ("NONE", "paths", "DENY", True),
    ("NONE", "notPaths", "ALLOW", True),
    ("NONE", "paths", "ALLOW", False),
    ("BASE", "paths", "DENY", False),
    (None, "paths", "DENY", False),
    ("MERGE_SLASHES", "paths", "DENY", False),
])
def test_check_warns_about_path_rules_without_normalization(level, field, action, warned):
    extra = [deny(field, action)]
    if level:
        extra.append(mesh_config(f"pathNormalization: {{normalization: {level}}}"))
    found = [f for f in check(load_texts(texts(*extra))) if f.code == fnd.UNNORMALIZED_PATH]
    if warned:
        assert len(found) == 1
        f = found[0]
        assert f.severity == fnd.WARNING and f.path == "spec.rules[0]" and "//admin" in f.message
    else:
        assert found == []

"""Loading a mesh directory: files, documents, kinds, and errors that name
the file, the resource (Kind namespace/name) and the field path."""
import os

import pytest

from meshcore.durations import go_duration_ns
from meshcore.errors import ConfigError
from meshcore.translate import findings as fnd
from meshcore.translate import load_dir, load_texts, read_documents

VS = """
apiVersion: networking.istio.io/{version}
kind: VirtualService
metadata:
  name: checkout
  namespace: default
spec:
  hosts: [checkout]
  http:
  - route:
    - destination: {{host: checkout, subset: v1}}
      weight: 90
    - destination: {{host: checkout, subset: v2}}
      weight: {weight}
"""


def errors(mesh):
    return [str(f) for f in mesh.findings if f.is_error]


def test_the_error_names_file_resource_and_field():
    mesh = load_texts({"checkout.yaml": VS.format(version="v1", weight=110)})
    assert "checkout.yaml: VirtualService default/checkout: spec.http[0].route[1].weight: must be 0..100" \
        in errors(mesh)
    assert mesh.resources == []  # an invalid resource is left out of the model


@pytest.mark.parametrize("version", ["v1alpha3", "v1beta1", "v1"])
def test_every_served_version_is_accepted(version):
    mesh = load_texts({"vs.yaml": VS.format(version=version, weight=10)})
    assert mesh.findings == []
    [vs] = mesh.resources
    assert (vs.kind, vs.namespace, vs.name, vs.version) == ("VirtualService", "default", "checkout", version)


def test_unknown_version_is_an_error():
    mesh = load_texts({"vs.yaml": VS.format(version="v2", weight=10)})
    assert errors(mesh) == ["vs.yaml: VirtualService default/checkout: apiVersion: networking.istio.io/v2: unknown "
                            "version (supported: networking.istio.io/v1alpha3, networking.istio.io/v1beta1, "
                            "networking.istio.io/v1)"]


def test_weights_must_add_up_to_100():
    mesh = load_texts({"vs.yaml": VS.format(version="v1", weight=20)})
    assert errors(mesh) == ["vs.yaml: VirtualService default/checkout: spec.http[0].route: the destination "
                            "weights add up to 110, must be 100"]


def test_directory_files_documents_and_hidden_files(tmp_path):
    (tmp_path / "a.yaml").write_text(VS.format(version="v1", weight=10) + "---\n" + """
apiVersion: v1
kind: Service
metadata: {name: checkout}
spec:
  selector: {app: checkout}
  ports: [{name: http, port: 9080}]
""")
    sub = tmp_path / "more"
    sub.mkdir()
    (sub / "b.yml").write_text("""
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: checkout-v1, namespace: default}
spec: {address: 10.0.0.1, labels: {app: checkout}}
""")
    (tmp_path / ".a.yaml.swp").write_text("not: [yaml")  # editor temporaries are skipped
    (tmp_path / "notes.txt").write_text("not yaml either")
    hidden = tmp_path / "..data"
    hidden.mkdir()
    (hidden / "c.yaml").write_text("kind: [")
    mesh = load_dir(tmp_path)
    assert mesh.findings == []
    assert [(r.kind, r.file) for r in mesh.resources] == [
        ("VirtualService", "a.yaml"), ("Service", "a.yaml"), ("WorkloadEntry", os.path.join("more", "b.yml"))]


def test_not_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="not a directory"):
        load_dir(tmp_path / "nope")


def test_yaml_errors_name_the_file_and_line_and_loading_goes_on():
    mesh = load_texts({"bad.yaml": "kind: [unclosed\n", "good.yaml": VS.format(version="v1", weight=10)})
    assert [str(f) for f in mesh.findings] == ["bad.yaml: line 2: did not find expected ',' or ']'"]
    assert [r.name for r in mesh.resources] == ["checkout"]


def test_duplicate_keys_are_errors():
    mesh = load_texts({"d.yaml": "apiVersion: v1\nkind: Service\nkind: Service\n"})
    assert errors(mesh) == ['d.yaml: line 3: duplicate key "kind"']


def test_the_same_resource_twice():
    text = VS.format(version="v1", weight=10)
    mesh = load_texts({"a.yaml": text, "b.yaml": text})
    assert errors(mesh) == ["b.yaml: VirtualService default/checkout: metadata.name: VirtualService "
                            "default/checkout is already defined in a.yaml (line 2)"]
    assert len(mesh.resources) == 1


def test_unsupported_kinds_are_reported_by_name_not_fatal():
    mesh = load_texts({"g.yaml": """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec: {servers: []}
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ef}
spec: {}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {}
---
apiVersion: networking.istio.io/v1
kind: Frobnicator
metadata: {name: x}
"""})
    found = [(f.severity, f.code, f.resource) for f in mesh.findings]
    assert found == [
        ("warning", fnd.UNSUPPORTED_KIND, "Gateway edge/gw"),
        ("warning", fnd.UNSUPPORTED_KIND, "EnvoyFilter default/ef"),
        ("warning", fnd.UNSUPPORTED_KIND, "Deployment default/web"),
        ("error", fnd.INVALID, "Frobnicator default/x"),
    ]
    assert "networking.istio.io/v1 Gateway is not supported by meshcore" in mesh.findings[0].message


def test_security_resources_are_loaded():
    mesh = load_texts({"s.yaml": """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: shop}
spec: {}
"""})
    assert [r.kind for r in mesh.resources] == ["PeerAuthentication", "AuthorizationPolicy"]
    assert mesh.findings == []  # enforced since the security release (test_translate_security*.py)


def test_document_shape_errors():
    mesh = load_texts({"x.yaml": """
- a list
---
apiVersion: networking.istio.io/v1
metadata: {name: x}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: Bad_Name}
spec: {hosts: [a], http: [{route: [{destination: {host: a}}]}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec: {hosts: [a], http: [{route: [{destination: {host: a}}]}]}
extra: 1
"""})
    assert errors(mesh) == [
        "x.yaml: document at line 2: expected a mapping, got a list",
        "x.yaml: document at line 4: kind: Required value",
        'x.yaml: VirtualService default/Bad_Name: metadata.name: "Bad_Name" is not a valid name '
        '(lowercase letters, digits, "-" and ".")',
        'x.yaml: VirtualService default/a: unknown field "extra"',
    ]


def test_kubernetes_list_documents_are_expanded():
    mesh = load_texts({"l.yaml": """
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: a}
  spec: {ports: [{name: http, port: 80}]}
"""})
    assert [r.name for r in mesh.resources] == ["a"]


def test_flow_list_items_ending_in_colons_read_as_kubernetes_does():
    [doc] = read_documents("addresses: [1.2.3.4, 2001:db8::]\n")
    assert doc == {"addresses": ["1.2.3.4", "2001:db8::"]}


@pytest.mark.parametrize("text, ns", [("10s", 10_000_000_000), ("1.5s", 1_500_000_000), ("250ms", 250_000_000),
                                      ("1m30s", 90_000_000_000), ("1h", 3_600_000_000_000), ("0", 0)])
def test_durations(text, ns):
    assert go_duration_ns(text) == ns


@pytest.mark.parametrize("text", ["10", "s", "1x", "-1s", 10, ""])
def test_bad_durations(text):
    assert go_duration_ns(text) is None

"""Istio's own data (../shared/conformance/istio, third-party, read in place):
validation accept/reject cases, the CRD schemas, Bookinfo and pilot's
testdata configs. Skips with the reason when the folder is absent."""
import functools
import pathlib

import pytest
import yaml

from meshcore.config import validate_bootstrap
from meshcore.translate import check, load_documents, load_texts, read_documents, translate
from meshcore.translate import findings as fnd
from meshcore.translate.schema import IntOrStr, List, Map, Obj
from meshcore.translate.validate import SPECS

CONFORMANCE = pathlib.Path(__file__).resolve().parents[3] / "shared" / "conformance" / "istio"
pytestmark = pytest.mark.skipif(not CONFORMANCE.is_dir(),
                                reason=f"Istio conformance data not found at {CONFORMANCE}")


def yaml_files(folder):
    return sorted((CONFORMANCE / folder).glob("*.yaml")) if CONFORMANCE.is_dir() else []


def cases(pattern):
    out = []
    for path in sorted((CONFORMANCE / "validation").glob(pattern)) if CONFORMANCE.is_dir() else []:
        for i, doc in enumerate(read_documents(path.read_text())):
            if doc:
                out.append(pytest.param(path.name, doc, id=f"{path.name}[{i}]-{doc['metadata']['name']}"))
    return out


@pytest.mark.parametrize("filename, doc", cases("*-valid.yaml"))
def test_valid_documents_are_accepted(filename, doc):
    mesh = load_documents([doc], filename)
    assert [str(f) for f in mesh.findings if f.is_error] == []
    assert len(mesh.resources) == 1


# The field each invalid document's `_err` is about, where `_err` does not say it.
ERR_FIELD = {
    "bad-mode": "spec.mtls.mode",
    "empty-port-level": "spec.portLevelMtls",
    "bad-port": 'spec.portLevelMtls["acd"]',
    "port-level-global": "spec.portLevelMtls",
    "zero-port": 'spec.portLevelMtls["0"]',
    "high-port": 'spec.portLevelMtls["42949672"]',
    "bad-selector-value": 'spec.workloadSelector.labels["val"]',
    "selector-and-endpoints": "spec",
    "bad-host-wildcard": "spec.hosts[0]",
    "bad-cidr-resolution": "spec.addresses",
    "duplicate-ports-name": "spec.ports[1].name",
    "duplicate-ports-number": "spec.ports[1].number",
    "bad-port-target": "spec.ports[0].targetPort",
    "none-with-endpoints": "spec.endpoints",
    "dns-rr-with-multiple-endpoints": "spec.endpoints",
    "service-account-and-namespace": "spec.rules[0].from[0].source",
    "service-account-and-namespace-principal": "spec.rules[0].from[0].source",
}
ERR_FIELD_BY_FILE = {("serviceentry-invalid.yaml", "bad-port"): "spec.ports[0].number"}


@pytest.mark.parametrize("filename, doc", cases("*-invalid.yaml"))
def test_invalid_documents_are_rejected_naming_the_field(filename, doc):
    doc = dict(doc)
    err = doc.pop("_err")
    name = doc["metadata"]["name"]
    path, sep, text = err.partition(": ")
    if not (sep and path.startswith("spec")):  # "_err" is the message alone
        path, text = ERR_FIELD_BY_FILE.get((filename, name)) or ERR_FIELD[name], err
    mesh = load_documents([doc], filename)
    errors = [f for f in mesh.findings if f.is_error]
    assert errors, f"accepted: {doc}"
    assert mesh.resources == []
    assert any(f.path == path and text in f.message for f in errors), \
        f"no error at {path} saying {text!r}: {[str(f) for f in errors]}"


# ---- the CRD schemas: the same field names, none missing, none invented --------------------------


@functools.cache
def crd_specs():
    out = {}
    path = CONFORMANCE / "customresourcedefinitions.gen.yaml"
    if not path.exists():
        return out
    for crd in yaml.load_all(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        if not crd:
            continue
        kind = crd["spec"]["names"]["kind"]
        if kind in SPECS:
            for version in crd["spec"]["versions"]:
                out[(kind, version["name"])] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return out


def differences(schema, node, path):
    """Field names in the CRD schema and in meshcore's, compared recursively."""
    out = []
    if isinstance(node, Obj):
        props = schema.get("properties")
        if props is None:
            return out
        ours, theirs = set(node.fields), set(props)
        out += [f"{path}.{f}: in the CRD, not in meshcore" for f in sorted(theirs - ours)]
        out += [f"{path}.{f}: in meshcore, not in the CRD" for f in sorted(ours - theirs)]
        for f in sorted(ours & theirs):
            out += differences(props[f], node.fields[f], f"{path}.{f}")
    elif isinstance(node, List) and "items" in schema:
        out += differences(schema["items"], node.item, f"{path}[]")
    elif isinstance(node, Map) and isinstance(schema.get("additionalProperties"), dict):
        out += differences(schema["additionalProperties"], node.value, f"{path}{{}}")
    elif isinstance(node, IntOrStr):
        pass
    return out


@pytest.mark.parametrize("key", sorted(crd_specs()) or [pytest.param(None, marks=pytest.mark.skip("no CRDs"))],
                         ids=lambda k: f"{k[0]}-{k[1]}" if k else "none")
def test_field_names_match_the_crd_schemas(key):
    kind, _ = key
    assert differences(crd_specs()[key], SPECS[kind], "spec") == []


# ---- Bookinfo and pilot's testdata configs load ------------------------------------------------------

UNSUPPORTED_KINDS = {"Gateway", "Sidecar", "EnvoyFilter", "WorkloadGroup", "Deployment"}


def load_file(path):
    mesh = load_texts({path.name: path.read_text()})
    for doc in read_documents(path.read_text()):
        if doc and doc.get("kind") in UNSUPPORTED_KINDS:
            label = f"{doc['kind']} {doc['metadata'].get('namespace', 'default')}/{doc['metadata']['name']}"
            assert [f for f in mesh.findings if f.resource == label and f.code == fnd.UNSUPPORTED_KIND
                    and doc["kind"] in f.message], f"{label} not reported"
    return mesh


@pytest.mark.parametrize("path", yaml_files("bookinfo"), ids=lambda p: p.name)
def test_bookinfo_files_load(path):
    mesh = load_file(path)
    assert [str(f) for f in mesh.findings if f.is_error] == []


# What meshcore rejects in pilot's testdata: a field the v1 CRD schema does not have,
# and three settings meshcore cannot honour (each named).
TESTDATA_ERRORS = {
    ("rule-websocket-route.yaml", "VirtualService testns/websocket-route", "spec.http[0]", fnd.INVALID),
    ("rule-websocket-route.yaml", "VirtualService testns/websocket-route2", "spec.http[0]", fnd.INVALID),
    ("rule-default-route-cors-policy.yaml", "VirtualService testns/cors", "spec.http[0].corsPolicy", fnd.UNSUPPORTED),
    ("destination-rule-passthrough.yaml", "DestinationRule testns/drpassthrough", "spec.trafficPolicy.loadBalancer"
     ".simple", fnd.UNSUPPORTED),
    ("se-example.yaml", "ServiceEntry seexamples/unix-domain-socket-example", "spec.endpoints[0].address",
     fnd.UNSUPPORTED),
}


@pytest.mark.parametrize("path", yaml_files("testdata-config"), ids=lambda p: p.name)
def test_testdata_config_files_load(path):
    mesh = load_file(path)
    got = {(f.file, f.resource, f.path, f.code) for f in mesh.findings if f.is_error}
    assert got == {e for e in TESTDATA_ERRORS if e[0] == path.name}


# ---- Bookinfo translated for the productpage sidecar --------------------------------------------------

BOOKINFO = {"productpage": ["v1"], "reviews": ["v1", "v2", "v3"], "details": ["v1", "v2"],
            "ratings": ["v1", "v2", "v2-mysql", "v2-mysql-vm"]}


def bookinfo_registry():
    """The registry Bookinfo runs on: one Service per app, one WorkloadEntry per version."""
    docs, n = [], 0
    for app, versions in BOOKINFO.items():
        docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "namespace": "default"},
                     "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 9080}]}})
        for v in versions:
            n += 1
            docs.append({"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
                         "metadata": {"name": f"{app}-{v}", "namespace": "default"},
                         "spec": {"address": f"10.0.0.{n}", "labels": {"app": app, "version": v},
                                  "serviceAccount": f"bookinfo-{app}"}})
    return docs


ROUTING = [p for p in yaml_files("bookinfo") if p.name.startswith(("virtual-service-", "fault-injection-"))]


def bookinfo(path):
    docs = [d for d in read_documents(path.read_text()) if d]
    rules = [] if any(d["kind"] == "DestinationRule" for d in docs) else \
        [d for d in read_documents((CONFORMANCE / "bookinfo" / "destination-rule-all.yaml").read_text()) if d]
    return load_documents(bookinfo_registry() + rules + docs, path.name)


@pytest.mark.parametrize("path", ROUTING, ids=lambda p: p.name)
def test_bookinfo_translates_for_productpage(path):
    mesh = bookinfo(path)
    assert [str(f) for f in check(mesh, ["default/productpage-v1"]) if f.is_error] == []
    t = translate(mesh, "default/productpage-v1")
    validate_bootstrap(t.bootstrap)
    assert [ls.name for ls in t.bootstrap.static_resources.listeners] == ["127.0.0.1_9080"]
    names = {c.name for c in t.bootstrap.static_resources.clusters}
    for app in BOOKINFO:
        assert f"outbound|9080||{app}.default.svc.cluster.local" in names
    for dr in mesh.of("DestinationRule"):
        for subset in dr.spec["subsets"]:
            assert f"outbound|9080|{subset['name']}|{dr.spec['host']}.default.svc.cluster.local" in names


def test_bookinfo_reviews_canary_and_ratings_fault():
    from meshcore import xds_types

    def reviews_routes(name):
        t = translate(bookinfo(CONFORMANCE / "bookinfo" / name), "default/productpage-v1")
        hcm = xds_types.unpack(t.bootstrap.static_resources.listeners[0].filter_chains[0].filters[0].typed_config)
        return {vh.name: list(vh.routes) for vh in hcm.route_config.virtual_hosts}

    [split] = reviews_routes("virtual-service-reviews-90-10.yaml")["reviews.default.svc.cluster.local:9080"]
    assert [(c.name, c.weight.value) for c in split.route.weighted_clusters.clusters] == [
        ("outbound|9080|v1|reviews.default.svc.cluster.local", 90),
        ("outbound|9080|v2|reviews.default.svc.cluster.local", 10)]
    jason, rest = reviews_routes("virtual-service-ratings-test-abort.yaml")["ratings.default.svc.cluster.local:9080"]
    assert jason.match.headers[0].name == "end-user"
    fault = xds_types.unpack(jason.typed_per_filter_config[xds_types.FAULT_FILTER_NAME])
    assert (fault.abort.http_status, fault.abort.percentage.numerator) == (500, 1_000_000)
    assert not rest.typed_per_filter_config

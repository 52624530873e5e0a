"""PeerAuthentication, DestinationRule tls, auto mTLS, inbound listeners and
AuthorizationPolicy in the translation (translate/security.py, authz.py), and
what `meshcore check` says about them (securitycheck.py)."""
from __future__ import annotations

import json

import pytest
from google.protobuf import json_format

from meshcore import _core
from meshcore.translate import Security, check, load_texts, translate
from meshcore.translate import findings as fnd
from meshcore.translate.authz import map_destination_ports

REGISTRY = """
apiVersion: v1
kind: Service
metadata: {name: checkout, namespace: shop}
spec:
  selector: {app: checkout}
  ports: [{name: http, port: 9080}, {name: tcp-db, port: 9090}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: checkout
  namespace: shop
  annotations: {"sidecar.meshcore.dev/inbound-ports": "http=28081,tcp-db=28082"}
spec:
  address: 10.0.0.5
  ports: {http: 18081, tcp-db: 18082}
  labels: {app: checkout}
  serviceAccount: checkout-sa
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web, namespace: shop}
spec: {address: 10.0.0.6, labels: {app: web}, serviceAccount: web}
---
apiVersion: v1
kind: Service
metadata: {name: legacy, namespace: shop}
spec:
  selector: {app: legacy}
  ports: [{name: http, port: 7000}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: legacy, namespace: shop}
spec: {address: 10.0.0.7, ports: {http: 17000}, labels: {app: legacy}}
"""
SECRETS = ({"name": "default", "tls_certificate": {"certificate_chain": {"inline_string": "x"},
                                                   "private_key": {"inline_string": "y"}}},
           {"name": "ROOTCA", "validation_context": {"trusted_ca": {"inline_string": "z"}}})
WITH_CERTS = Security(secrets=SECRETS, require_certificates=True)


def run(extra="", workload="shop/checkout", security=WITH_CERTS):
    mesh = load_texts({"r.yaml": REGISTRY, "s.yaml": extra})
    t = translate(mesh, workload, security=security)
    doc = json_format.MessageToDict(t.bootstrap, preserving_proto_field_name=True)
    return t, doc


def listener(doc, name):
    return next(x for x in doc["static_resources"]["listeners"] if x["name"] == name)


def cluster(doc, name):
    return next(x for x in doc["static_resources"]["clusters"] if x["name"] == name)


def pa(mode, ns="istio-system", name="default", selector=None, ports=None):
    sel = f"\n  selector: {{matchLabels: {json.dumps(selector)}}}" if selector else ""
    plm = f"\n  portLevelMtls: {json.dumps(ports)}" if ports else ""
    return (f"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: {name}, namespace: {ns}}}"
            f"\nspec:{sel}\n  mtls: {{mode: {mode}}}{plm}\n---\n")


# ---- inbound listeners and PeerAuthentication ---------------------------------------------------------


def test_default_is_permissive_tls_inspector_and_two_chains():
    t, doc = run()
    assert t.errors == []
    ls = listener(doc, "inbound_10.0.0.5_28081")
    assert ls["address"]["socket_address"] == {"address": "10.0.0.5", "port_value": 28081}
    assert [lf["name"] for lf in ls["listener_filters"]] == ["envoy.filters.listener.tls_inspector"]
    assert [c["filter_chain_match"]["transport_protocol"] for c in ls["filter_chains"]] == ["tls", "raw_buffer"]
    tls = ls["filter_chains"][0]["transport_socket"]["typed_config"]
    assert tls["require_client_certificate"] is True
    assert tls["common_tls_context"]["tls_certificate_sds_secret_configs"] == [{"name": "default"}]
    hcm = ls["filter_chains"][0]["filters"][-1]["typed_config"]
    assert hcm["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["cluster"] == "inbound|18081||"
    app = cluster(doc, "inbound|18081||")
    assert app["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"] == \
        {"address": "127.0.0.1", "port_value": 18081}
    tcp = listener(doc, "inbound_10.0.0.5_28082")
    assert tcp["filter_chains"][0]["filters"][-1]["name"] == "envoy.filters.network.tcp_proxy"
    assert [s["name"] for s in doc["static_resources"]["secrets"]] == ["default", "ROOTCA"]


@pytest.mark.parametrize("docs, http_mode, tcp_mode", [
    (pa("STRICT"), "STRICT", "STRICT"),
    (pa("STRICT") + pa("DISABLE", ns="shop"), "DISABLE", "DISABLE"),  # namespace over mesh
    (pa("DISABLE", ns="shop") + pa("UNSET", ns="shop", name="wl", selector={"app": "checkout"}),
     "DISABLE", "DISABLE"),  # UNSET inherits
    (pa("STRICT", ns="shop", name="wl", selector={"app": "checkout"}, ports={"18082": {"mode": "DISABLE"}}),
     "STRICT", "DISABLE"),  # port level, keyed by the application's port
    (pa("PERMISSIVE", ns="shop", name="wl", selector={"app": "web"}), "PERMISSIVE", "PERMISSIVE"),  # other labels
    (pa("STRICT", ns="other"), "PERMISSIVE", "PERMISSIVE"),  # not the root namespace
])
def test_peer_authentication_modes(docs, http_mode, tcp_mode):
    _, doc = run(docs)

    def mode(ls):
        chains = ls["filter_chains"]
        if len(chains) == 2:
            return "PERMISSIVE"
        return "STRICT" if "transport_socket" in chains[0] else "DISABLE"

    assert mode(listener(doc, "inbound_10.0.0.5_28081")) == http_mode
    assert mode(listener(doc, "inbound_10.0.0.5_28082")) == tcp_mode


def test_root_namespace_is_configurable():
    _, doc = run(pa("STRICT", ns="mesh-root"), security=Security(secrets=SECRETS, root_namespace="mesh-root"))
    assert len(listener(doc, "inbound_10.0.0.5_28081")["filter_chains"]) == 1


def test_portlevel_keys_may_be_yaml_numbers():
    mesh = load_texts({"p.yaml": "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
                                 "metadata: {name: p, namespace: shop}\nspec:\n  selector: {matchLabels: {a: b}}\n"
                                 "  portLevelMtls:\n    8080: {mode: DISABLE}\n"})
    assert [f for f in mesh.findings if f.is_error] == []


def test_a_sidecar_without_certificates_is_refused_when_mtls_is_needed():
    t, _ = run(security=Security(require_certificates=True))
    assert [f.code for f in t.errors] == [fnd.NEEDS_CERTIFICATE]
    t, _ = run(pa("DISABLE"), security=Security(require_certificates=True))
    assert t.errors == []  # nothing to do TLS with
    t, _ = run(workload="shop/legacy", security=Security(require_certificates=True))
    assert [f.code for f in t.errors] == [fnd.NEEDS_CERTIFICATE]  # it calls checkout, which has a sidecar


# ---- outbound ----------------------------------------------------------------------------------------------


def test_auto_mtls_to_a_sidecar_and_plaintext_to_the_app_of_a_workload_without_one():
    t, doc = run(workload="shop/web")
    c = cluster(doc, "outbound|9080||checkout.shop.svc.cluster.local")
    ep = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert ep == {"address": "10.0.0.5", "port_value": 28081}  # the sidecar's inbound port
    ctx = c["transport_socket"]["typed_config"]
    assert ctx["sni"] == "outbound_.9080_._.checkout.shop.svc.cluster.local"
    vc = ctx["common_tls_context"]["combined_validation_context"]
    assert vc["default_validation_context"]["match_typed_subject_alt_names"] == [
        {"san_type": "URI", "matcher": {"exact": "spiffe://cluster.local/ns/shop/sa/checkout-sa"}}]
    assert vc["validation_context_sds_secret_config"] == {"name": "ROOTCA"}
    legacy = cluster(doc, "outbound|7000||legacy.shop.svc.cluster.local")
    assert "transport_socket" not in legacy
    assert legacy["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"]["port_value"] == 17000


def test_auto_mtls_follows_the_destinations_disable():
    _, doc = run(pa("DISABLE", ns="shop"), workload="shop/web")
    c = cluster(doc, "outbound|9080||checkout.shop.svc.cluster.local")
    assert "transport_socket" not in c
    assert c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"]["port_value"] == 28081


def dr(tls):
    return ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: c, namespace: shop}\n"
            f"spec:\n  host: checkout\n  trafficPolicy:\n    tls: {json.dumps(tls)}\n---\n")


def test_destination_rule_tls_modes(tmp_path):
    t, doc = run(dr({"mode": "DISABLE"}) + pa("STRICT", ns="shop"), workload="shop/web")
    assert "transport_socket" not in cluster(doc, "outbound|9080||checkout.shop.svc.cluster.local")
    assert any(f.code == fnd.MTLS_CONFLICT and "STRICT" in f.message for f in t.findings)

    t, doc = run(dr({"mode": "ISTIO_MUTUAL", "subjectAltNames": ["spiffe://cluster.local/ns/x/sa/y"],
                     "sni": "checkout.example"}), workload="shop/web")
    ctx = cluster(doc, "outbound|9080||checkout.shop.svc.cluster.local")["transport_socket"]["typed_config"]
    assert ctx["sni"] == "checkout.example"
    assert ctx["common_tls_context"]["combined_validation_context"]["default_validation_context"][
        "match_typed_subject_alt_names"][0]["matcher"]["exact"] == "spiffe://cluster.local/ns/x/sa/y"

    for f in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / f).write_text("x")
    t, doc = run(dr({"mode": "MUTUAL", "caCertificates": str(tmp_path / "ca.pem"),
                     "clientCertificate": str(tmp_path / "cert.pem"), "privateKey": str(tmp_path / "key.pem"),
                     "subjectAltNames": ["spiffe://td/ns/a/sa/b", "db.example.com"]}), workload="shop/web")
    c = cluster(doc, "outbound|9080||checkout.shop.svc.cluster.local")
    common = c["transport_socket"]["typed_config"]["common_tls_context"]
    assert common["tls_certificates"][0]["private_key"] == {"filename": str(tmp_path / "key.pem")}
    assert common["validation_context"]["trusted_ca"] == {"filename": str(tmp_path / "ca.pem")}
    assert c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"]["port_value"] == 18081  # the destination terminates TLS itself: its own port
    assert [f.code for f in t.errors] == [fnd.UNSUPPORTED]  # the DNS SAN is not checked: refused
    assert "db.example.com" in t.errors[0].message


def test_mutual_needs_a_client_certificate():
    mesh = load_texts({"d.yaml": dr({"mode": "MUTUAL"})})
    paths = {f.path for f in mesh.findings if f.is_error}
    assert paths == {"spec.trafficPolicy.tls.clientCertificate", "spec.trafficPolicy.tls.privateKey"}


# ---- authorization on the inbound listeners ------------------------------------------------------------

AP = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-web, namespace: shop}
spec:
  selector: {matchLabels: {app: checkout}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/shop/sa/web"]}}]
    to: [{operation: {methods: ["GET"], ports: ["18081"]}}]
  - from: [{source: {namespaces: ["batch"]}}]
    to: [{operation: {ports: ["18082"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: istio-system}
spec:
  action: DENY
  rules: [{to: [{operation: {ports: ["18081"], paths: ["/admin*"]}}]}]
---
"""


def rbac_filters(doc, name, http):
    chain = listener(doc, name)["filter_chains"][0]
    if http:
        filters = chain["filters"][-1]["typed_config"]["http_filters"][:-1]
    else:
        filters = chain["filters"][:-1]
    out = []
    for f in filters:
        if not f["name"].endswith(".rbac"):  # Istio's telemetry filters are on the chains too
            continue
        from envoy.config.rbac.v3 import rbac_pb2

        msg = rbac_pb2.RBAC()
        json_format.ParseDict(f["typed_config"]["rules"], msg)
        out.append(msg)
    return out


def decide(filters, **rq):
    for r in filters:
        ok, policy = _core.rbac_probe(r, **rq)
        if not ok:
            return False, policy
    return True, None


def test_authorization_policies_on_the_inbound_listeners():
    t, doc = run(AP)
    assert t.errors == []
    http = rbac_filters(doc, "inbound_10.0.0.5_28081", True)
    assert len(http) == 2  # root-namespace DENY, then ALLOW
    web = "spiffe://cluster.local/ns/shop/sa/web"
    # The connection arrives on the sidecar's port 28081; `ports: ["18081"]` names the application's.
    at = {"destination_ip": "10.0.0.5", "destination_port": 28081}
    assert decide(http, principal=web, method="GET", path="/x", **at) == (True, None)
    assert decide(http, principal=web, method="POST", path="/x", **at)[0] is False
    assert decide(http, principal=web, method="GET", path="/admin/1", **at) == \
        (False, "ns[istio-system]-policy[deny-admin]-rule[0]")
    assert decide(http, principal="spiffe://cluster.local/ns/shop/sa/other", method="GET", path="/", **at)[0] is False
    assert decide(http, principal="", method="GET", path="/", **at)[0] is False  # plaintext: no principal
    tcp = rbac_filters(doc, "inbound_10.0.0.5_28082", False)
    at = {"destination_ip": "10.0.0.5", "destination_port": 28082, "http": False}
    assert decide(tcp, principal="spiffe://cluster.local/ns/batch/sa/x", **at)[0] is True
    assert decide(tcp, principal=web, **at)[0] is False


def test_map_destination_ports():
    tree = {"or_rules": {"rules": [{"destination_port": 18081}, {"destination_port": 28081},
                                   {"destination_port": 9}]}}
    assert map_destination_ports(tree, 18081, 28081) == {"or_rules": {"rules": [
        {"destination_port": 28081}, {"not_rule": {"any": True}}, {"destination_port": 9}]}}


def test_policies_need_a_sidecar():
    t, _ = run(AP.replace("app: checkout", "app: web"), workload="shop/web")
    assert any(f.code == fnd.NO_SIDECAR for f in t.findings)


@pytest.mark.parametrize("spec, code, path", [
    ("{action: CUSTOM, provider: {name: ext}, rules: [{}]}", fnd.UNSUPPORTED, "spec.action"),
    ("{action: AUDIT, rules: [{}]}", fnd.UNSUPPORTED, "spec.action"),
    ("{rules: [{when: [{key: 'request.auth.claims[iss]', values: [a]}]}]}", fnd.UNSUPPORTED,
     "spec.rules[0].when[0].key"),
    ("{action: DENY, rules: [{when: [{key: connection.sni, values: [a]}]}]}", fnd.UNSUPPORTED,
     "spec.rules[0].when[0].key"),
    ("{rules: [{when: [{key: source.color, values: [a]}]}]}", fnd.INVALID, "spec.rules[0].when[0].key"),
    ("{rules: [{from: [{source: {ipBlocks: [1.2.3]}}]}]}", fnd.INVALID, "spec.rules[0].from[0].source.ipBlocks"),
    ("{rules: [{to: [{operation: {ports: [http]}}]}]}", fnd.INVALID, "spec.rules[0].to[0].operation.ports"),
    ("{rules: [{to: [{operation: {paths: ['/a/{**}/{*}']}}]}]}", fnd.INVALID, "spec.rules[0].to[0].operation.paths"),
    ("{action: DENY}", fnd.INVALID, "spec.rules"),
    ("{rules: [{from: []}]}", fnd.INVALID, "spec.rules[0].from"),
    ("{targetRef: {kind: Gateway, name: gw}, rules: [{}]}", fnd.IGNORED, "spec.targetRef"),
])
def test_authorization_policy_validation(spec, code, path):
    mesh = load_texts({"a.yaml": f"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                                 f"metadata: {{name: a, namespace: shop}}\nspec: {spec}\n"})
    assert any(f.code == code and f.path == path for f in mesh.findings), [str(f) for f in mesh.findings]


# ---- meshcore check -------------------------------------------------------------------------------------------


def checked(policy):
    return check(load_texts({"r.yaml": REGISTRY, "p.yaml": policy}))


def ap(rules, selector="app: checkout", action="ALLOW"):
    return (f"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: p, namespace: shop}}\n"
            f"spec:\n  action: {action}\n  selector: {{matchLabels: {{{selector}}}}}\n  rules: {rules}\n")


@pytest.mark.parametrize("policy, code, text", [
    (ap('[{from: [{source: {principals: ["other.td/ns/shop/sa/web"]}}]}]'), fnd.AUTHZ_NEVER_MATCHES,
     "trust domain other.td"),
    (ap('[{from: [{source: {principals: ["cluster.local/ns/shop/sa/ghost"]}}]}]'), fnd.UNKNOWN_IDENTITY, "ghost"),
    (ap('[{from: [{source: {namespaces: ["nowhere"]}}]}]'), fnd.UNKNOWN_IDENTITY, "nowhere"),
    (ap('[{to: [{operation: {ports: ["9999"]}}]}]'), fnd.AUTHZ_NEVER_MATCHES, "port 9999"),
    (ap('[{to: [{operation: {methods: ["GET"], notMethods: ["GET"]}}]}]'), fnd.AUTHZ_NEVER_MATCHES, "notMethods"),
    (ap('[{to: [{operation: {paths: ["/a"], notPaths: ["*"]}}]}]'), fnd.AUTHZ_NEVER_MATCHES, "notPaths"),
    (ap("[{}]", selector="app: nothing"), fnd.NO_WORKLOAD, "selects no WorkloadEntry"),
    (ap('[{to: [{operation: {paths: ["/admin"]}}]}]', action="DENY"), fnd.AUTHZ_NEVER_MATCHES, "TCP ports"),
    (pa("STRICT", ns="shop", name="x", selector={"app": "none"}), fnd.NO_WORKLOAD, "selects no WorkloadEntry"),
    (pa("STRICT", ns="shop", name="x", selector={"app": "checkout"}, ports={"1234": {"mode": "DISABLE"}}),
     fnd.NO_WORKLOAD, "port 1234"),
])
def test_check_reports(policy, code, text):
    found = checked(policy)
    assert any(f.code == code and text in f.message for f in found), [str(f) for f in found]


def test_a_good_policy_has_nothing_to_report():
    found = checked(ap('[{from: [{source: {principals: ["cluster.local/ns/shop/sa/web"]}}], '
                       'to: [{operation: {ports: ["18081"], methods: ["GET"]}}]}]'))
    assert [str(f) for f in found if f.code in (fnd.AUTHZ_NEVER_MATCHES, fnd.UNKNOWN_IDENTITY, fnd.NO_WORKLOAD)] == []

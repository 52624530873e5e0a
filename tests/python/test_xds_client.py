"""meshcore.xds.client against a scripted ADS server (real gRPC, real socket):
what the proxy subscribes to, who it says it is, ACK and NACK, warming,
reconnection with initial_resource_versions. The apply callback validates the
config as the engine would and records it; tests/integration/test_xds_proxy.py
runs the same client in front of a real engine and real traffic."""
from __future__ import annotations

import threading

import pytest
from support import http as h
from support.ads import ScriptedAds, workload_resources
from support.net import wait_until

from meshcore.config import validate_bootstrap
from meshcore.xds import client as xc
from meshcore.xds import resources as xr


class Recorder:
    def __init__(self):
        self.applied = []
        self.lock = threading.Lock()

    def __call__(self, bootstrap):
        validate_bootstrap(bootstrap, "<xds>")
        with self.lock:
            self.applied.append(bootstrap)

    @property
    def last(self):
        return self.applied[-1] if self.applied else None

    def count(self):
        return len(self.applied)


@pytest.fixture
def ads():
    servers = [ScriptedAds()]
    yield servers
    for s in servers:
        s.stop()


@pytest.fixture
def make_client():
    clients = []

    def make(target, mode="delta", **kw):
        rec = Recorder()
        kw.setdefault("backoff", xc.Backoff(0.05, 0.4))
        c = xc.XdsClient(target, xc.node("shop/checkout", "10.1.2.3", "checkout-sa", {"app": "checkout"}), rec,
                         mode=mode, **kw).start()
        c.recorder = rec
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.stop()


RES = workload_resources(h.simple([18080]))


def serve_all(s, res=RES, version="v1"):
    """Answers the initial subscriptions: CDS, EDS (as asked), LDS, RDS (as asked)."""
    nonces = {}
    for t in (xr.CDS, xr.LDS):
        s.recv(t)
        nonces[t] = s.send(s.response(t, res.of(t), version))
    for t in (xr.EDS, xr.RDS):
        s.recv(t)  # the ACK of CDS/LDS came first; the subscription follows
        nonces[t] = s.send(s.response(t, res.of(t), version))
    return nonces


@pytest.mark.parametrize("mode", ["delta", "sotw"])
def test_first_requests_say_who_the_proxy_is_and_subscribe_as_envoy(ads, make_client, mode):
    make_client(ads[0].target, mode)
    s = ads[0].next_stream()
    assert s.mode == mode
    first = s.recv()
    assert first.type_url == xr.CDS
    assert first.node.id == "sidecar~10.1.2.3~checkout.shop~shop.svc.cluster.local"
    md = first.node.metadata
    assert md["NAMESPACE"] == "shop" and md["WORKLOAD_NAME"] == "checkout"
    assert md["SERVICE_ACCOUNT"] == "checkout-sa" and md["LABELS"]["app"] == "checkout"
    rest = {r.type_url: r for r in s.pending()}
    assert set(rest) == {xr.LDS, xr.SDS}  # EDS/RDS: nothing named yet
    assert all(not r.HasField("node") for r in rest.values())  # the node once per stream
    names = (lambda r: list(r.resource_names_subscribe)) if mode == "delta" else (lambda r: list(r.resource_names))
    assert names(first) == [] and names(rest[xr.LDS]) == []  # wildcard (legacy form)
    assert names(rest[xr.SDS]) == ["ROOTCA"]


@pytest.mark.parametrize("mode", ["delta", "sotw"])
def test_acks_carry_the_nonce_and_version_and_the_config_applies_when_whole(ads, make_client, mode):
    c = make_client(ads[0].target, mode)
    s = ads[0].next_stream()
    s.recv(xr.CDS)
    n_cds = s.send(s.response(xr.CDS, RES.of(xr.CDS), "c1"))
    ack = s.recv(xr.CDS)
    assert ack.response_nonce == n_cds and not ack.HasField("error_detail")
    if mode == "sotw":
        assert ack.version_info == "c1"
    sub = s.recv(xr.EDS)  # warming: the cluster's endpoints are asked for, nothing applied yet
    assert list(sub.resource_names_subscribe if mode == "delta" else sub.resource_names) == ["backend"]
    assert c.recorder.count() == 0 and "endpoints" in c.warming
    n_eds = s.send(s.response(xr.EDS, RES.of(xr.EDS), "e1"))
    assert s.recv(xr.EDS).response_nonce == n_eds
    wait_until(lambda: c.recorder.count() == 1, what="clusters applied")
    assert not c.ready  # no listeners received yet: not ready (Envoy waits for CDS and LDS)
    s.recv(xr.LDS)
    n_lds = s.send(s.response(xr.LDS, RES.of(xr.LDS), "l1"))
    assert s.recv(xr.LDS).response_nonce == n_lds
    sub = s.recv(xr.RDS)
    assert list(sub.resource_names_subscribe if mode == "delta" else sub.resource_names) == ["http_routes"]
    assert c.recorder.count() == 1  # the listener waits for its routes (Envoy's warming)
    n_rds = s.send(s.response(xr.RDS, RES.of(xr.RDS), "r1"))
    ack = s.recv(xr.RDS)
    assert ack.response_nonce == n_rds and not ack.HasField("error_detail")
    wait_until(lambda: c.ready and c.recorder.count() == 2, what="listener applied")
    b = c.recorder.last.static_resources
    assert [x.name for x in b.listeners] == ["http"] and [x.name for x in b.clusters] == ["backend"]
    assert b.listeners[0].filter_chains[0].filters[0].typed_config  # routes are inline again
    st = c.status()["types"]
    assert st["RDS"]["nonce"] == n_rds and st["RDS"]["acks"] == 1 and st["RDS"]["last_nack"] is None
    assert st["CDS"]["version"] == "c1" and st["LDS"]["resources"] == {"http": "l1"}


@pytest.mark.parametrize("mode", ["delta", "sotw"])
def test_a_bad_resource_is_nacked_with_the_reason_and_the_last_good_config_stays(ads, make_client, mode):
    c = make_client(ads[0].target, mode)
    s = ads[0].next_stream()
    serve_all(s, version="v1")
    wait_until(lambda: c.ready, what="first config")
    good = c.recorder.count()
    while s.pending(0.2):
        pass
    bad = workload_resources(h.simple([18080]))
    bad.of(xr.RDS)["http_routes"].virtual_hosts[0].routes[0].route.cluster = "nope"
    nonce = s.send(s.response(xr.RDS, bad.of(xr.RDS), "v2"))
    nack = s.recv(xr.RDS)
    assert nack.response_nonce == nonce
    assert nack.error_detail.code == 3 and 'unknown cluster "nope"' in nack.error_detail.message
    if mode == "sotw":
        assert nack.version_info == "v1"  # the version still in use
    assert c.recorder.count() == good
    st = c.status()["types"]["RDS"]
    assert st["last_nack"]["nonce"] == nonce and st["version"] == "v1" and st["nacks"] == 1
    assert c.stats()["xds.rds.update_rejected"] == 1
    # An undecodable resource (a field number the proxy's API lacks) is a NACK too.
    raw = RES.of(xr.CDS)["backend"].SerializeToString() + bytes([0xf8, 0xff, 0x7f, 1])
    if mode == "delta":
        nonce = s.send(s.delta(xr.CDS, {"backend": raw}, "v3"))
    else:
        resp = s.sotw(xr.CDS, {}, "v3")
        any_msg = resp.resources.add()
        any_msg.type_url, any_msg.value = xr.CDS, raw
        nonce = s.send(resp)
    nack = s.recv(xr.CDS)
    assert nack.response_nonce == nonce and "unknown field number 262143" in nack.error_detail.message
    # A good update after the NACKs applies.
    fixed = workload_resources(h.simple([18081]))
    s.send(s.response(xr.EDS, fixed.of(xr.EDS), "v4"))
    ack = s.recv(xr.EDS)
    assert not ack.HasField("error_detail")
    port = c.recorder.last.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0]
    assert port.endpoint.address.socket_address.port_value == 18081


def test_delta_removals_and_unsubscribe(ads, make_client):
    c = make_client(ads[0].target)
    s = ads[0].next_stream()
    serve_all(s)
    wait_until(lambda: c.ready, what="first config")
    s.pending(0.2)
    s.send(s.delta(xr.LDS, {}, "v2", removed=["http"]))
    assert not s.recv(xr.LDS).HasField("error_detail")
    unsub = s.recv(xr.RDS)
    assert list(unsub.resource_names_unsubscribe) == ["http_routes"]
    wait_until(lambda: not c.recorder.last.static_resources.listeners, what="listener removed")
    assert c.resources.of(xr.RDS) == {}


@pytest.mark.parametrize("mode", ["delta", "sotw"])
def test_reconnects_with_backoff_and_announces_what_it_holds(ads, make_client, mode):
    c = make_client(ads[0].target, mode, healthy_after=60)
    s = ads[0].next_stream()
    serve_all(s, version="v1")
    wait_until(lambda: c.ready, what="first config")
    applied = c.recorder.count()
    port = ads[0].port
    ads[0].stop()  # the control plane goes away, then comes back on the same port
    wait_until(lambda: not c.connected, what="stream down")
    ads.append(ScriptedAds(port))
    s2 = ads[-1].next_stream()
    first = s2.recv(xr.CDS)
    assert first.HasField("node")
    reqs = {r.type_url: r for r in [first, *s2.pending()]}
    assert set(reqs) == {xr.CDS, xr.EDS, xr.LDS, xr.RDS, xr.SDS}
    if mode == "delta":
        assert dict(reqs[xr.CDS].initial_resource_versions) == {"backend": "v1"}
        assert dict(reqs[xr.RDS].initial_resource_versions) == {"http_routes": "v1"}
        assert list(reqs[xr.RDS].resource_names_subscribe) == ["http_routes"]
    else:
        assert reqs[xr.CDS].version_info == "v1" and list(reqs[xr.EDS].resource_names) == ["backend"]
    assert c.recorder.count() == applied  # nothing re-applied, nothing dropped meanwhile
    assert c.stats()["control_plane.streams"] == 2


def test_backoff_is_jittered_exponential_capped_and_resets():
    seq = iter([0.0, 1.0] * 20)
    b = xc.Backoff(0.5, 30.0, rng=lambda: next(seq))
    delays = [b.next() for _ in range(10)]
    assert delays[:4] == [0.25, 1.0, 1.0, 4.0]  # [d/2, d] with d = 0.5, 1, 2, 4
    assert max(delays) <= 30.0 and delays[-1] == 30.0
    b.reset()
    assert b.next() == 0.25


def test_the_token_is_sent_as_a_bearer_credential(ads, make_client, tmp_path):
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    make_client(ads[0].target, token_file=str(token))
    s = ads[0].next_stream()
    assert s.metadata.get("authorization") == "Bearer secret-token"


def test_a_bootstrap_token_file_sends_its_token(ads, make_client, tmp_path):
    token = tmp_path / "token.json"
    token.write_text('{"token": "abc123", "namespace": "default", "service_account": "sa", '
                     '"trust_domain": "cluster.local", "root_cert": "roots", "expires": "2099-01-01T00:00:00+00:00"}\n')
    make_client(ads[0].target, token_file=str(token))
    s = ads[0].next_stream()
    assert s.metadata.get("authorization") == "Bearer abc123"


def test_refresh_reapplies_with_new_secrets(ads, make_client):
    secrets = [({"name": "ROOTCA", "validation_context": {"trusted_ca": {"inline_string": "one"}}},)]
    c = make_client(ads[0].target, secrets=lambda: secrets[-1])
    s = ads[0].next_stream()
    serve_all(s)
    wait_until(lambda: c.ready, what="first config")
    secrets.append(({"name": "ROOTCA", "validation_context": {"trusted_ca": {"inline_string": "two"}}},))
    assert c.refresh("test")
    got = c.recorder.last.static_resources.secrets
    assert [x.validation_context.trusted_ca.inline_string for x in got] == ["two"]

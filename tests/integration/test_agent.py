"""`meshcore agent` as a real process: its certificate from the certificate
service (real gRPC on loopback) by CSR with a bootstrap token, served over
SDS on a Unix socket to a gRPC client built from Envoy's SDS stub, renewed
and pushed as a new version. The CA key never leaves the CA directory."""
from __future__ import annotations

import os
import queue
import stat

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc
from support.ca_service import AgentProcess, CAService

from meshcore import ca, pki
from meshcore.xds import ca_proto
from meshcore.xds.resources import SDS


@pytest.fixture
def svc(tmp_path):
    s = CAService(tmp_path).start()
    yield s
    s.stop()


@pytest.fixture
def agent_factory(tmp_path):
    agents = []

    def make(svc, ttl="1h", token_file=None, workload="shop/api", wait_ready=True):
        d = tmp_path / f"agent{len(agents)}"
        d.mkdir(mode=0o700)
        a = AgentProcess(svc.target, token_file or svc.token_file(), str(d / "sds.sock"), str(tmp_path / "agent.log"),
                         workload=workload, extra_args=["--cert-ttl", ttl, "--wait", "5"])
        agents.append(a)
        return a.start(wait_ready=wait_ready)

    yield make
    for a in agents:
        a.stop()


class SdsStream:
    """A SotW or delta SDS stream over the agent's socket, requests fed from a queue."""

    def __init__(self, socket_path: str, delta: bool = False):
        self.channel = grpc.insecure_channel(f"unix:{socket_path}")
        stub = sds_pb2_grpc.SecretDiscoveryServiceStub(self.channel)
        self.requests: queue.Queue = queue.Queue()
        method = stub.DeltaSecrets if delta else stub.StreamSecrets
        self.responses = method(iter(self.requests.get, None), timeout=60)

    def send(self, **fields):
        node = base_pb2.Node(id="sidecar~127.0.0.1~api.shop~shop.svc.cluster.local")
        cls = discovery_pb2.DeltaDiscoveryRequest if "resource_names_subscribe" in fields else \
            discovery_pb2.DiscoveryRequest
        self.requests.put(cls(node=node, type_url=SDS, **fields))

    def next(self):
        return next(self.responses)

    def close(self):
        self.requests.put(None)
        self.responses.cancel()
        self.channel.close()


def _secrets(resp) -> dict:
    out = {}
    for anyr in resp.resources:
        s = secret_pb2.Secret()
        anyr.Unpack(s)
        out[s.name] = s
    return out


def _check_default(svc, s: secret_pb2.Secret) -> int:
    """The `default` secret: a chain verifying to the CA's root for shop/api, and its key. Returns the serial."""
    chain = ca.load_certs(s.tls_certificate.certificate_chain.inline_string)
    leaf = ca_proto.verify_chain(chain, svc.authority.trust_bundle)
    assert pki.spiffe_id_of(leaf) == "spiffe://cluster.local/ns/shop/sa/api"
    key = pki.load_key(s.tls_certificate.private_key.inline_string)
    fmt = (pki.serialization.Encoding.DER, pki.serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key.public_key().public_bytes(*fmt) == leaf.public_key().public_bytes(*fmt)
    return leaf.serial_number


def test_agent_serves_default_and_rootca_and_pushes_renewals(svc, agent_factory, tmp_path):
    agent = agent_factory(svc, ttl="4s")
    assert stat.S_IMODE(os.stat(agent.socket_path).st_mode) & 0o077 == 0
    stream = SdsStream(agent.socket_path)
    try:
        stream.send(resource_names=["default", "ROOTCA"])
        first = stream.next()
        assert first.type_url == SDS and first.version_info and first.nonce
        got = _secrets(first)
        assert set(got) == {"default", "ROOTCA"}
        serial = _check_default(svc, got["default"])
        roots = ca.load_certs(got["ROOTCA"].validation_context.trusted_ca.inline_string)
        assert roots == svc.authority.trust_bundle
        stream.send(resource_names=["default", "ROOTCA"], version_info=first.version_info,
                    response_nonce=first.nonce)  # ACK
        # the renewal (before half of 4 s) arrives as a new version, unasked
        second = stream.next()
        assert second.version_info != first.version_info and second.nonce != first.nonce
        new_serial = _check_default(svc, _secrets(second)["default"])
        assert new_serial != serial
        stream.send(resource_names=["default", "ROOTCA"], version_info=second.version_info,
                    response_nonce=second.nonce)
    finally:
        stream.close()
    assert svc.service.counters["issued.token"] == 1
    assert svc.service.counters["issued.renewal"] >= 1
    _no_ca_key_outside_cadir(svc, tmp_path)


def test_agent_sds_by_name_delta_and_fetch(svc, agent_factory):
    agent = agent_factory(svc)
    root_only = SdsStream(agent.socket_path)
    delta = SdsStream(agent.socket_path, delta=True)
    try:
        root_only.send(resource_names=["ROOTCA"])
        assert set(_secrets(root_only.next())) == {"ROOTCA"}
        delta.send(resource_names_subscribe=["default"])
        resp = delta.next()
        assert [r.name for r in resp.resources] == ["default"] and resp.resources[0].version
        s = secret_pb2.Secret()
        resp.resources[0].resource.Unpack(s)
        _check_default(svc, s)
        delta.send(resource_names_subscribe=["ROOTCA"], response_nonce=resp.nonce)
        assert [r.name for r in delta.next().resources] == ["ROOTCA"]
    finally:
        root_only.close()
        delta.close()
    with grpc.insecure_channel(f"unix:{agent.socket_path}") as ch:
        fetched = sds_pb2_grpc.SecretDiscoveryServiceStub(ch).FetchSecrets(
            discovery_pb2.DiscoveryRequest(type_url=SDS, resource_names=["default"]), timeout=10)
    assert set(_secrets(fetched)) == {"default"}


def test_agent_refused_token_exits_with_reason(svc, agent_factory, tmp_path):
    import json

    data = json.loads(open(svc.token_file()).read())
    data["token"] = "forged"
    bad = tmp_path / "forged.json"
    bad.write_text(json.dumps(data))
    agent = agent_factory(svc, token_file=str(bad), wait_ready=False)
    assert agent.proc.wait(timeout=30) == 1
    assert "UNAUTHENTICATED" in agent.log() and "not known" in agent.log()
    assert not os.path.exists(agent.socket_path)
    assert svc.service.counters["refused.unknown_token"] == 1


def test_agent_workload_namespace_must_match_token(svc, agent_factory):
    agent = agent_factory(svc, workload="billing/api", wait_ready=False)
    assert agent.proc.wait(timeout=30) == 1
    assert "namespace 'shop'" in agent.log() and "billing" in agent.log()


def _no_ca_key_outside_cadir(svc, tmp_path):
    keys = svc.ca_key_bytes()
    assert keys
    for root, _dirs, files in os.walk(tmp_path):
        if os.path.abspath(root).startswith(os.path.abspath(svc.ca_dir)):
            continue
        for name in files:
            path = os.path.join(root, name)
            if not os.path.isfile(path):
                continue
            data = open(path, "rb").read()
            assert b"PRIVATE KEY" not in data, f"a private key in {path}"  # the agent writes no key anywhere
            for key in keys:
                assert key not in data, f"CA key found in {path}"

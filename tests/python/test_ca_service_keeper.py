"""CertificateKeeper: the first certificate at start, renewals before half
the lifetime, retries that keep the current certificate while the service
is away. Short TTLs; the assertions are on renewals having happened, never
on how fast."""
from __future__ import annotations

import threading

import pytest
from support.ca_service import CAService
from support.net import wait_until

from meshcore import ca
from meshcore.errors import CAError
from meshcore.xds import ca_proto
from meshcore.xds.ca_client import CertificateClient, CertificateKeeper


@pytest.fixture
def svc(tmp_path):
    s = CAService(tmp_path).start()
    yield s
    s.stop()


def test_keeper_renews_before_half_life_and_tells_listeners(svc):
    client = CertificateClient(svc.target, token_file=svc.token_file(), ttl="4s")
    seen, lock = [], threading.Lock()

    def listener(cert):
        with lock:
            seen.append(cert)

    keeper = CertificateKeeper(client, renew_fraction=0.5)
    keeper.add_listener(listener)
    first = keeper.start()
    try:
        assert keeper.current is first
        wait_until(lambda: len(seen) >= 2, timeout=20, what="two renewals")
    finally:
        keeper.stop()
    with lock:
        certs = [first, *seen]
    assert len({c.serial for c in certs}) == len(certs)
    for prev, new in zip(certs, certs[1:], strict=False):
        # renewed while the previous one had more than half its life left to run... at most half gone
        half = prev.issued_at + (prev.not_after.timestamp() - prev.issued_at) / 2
        assert new.issued_at <= half + 1.0  # 1 s: not_after is rounded up to the second
        leaf, *inter = ca.load_certs(new.chain_pem)
        ca_proto.verify_chain([leaf, *inter], svc.authority.trust_bundle)
    assert svc.service.counters["issued.renewal"] >= 2
    assert svc.service.counters["issued.token"] == 1


def test_keeper_start_raises_the_servers_reason(svc, tmp_path):
    import json

    bad = tmp_path / "bad.json"
    data = json.loads(open(svc.token_file()).read())
    data["token"] = "not-a-token"
    bad.write_text(json.dumps(data))
    keeper = CertificateKeeper(CertificateClient(svc.target, token_file=str(bad)))
    with pytest.raises(CAError) as info:
        keeper.start(wait=5)  # a refusal is not retried
    assert "UNAUTHENTICATED" in str(info.value) and "not known" in str(info.value)
    keeper.stop()


def test_keeper_keeps_current_while_service_away_then_renews(svc):
    client = CertificateClient(svc.target, token_file=svc.token_file(), ttl="6s")
    keeper = CertificateKeeper(client, renew_fraction=0.3)
    first = keeper.start()
    port = svc.port
    svc.stop()
    try:
        wait_until(lambda: keeper.failures >= 1, timeout=20, what="a failed renewal")
        assert keeper.current is first  # still served
        assert keeper.last_error and "UNAVAILABLE" in keeper.last_error
        svc.port = port
        svc.start()  # same port, back again
        wait_until(lambda: keeper.renewals >= 1, timeout=20, what="a renewal after the service is back")
        assert keeper.current.serial != first.serial
    finally:
        keeper.stop()


def test_keeper_start_waits_for_an_unreachable_service(svc):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    client = CertificateClient(f"127.0.0.1:{port}", token_file=svc.token_file())
    keeper = CertificateKeeper(client)
    with pytest.raises(CAError) as info:
        keeper.start(wait=0.5)
    assert "UNAVAILABLE" in str(info.value)
    keeper.stop()

"""meshcore.balance: the proxy's load balancers as stateful objects.

Smooth WRR is checked exactly against a Python reference of nginx's
algorithm (STYLE.md: one parametrized test runs both); weights change in
place; ring hash keeps keys where they were; least request follows active
counts; health marks are honoured until every endpoint is out.
"""
import collections

import pytest

from meshcore.balance import LeastRequestPicker, RandomPicker, RingHashPicker, WeightedPicker, key_hash


def ref_swrr(weights, picks, cur=None):
    """nginx's smooth weighted round robin (the reference, from its description)."""
    cur = cur if cur is not None else [0] * len(weights)
    total, out = sum(weights), []
    for _ in range(picks):
        best = None
        for i, w in enumerate(weights):
            cur[i] += w
            if best is None or cur[i] > cur[best]:
                best = i
        cur[best] -= total
        out.append(best)
    return out


def test_90_10_is_exact_over_100_picks():
    p = WeightedPicker({"stable": 90, "canary": 10})
    picks = [p.pick() for _ in range(100)]
    assert collections.Counter(picks) == {"stable": 90, "canary": 10}
    assert all(collections.Counter(picks[i:i + 10])["canary"] == 1 for i in range(0, 100, 10))  # interleaved


@pytest.mark.parametrize("weights", [[1], [5, 1, 1], [90, 10], [1, 2, 7], [3, 0, 3], [100, 1, 10, 1000]])
def test_swrr_equals_reference(weights):
    p = WeightedPicker(weights)
    n = 2 * sum(weights) + 7
    assert [p.pick() for _ in range(n)] == ref_swrr(weights, n)


def test_weight_change_in_place_keeps_state():
    p = WeightedPicker({"a": 90, "b": 10})
    cur = [0, 0]
    first = [p.pick() for _ in range(7)]
    assert first == [["a", "b"][i] for i in ref_swrr([90, 10], 7, cur)]
    p.set_weights({"a": 50, "b": 50})
    assert p.weights == {"a": 50, "b": 50}
    after = [p.pick() for _ in range(100)]
    assert after == [["a", "b"][i] for i in ref_swrr([50, 50], 100, cur)]  # continues from the same state
    assert collections.Counter(after) == {"a": 50, "b": 50}
    p.set_weight("b", 0)
    assert {p.pick() for _ in range(20)} == {"a"}


def test_bad_weights_are_refused_and_change_nothing():
    p = WeightedPicker({"a": 1, "b": 1})
    for bad in ({"a": 1}, {"a": 1, "b": -1}, {"a": 0, "b": 0}, [1, 1, 1], {"a": 1, "b": 1.5}):
        with pytest.raises(ValueError):
            p.set_weights(bad)
    assert p.weights == {"a": 1, "b": 1}
    with pytest.raises(ValueError):
        WeightedPicker([])
    with pytest.raises(KeyError):
        p.mark("zzz", False)
    with pytest.raises(ValueError):
        RingHashPicker({"a": 0, "b": 1})


def test_unhealthy_endpoints_are_avoided_until_all_are():
    p = WeightedPicker({"a": 1, "b": 1, "c": 1})
    p.mark("b", False)
    assert {p.pick() for _ in range(30)} == {"a", "c"}
    p.mark("a", False)
    p.mark("c", False)
    assert {p.pick() for _ in range(30)} == {"a", "b", "c"}  # panic: every endpoint is a candidate
    for k in "abc":
        p.mark(k, True)
    assert {p.pick() for _ in range(30)} == {"a", "b", "c"}


def test_ring_hash_is_stable():
    # Envoy's ring scales points to the total weight (min_ring_size); with a
    # weight-1 endpoint and a small minimum each endpoint gets exactly its
    # weight in points, so removing one leaves every other point in place.
    endpoints = {f"10.0.0.{i}:8080": 200 for i in range(1, 6)} | {"10.0.0.9:8080": 1}
    ring = RingHashPicker(endpoints, min_ring_size=16)
    keys = [f"user-{i}" for i in range(2000)]
    before = {k: ring.pick(k) for k in keys}
    assert all(ring.pick(k) == before[k] for k in keys[:200])  # same key, same endpoint
    assert set(before.values()) == set(endpoints)  # and every endpoint gets keys
    again = RingHashPicker(endpoints, min_ring_size=16)  # the ring is a function of the endpoints only
    assert all(again.pick(k) == before[k] for k in keys)
    gone = "10.0.0.3:8080"
    smaller = RingHashPicker({e: w for e, w in endpoints.items() if e != gone}, min_ring_size=16)
    moved = [k for k in keys if before[k] != gone and smaller.pick(k) != before[k]]
    assert not moved  # only the removed endpoint's keys move
    assert ring.pick(key_hash("user-7")) == before["user-7"]  # an int is the hash itself
    ring.mark(before["user-7"], False)
    assert ring.pick("user-7") != before["user-7"]  # the next point on the ring


def test_ring_respects_weights():
    ring = RingHashPicker({"heavy": 3, "light": 1}, min_ring_size=4096)
    share = collections.Counter(ring.pick(f"k{i}") for i in range(20000))
    assert 0.65 < share["heavy"] / 20000 < 0.85


def test_least_request_avoids_busy_endpoints():
    p = LeastRequestPicker({"a": 1, "b": 1}, seed=7)
    first = p.pick()
    other = "b" if first == "a" else "a"
    assert p.active(first) == 1
    # with `first` busy, power of two choices never prefers it when it draws both
    picks = [p.pick() for _ in range(50)]
    assert picks.count(other) > picks.count(first)
    for k in picks + [first]:
        p.done(k)
    assert p.active("a") == p.active("b") == 0


def test_random_is_seeded_and_weighted():
    a = RandomPicker({"x": 9, "y": 1}, seed=42)
    b = RandomPicker({"x": 9, "y": 1}, seed=42)
    sa, sb = [a.pick() for _ in range(1000)], [b.pick() for _ in range(1000)]
    assert sa == sb
    assert 800 < sa.count("x") < 980


def test_ring_hash_picks_as_the_proxy(engine_factory, backend_factory):
    """A RING_HASH cluster hashing on a header, in a real Engine, and a
    RingHashPicker over the same endpoints ("ip:port", as the proxy names
    them): every key lands on the same endpoint."""
    from support import http as h

    backends = [backend_factory(f"b{i}") for i in range(3)]
    route = h.route("/", "ring", route={"hash_policy": [{"header": {"header_name": "x-user"}}]})
    config = h.simple([b.port for b in backends], routes=[route], cluster="ring",
                      cluster_kw={"lb_policy": "RING_HASH"})
    engine = engine_factory(concurrency=1, config=config)
    port = engine.listener_port("http")
    ring = RingHashPicker({f"127.0.0.1:{b.port}": 1 for b in backends})
    by_port = {f"127.0.0.1:{b.port}": b.name for b in backends}
    users = [f"user-{i}" for i in range(30)]
    proxy = [h.request(port, "GET", "/", headers=[("x-user", u)]).header("x-backend") for u in users]
    assert proxy == [by_port[ring.pick(u)] for u in users]
    assert len(set(proxy)) == 3

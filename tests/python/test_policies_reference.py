"""The core's balancing and retry policies against small Python references
(STYLE.md: where a policy exists both in C and as a simple reference, one
parametrized test runs both). The references are written from the specs
(nginx's smooth weighted round robin, Envoy's jittered exponential back-off,
xorshift64*), not from the C code."""
import pytest

from meshcore import _core
from meshcore.balance import WeightedPicker

MASK = (1 << 64) - 1


def xorshift64star(state):
    x = state
    x ^= x >> 12
    x ^= (x << 25) & MASK
    x ^= x >> 27
    return x, (x * 0x2545F4914F6CDD1D) & MASK


def below(value, n):
    """Lemire's multiply-shift: uniform in [0, n) from a 64-bit value."""
    return (value * n) >> 64


def ref_backoff(state, base, cap, n):
    """Envoy: uniform in [0, min(cap, base * (2^n - 1)))."""
    upper = min(cap, base * ((1 << n) - 1))
    if upper == 0:
        return state, 0
    state, v = xorshift64star(state)
    return state, below(v, upper)


def ref_swrr(weights, picks):
    """nginx's smooth weighted round robin."""
    cur = [0] * len(weights)
    total = sum(weights)
    out = []
    for _ in range(picks):
        best = None
        for i, w in enumerate(weights):
            cur[i] += w
            if best is None or cur[i] > cur[best]:
                best = i
        cur[best] -= total
        out.append(best)
    return out


@pytest.mark.parametrize("seed", [1, 42, 0xDEADBEEF, MASK])
def test_prng_matches_reference(seed):
    state, expected = seed, []
    for _ in range(50):
        state, v = xorshift64star(state)
        expected.append(v)
    assert _core.rand_sequence(seed, 50) == expected


@pytest.mark.parametrize("base_ms,max_ms", [(25, 250), (10, 1000), (100, 150), (1, 1)])
@pytest.mark.parametrize("seed", [7, 123456789])
def test_retry_backoff_matches_reference(seed, base_ms, max_ms):
    base, cap = base_ms * 1_000_000, max_ms * 1_000_000
    retries = [1, 2, 3, 4, 5, 6, 1, 2, 10, 40]
    state, expected = seed, []
    for n in retries:
        state, v = ref_backoff(state, base, cap, n)
        expected.append(v)
    got = _core.retry_backoff_sequence(seed, base, cap, retries)
    assert got == expected
    for n, v in zip(retries, got, strict=True):
        assert 0 <= v < min(cap, base * ((1 << n) - 1)) or v == 0


@pytest.mark.parametrize("weights", [[1], [1, 1], [5, 1, 1], [90, 10], [1, 2, 7], [3, 0, 3], [100, 1, 10, 1000]])
def test_swrr_matches_reference(weights):
    picks = 2 * sum(weights) + 7
    p = WeightedPicker(weights)
    assert [p.pick() for _ in range(picks)] == ref_swrr(weights, picks)


def test_swrr_90_10_is_exact_over_10000():
    p = WeightedPicker([90, 10])
    seq = [p.pick() for _ in range(10_000)]
    assert seq.count(0) == 9000 and seq.count(1) == 1000

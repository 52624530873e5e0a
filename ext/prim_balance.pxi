# Load balancers for embedders (meshcore.balance): one cluster's worth of the
# proxy's balancing state over route/picker.c (every policy, the ring built
# as for a snapshot) through meshcore/primitives.h. A picker hands back the
# keys it was built with; weights change in place, endpoints can be marked
# unhealthy (avoided while a healthy one is left, as the proxy avoids tried
# and ejected hosts).

import os as _os

_POLICY = {"round_robin": MC_LB_ROUND_ROBIN, "least_request": MC_LB_LEAST_REQUEST, "random": MC_LB_RANDOM,
           "ring_hash": MC_LB_RING_HASH}


cdef uint32_t _weight(w) except? 0:
    if not isinstance(w, int) or isinstance(w, bool) or w < 0 or w > 0xFFFFFFFF:
        raise ValueError(f"a weight is an int in [0, 4294967295], not {w!r}")
    return w


cdef class _Picker:
    """What every picker shares: keys, weights, health marks."""
    cdef mc_prim_picker_t *p
    cdef readonly tuple keys
    cdef dict _index
    cdef list _weights
    cdef uint32_t n

    def __dealloc__(self):
        mc_prim_picker_free(self.p)

    cdef _build(self, str policy, weights, uint32_t ring_min, uint32_t ring_max, seed):
        """weights: a mapping key -> weight, or a sequence of weights (keys 0..n-1)."""
        cdef char err[ERRLEN]
        cdef _Arena a = _Arena()
        pairs = list(weights.items()) if hasattr(weights, "items") else list(enumerate(weights))
        self.n = len(pairs)
        self.keys = tuple(k for k, _ in pairs)
        self._index = {k: i for i, k in enumerate(self.keys)}
        if len(self._index) != self.n:
            raise ValueError("keys must be distinct")
        cdef uint32_t *w = <uint32_t *>a.alloc(self.n, sizeof(uint32_t))
        cdef const char **names = <const char **>a.alloc(self.n, sizeof(char *))
        for i, (k, weight) in enumerate(pairs):
            w[i] = _weight(weight)
            names[i] = a.s(str(k))
        if seed is None:
            seed = int.from_bytes(_os.urandom(8), "little")
        err[0] = 0
        self.p = mc_prim_picker_new(_POLICY[policy], self.n, w, names, ring_min, ring_max, seed, err, ERRLEN)
        if self.p == NULL:
            raise ValueError(err.decode())
        self._weights = [w[i] for i in range(self.n)]

    cdef uint32_t _i(self, key) except? 0xFFFFFFFF:
        try:
            return self._index[key]
        except (KeyError, TypeError):
            raise KeyError(f"no endpoint {key!r} in this picker") from None

    def __len__(self):
        return self.n

    def set_weights(self, weights):
        """New weights for the same keys (a mapping, or a sequence in key
        order); the balancing state is kept. ValueError for a bad set (then
        nothing changes)."""
        cdef char err[ERRLEN]
        cdef _Arena a = _Arena()
        cdef uint32_t *w = <uint32_t *>a.alloc(self.n, sizeof(uint32_t))
        if hasattr(weights, "items"):
            if set(weights) != set(self.keys):
                raise ValueError("set_weights needs a weight for every key and no other")
            for k, weight in weights.items():
                w[self._index[k]] = _weight(weight)
        else:
            weights = list(weights)
            if len(weights) != self.n:
                raise ValueError(f"set_weights needs {self.n} weights, got {len(weights)}")
            for i, weight in enumerate(weights):
                w[i] = _weight(weight)
        err[0] = 0
        if mc_prim_picker_set_weights(self.p, w, err, ERRLEN) < 0:
            raise ValueError(err.decode())
        self._weights = [w[i] for i in range(self.n)]

    def set_weight(self, key, weight):
        """One endpoint's weight, the others kept."""
        w = list(self._weights)
        w[self._i(key)] = weight
        self.set_weights(w)

    @property
    def weights(self):
        """{key: weight}, as the picker uses them."""
        return dict(zip(self.keys, self._weights))

    def mark(self, key, bint healthy):
        """Marks an endpoint healthy or not: an unhealthy one is picked only
        when every endpoint is unhealthy (the proxy's panic)."""
        mc_prim_picker_set_healthy(self.p, self._i(key), healthy)


cdef class WeightedPicker(_Picker):
    """Smooth weighted round robin (nginx's), the proxy's choice among
    weighted clusters and its default endpoint policy: deterministic and
    interleaved (weights 90/10 give exactly 9 and 1 in every 10 picks)."""

    def __init__(self, weights):
        self._build("round_robin", weights, 0, 0, 0)

    def pick(self):
        return self.keys[mc_prim_picker_pick(self.p, 0, 0)]


cdef class RandomPicker(_Picker):
    """Weighted random with the proxy's PRNG (xorshift64*); seed for a
    reproducible sequence, else from os.urandom."""

    def __init__(self, weights, *, seed=None):
        self._build("random", weights, 0, 0, seed)

    def pick(self):
        return self.keys[mc_prim_picker_pick(self.p, 0, 0)]


cdef class LeastRequestPicker(_Picker):
    """Envoy's least request: equal weights, the fewer active of two random
    choices; unequal weights, weight / (active + 1) by smooth WRR. pick()
    counts a request on its endpoint; done(key) ends it."""

    def __init__(self, weights, *, seed=None):
        self._build("least_request", weights, 0, 0, seed)

    def pick(self):
        cdef uint32_t i = mc_prim_picker_pick(self.p, 0, 0)
        mc_prim_picker_add_active(self.p, i, 1)
        return self.keys[i]

    def done(self, key):
        mc_prim_picker_add_active(self.p, self._i(key), -1)

    def active(self, key):
        return mc_prim_picker_active(self.p, self._i(key))


cdef class RingHashPicker(_Picker):
    """Envoy's ring hash: each key's endpoint stays put as endpoints come
    and go (only the keys of a removed one move). Ring points are hashed
    from str(key) as the proxy hashes "ip:port"; pick(key) hashes a str or
    bytes key with the proxy's hash policy (xxHash64), an int is used as the
    hash itself, None picks at random (as the proxy without a key)."""

    def __init__(self, weights, *, min_ring_size=1024, max_ring_size=8 * 1024 * 1024, seed=None):
        self._build("ring_hash", weights, min_ring_size, max_ring_size, seed)

    def pick(self, key=None):
        cdef bytes b
        cdef uint64_t h
        if key is None:
            return self.keys[mc_prim_picker_pick(self.p, 0, 0)]
        if isinstance(key, int):
            h = <uint64_t>(key & 0xFFFFFFFFFFFFFFFF)
        else:
            b = key.encode() if isinstance(key, str) else bytes(key)
            h = mc_prim_hash(b, len(b))
        return self.keys[mc_prim_picker_pick(self.p, 1, h)]


def key_hash(key):
    """The hash the proxy's hash policies give a key (xxHash64, seed 0)."""
    cdef bytes b = key.encode() if isinstance(key, str) else bytes(key)
    return mc_prim_hash(b, len(b))

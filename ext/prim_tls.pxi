# TLS peer identity for embedders (meshcore.tls): the proxy's rule
# (net/tls.c mc_tls_check_leaf: exactly one URI SAN, matched against the
# accepted SPIFFE IDs) applied to a certificate Python's ssl module verified.

from meshcore.errors import TLSPeerError


cdef class PeerPolicy:
    """Which peers a TLS context accepts. ids: SPIFFE IDs accepted exactly;
    trust_domain: any ID in it ("spiffe://<trust_domain>/..."). Neither:
    any identity (the one-URI-SAN rule still holds)."""
    cdef mc_prim_peer_policy_t *p
    cdef readonly tuple ids
    cdef readonly str trust_domain
    cdef dict _verdicts  # DER -> SPIFFE ID or the refusal: decoding a certificate costs OpenSSL 3 ~0.3 ms

    def __dealloc__(self):
        mc_prim_peer_policy_free(self.p)

    def __init__(self, ids=(), trust_domain=None):
        cdef char err[ERRLEN]
        cdef _Arena a = _Arena()
        self.ids = tuple(ids)
        self.trust_domain = trust_domain
        values = list(self.ids)
        kinds = [MC_STR_EXACT] * len(values)
        if trust_domain is not None:
            if not trust_domain or "/" in trust_domain:
                raise ValueError(f"not a trust domain: {trust_domain!r}")
            prefix = f"spiffe://{trust_domain}/"
            outside = [i for i in self.ids if not i.startswith(prefix)]
            if outside:
                raise ValueError(f"accepted IDs outside trust domain {trust_domain!r}: {outside}")
            if not values:
                values, kinds = [prefix], [MC_STR_PREFIX]
        for i in self.ids:
            if not i.startswith("spiffe://"):
                raise ValueError(f"not a SPIFFE ID: {i!r}")
        cdef mc_sb_matcher_t *m = <mc_sb_matcher_t *>a.alloc(len(values), sizeof(mc_sb_matcher_t))
        for k, (v, kind) in enumerate(zip(values, kinds)):
            m[k].kind = kind
            m[k].value = a.s(v)
        err[0] = 0
        self.p = mc_prim_peer_policy_new(m, len(values), err, ERRLEN)
        if self.p == NULL:
            raise ValueError(err.decode())

    def check(self, der):
        """The peer's SPIFFE ID ("" when its certificate has no URI SAN and
        no identity is required); TLSPeerError when the proxy would refuse
        it. der: the peer's leaf (SSLSocket.getpeercert(binary_form=True)),
        None when it sent none."""
        cdef char uri[1024]
        cdef const char *why = NULL
        if der is None:
            raise TLSPeerError("peer presented no certificate")
        cdef bytes d = bytes(der)
        if self._verdicts is None:
            self._verdicts = {}
        verdict = self._verdicts.get(d)
        if verdict is None:
            rc = mc_prim_peer_check(self.p, d, len(d), uri, sizeof(uri), &why)
            peer = uri.decode(errors="replace")
            verdict = peer if rc == 1 else (why.decode(), peer or None)
            if len(self._verdicts) >= 1024:  # a bound: peers are few, certificates rotate
                self._verdicts.clear()
            self._verdicts[d] = verdict
        if type(verdict) is tuple:
            raise TLSPeerError(*verdict)
        return verdict

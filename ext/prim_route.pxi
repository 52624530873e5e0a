# Routing for embedders (meshcore.route.Router): a RouteConfiguration
# compiled once by the proxy's own compile path (_compile_hcm, as for a
# listener's http_connection_manager) and matched by route/router.c through
# meshcore/primitives.h. Per call: no protobuf, no allocation in C; the
# Route descriptions are built once, a match returns one of them.

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdlib cimport malloc, realloc


cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL


cdef inline const char *_utf8(object s, size_t *n) except NULL:
    """A str's (cached) UTF-8 or a bytes' own buffer, no copy; s keeps it alive."""
    cdef Py_ssize_t k
    cdef const char *p
    if type(s) is str:
        p = PyUnicode_AsUTF8AndSize(s, &k)
        n[0] = k
        return p
    if type(s) is bytes:
        n[0] = PyBytes_GET_SIZE(s)
        return PyBytes_AS_STRING(s)
    raise TypeError(f"expected str or bytes, not {type(s).__name__}")

from meshcore.errors import RouteConfigError

_ACTIONS = {MC_ACTION_ROUTE: "route", MC_ACTION_REDIRECT: "redirect", MC_ACTION_DIRECT: "direct_response"}


cdef inline str _str(const char *p):
    return p.decode("utf-8", "replace") if p != NULL else None


cdef class Route:
    """One route of the table, as compiled. ``action`` is "route",
    "redirect" or "direct_response"; ``clusters`` the (name, weight) pairs
    of a route action (one pair for a single cluster); the redirect_* and
    direct_* fields describe the other two actions (None / 0 when unset)."""
    cdef readonly str name, virtual_host, action
    cdef readonly tuple clusters
    cdef readonly str redirect_scheme, redirect_host, redirect_path, redirect_prefix
    cdef readonly int redirect_port, redirect_code, direct_status
    cdef readonly bint strip_query
    cdef readonly bytes direct_body
    cdef uint32_t n_clusters
    cdef const uint32_t *weights  # the compiled route's, alive with the router
    cdef uint64_t total
    cdef int64_t *swrr            # this route's split state (a slice of the router's)
    cdef tuple names

    def __repr__(self):
        return f"<Route {self.name!r} of {self.virtual_host!r}: {self.action} {list(self.clusters)}>"


@cython.freelist(8)
cdef class RouteMatch:
    """A match: ``route`` (the Route) and ``cluster``, the cluster this
    request goes to (the weighted choice made), None for a redirect or a
    direct response."""
    cdef readonly Route route
    cdef readonly str cluster

    def __repr__(self):
        return f"<RouteMatch {self.route.name!r} -> {self.cluster!r}>"


cdef class Router:
    """A compiled route table: match(method, authority, path, headers)."""
    cdef SnapshotBuilder _b
    cdef mc_prim_router_t *_r
    cdef list _routes          # flat, in configuration order
    cdef list _vbase           # first flat index of each virtual host
    cdef int64_t *_swrr
    cdef mc_prim_field_t *_fields
    cdef size_t _cap
    cdef list _keep

    def __cinit__(self):
        self._routes = []
        self._vbase = []
        self._keep = []

    def __dealloc__(self):
        mc_prim_router_free(self._r)
        free(self._swrr)
        free(self._fields)

    def __init__(self, route_config):
        """route_config: an envoy.config.route.v3.RouteConfiguration already
        checked against meshcore's subset (meshcore.route.Router checks it
        first). RouteConfigError for one the core cannot compile."""
        from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

        cdef char err[ERRLEN]
        cdef mc_prim_route_info_t info
        cdef size_t n_split = 0
        cdef Route r
        self._b = SnapshotBuilder()
        li = self._b.add_listener("router", "127.0.0.1", 0, "router", 0)
        hcm = hcm_pb2.HttpConnectionManager(stat_prefix="router")
        hcm.route_config.CopyFrom(route_config)
        try:
            _compile_hcm(self._b, li, hcm, 0)
        except CoreError as e:
            raise RouteConfigError(f"route configuration {route_config.name!r}: {e}") from None
        err[0] = 0
        self._r = mc_prim_router_new(self._b.b, li, err, ERRLEN)
        if self._r == NULL:
            raise RouteConfigError(err.decode())
        for v in range(mc_prim_router_vhosts(self._r)):
            self._vbase.append(len(self._routes))
            vname = _str(mc_prim_router_vhost_name(self._r, v))
            for k in range(mc_prim_router_routes(self._r, v)):
                mc_prim_router_route_info(self._r, v, k, &info)
                r = Route.__new__(Route)
                r.name, r.virtual_host, r.action = _str(info.name), vname, _ACTIONS[info.action]
                r.names = tuple(_str(info.clusters[i]) for i in range(info.n_clusters))
                r.clusters = tuple((r.names[i], info.weights[i]) for i in range(info.n_clusters))
                r.n_clusters, r.weights = info.n_clusters, info.weights
                r.total = sum(info.weights[i] for i in range(info.n_clusters))
                r.redirect_scheme, r.redirect_host = _str(info.redirect_scheme), _str(info.redirect_host)
                r.redirect_path, r.redirect_prefix = _str(info.redirect_path), _str(info.redirect_prefix)
                r.redirect_port, r.redirect_code = info.redirect_port, info.redirect_code
                r.strip_query = info.strip_query
                r.direct_status = info.direct_status
                r.direct_body = info.direct_body[:info.direct_body_len] if info.direct_body != NULL else None
                if info.n_clusters > 1:
                    n_split += info.n_clusters
                self._routes.append(r)
        self._swrr = <int64_t *>calloc(n_split or 1, sizeof(int64_t))
        if self._swrr == NULL:
            raise MemoryError()
        n_split = 0
        for r in self._routes:
            if r.n_clusters > 1:
                r.swrr = self._swrr + n_split
                n_split += r.n_clusters
        self._cap = 16
        self._fields = <mc_prim_field_t *>malloc(self._cap * sizeof(mc_prim_field_t))
        if self._fields == NULL:
            raise MemoryError()

    @property
    def routes(self):
        """Every Route, in configuration order."""
        return list(self._routes)

    cdef int _load_headers(self, headers) except -1:
        """headers (a mapping or (name, value) pairs) into self._fields; the
        objects stay referenced in self._keep until the next call."""
        cdef Py_ssize_t n = len(headers), i = 0
        cdef mc_prim_field_t *grown
        if <size_t>n > self._cap:
            grown = <mc_prim_field_t *>realloc(self._fields, n * sizeof(mc_prim_field_t))
            if grown == NULL:
                raise MemoryError()
            self._fields, self._cap = grown, n
        keep = self._keep
        del keep[:]
        items = headers.items() if isinstance(headers, dict) else headers
        for name, value in items:
            if <size_t>i == self._cap:  # an iterable longer than its len() said
                raise ValueError("headers changed size while being read")
            keep.append(name)
            keep.append(value)
            self._fields[i].name = _utf8(name, &self._fields[i].name_len)
            self._fields[i].value = _utf8(value, &self._fields[i].value_len)
            i += 1
        return <int>i

    def match(self, method, authority, path, headers=None, hash=None):
        """The RouteMatch for a request, or None (the proxy answers 404).
        method, authority, path (with its query): str or bytes; headers: a
        mapping or (name, value) pairs, names in any case. For a weighted
        route the cluster is chosen as the proxy's worker chooses it (smooth
        weighted round robin, state kept per route in this Router), or, given
        hash (an int), by hash % total weight over the clusters in order."""
        cdef size_t ml, al, pl
        cdef const char *m = _utf8(method, &ml)
        cdef const char *a = _utf8(authority, &al)
        cdef const char *p = _utf8(path, &pl)
        cdef int nh = self._load_headers(headers) if headers else 0
        cdef int v, k
        cdef Route r
        cdef RouteMatch out
        cdef uint32_t i
        cdef uint64_t x
        if mc_prim_router_match(self._r, m, ml, a, al, p, pl, self._fields, nh, &v, &k) < 0:
            return None
        r = <Route>self._routes[<int>self._vbase[v] + k]
        out = RouteMatch.__new__(RouteMatch)
        out.route = r
        if r.n_clusters == 1:
            out.cluster = <str>r.names[0]
        elif r.n_clusters > 1:
            if hash is None or r.total == 0:
                i = mc_lb_swrr(r.swrr, r.weights, r.n_clusters, _NO_SKIP)
            else:
                x = <uint64_t>(hash % r.total)
                i = 0
                while x >= r.weights[i]:
                    x -= r.weights[i]
                    i += 1
            out.cluster = <str>r.names[i]
        return out


cdef mc_lb_skip_t _NO_SKIP
_NO_SKIP.words = NULL
_NO_SKIP.n_words = 0

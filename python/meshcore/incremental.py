"""Incremental config changes: new weights for weighted routes, new endpoints
for clusters, without a full apply (Engine.set_weights, Engine.set_endpoints).

A change is checked exactly as a full apply checks it: the changed route or
cluster goes through the same schema walk (meshcore.config), so a bad value
is refused with the resource and field named and nothing changes. It then
goes to the core's fast paths (include/meshcore/engine.h):

    weights    mc_engine_set_route_weights: the route's weight array swapped in
               place (read-copy-update, engine/engine_incremental.c)
    endpoints  mc_engine_set_endpoints: a new snapshot that shares everything
               but the changed clusters (worker/snapshot_derive.c)

The engine's Bootstrap (Engine.bootstrap, /config_dump) follows: `Changes`
keeps what changed since the last full apply and `Changes.bootstrap()`
writes it into a copy of the applied Bootstrap when it is asked for, so a
change costs no copy of a large config, and the caller's message is never
modified.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from meshcore import xds_types
from meshcore.config.bootstrap import validate_resource
from meshcore.config.rules import Violation
from meshcore.config.walk import walk
from meshcore.errors import ConfigError


@dataclass
class RouteRef:
    """Where a route is: in the core (listener, chain, vhost, route) and in the plan."""

    listener: str
    listener_index: int
    chain: int
    filter: int  # the HCM's index among the chain's filters
    vhost: int
    route: int
    vhost_name: str
    message: Any  # the Route, inside the chain's plan HCM (the engine's own copy)

    def at(self) -> str:
        return (f"filter_chains[{self.chain}].filters[{self.filter}].typed_config.route_config."
                f"virtual_hosts[{self.vhost}].routes[{self.route}]")


class Changes:
    """The routes and clusters of the running config, and what changed since its apply."""

    def __init__(self, bootstrap: Any, plan: Any, source: str, reads_files: bool = False) -> None:
        self.applied = bootstrap
        self.source = source
        self.reads_files = reads_files  # its compile read certificate files (no diff against it then)
        self._plan = plan
        self._routes: dict[str, list[RouteRef]] | None = None  # by route name, built on first use
        # by (listener index, chain, vhost, route), built with _routes
        self._at: dict[tuple[int, int, int, int], RouteRef] = {}
        self._clusters = {c.name: i for i, c in enumerate(bootstrap.static_resources.clusters)}
        self._cluster_msgs: dict[int, Any] = {}  # cluster index -> its Cluster with new endpoints
        self._dirty_chains: set[tuple[int, int]] = set()  # (listener index, chain) whose HCM changed
        self._merged: Any = None  # the Bootstrap with the changes, once asked for
        self._lock = threading.Lock()  # bootstrap() runs on admin threads while changes come in

    # -- the Bootstrap with the changes ------------------------------------------------------

    def bootstrap(self) -> Any:
        with self._lock:
            return self._merge()

    def _merge(self) -> Any:
        if self._merged is None:
            if not self._cluster_msgs and not self._dirty_chains:
                return self.applied
            b = type(self.applied)()
            b.CopyFrom(self.applied)
            for i, cluster in self._cluster_msgs.items():
                b.static_resources.clusters[i].CopyFrom(cluster)
            by_key = self._plan.by_key()
            for li, k in self._dirty_chains:
                listener = b.static_resources.listeners[li]
                for f in listener.filter_chains[k].filters:
                    if xds_types.is_a(f.typed_config, xds_types.HCM):
                        f.typed_config.Pack(by_key[(listener.name, k)].hcm)
            self._merged = b
        return self._merged

    # -- weights -------------------------------------------------------------------------------

    def _route_index(self) -> dict[str, list[RouteRef]]:
        if self._routes is None:
            self._routes = {}
            listeners = self.applied.static_resources.listeners
            positions = {lst.name: i for i, lst in enumerate(listeners)}
            for chain in self._plan.chains:
                hcm = chain.hcm
                if hcm is None:
                    continue
                filters = listeners[positions[chain.listener]].filter_chains[chain.index].filters
                fi = next(j for j, f in enumerate(filters) if xds_types.is_a(f.typed_config, xds_types.HCM))
                for vi, vh in enumerate(hcm.route_config.virtual_hosts):
                    for ri, r in enumerate(vh.routes):
                        ref = RouteRef(chain.listener, positions[chain.listener], chain.index, fi, vi, ri, vh.name, r)
                        self._at[(ref.listener_index, chain.index, vi, ri)] = ref
                        if r.name:
                            self._routes.setdefault(r.name, []).append(ref)
        return self._routes

    def weights(self, route: str, weights: Mapping[str, int], vhost: str | None,
                listener: str | None) -> list[tuple[RouteRef, list[int]]]:
        """[(RouteRef, new weights in the route's cluster order)] for the core, after
        checking them as an apply would; ConfigError (nothing changed) otherwise."""
        refs = [r for r in self._route_index().get(route, ())
                if (vhost is None or r.vhost_name == vhost) and (listener is None or r.listener == listener)]
        where = "".join(f' in {k} "{v}"' for k, v in (("virtual host", vhost), ("listener", listener)) if v)
        if not refs:
            raise ConfigError(f'{self.source}: no route named "{route}"{where} in the running config')
        wanted = dict(weights)
        out = []
        for ref in refs:
            action = ref.message.route
            if action.WhichOneof("cluster_specifier") != "weighted_clusters":
                raise ConfigError(f'{self.source}: listener "{ref.listener}": {ref.at()}: '
                                  f'route "{route}" has no weighted_clusters')
            names = [wc.name for wc in action.weighted_clusters.clusters]
            if set(names) != set(wanted) or len(names) != len(wanted):
                raise ConfigError(f'{self.source}: listener "{ref.listener}": route "{route}": splits between '
                                  f'{", ".join(names)}; the weights name {", ".join(map(str, wanted))}')
            for wc in action.weighted_clusters.clusters:
                value = wanted[wc.name]
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
                    raise ConfigError(f'{self.source}: listener "{ref.listener}": route "{route}": weight of '
                                      f'"{wc.name}": {value!r} is not an integer in 0..4294967295')
            values = [wanted[n] for n in names]
            self._check_weights(ref, values)
            out.append((ref, values))
        return out

    def _check_weights(self, ref: RouteRef, values: list[int]) -> None:
        """The route's weighted_clusters with these weights, through the walk a full apply runs."""
        given = type(ref.message.route.weighted_clusters)()
        given.CopyFrom(ref.message.route.weighted_clusters)
        for wc, value in zip(given.clusters, values, strict=True):
            wc.weight.value = value
        try:
            walk(given)  # the same checks as a full apply (weights >= 1, the sum)
        except Violation as v:
            raise ConfigError(f'{self.source}: listener "{ref.listener}": {ref.at()}.route.weighted_clusters'
                              f'{"." + v.path if v.path else ""}: {v.text}') from None

    def weights_applied(self, changes: list[tuple[RouteRef, list[int]]]) -> None:
        with self._lock:
            for ref, values in changes:
                for wc, value in zip(ref.message.route.weighted_clusters.clusters, values, strict=True):
                    wc.weight.value = value
                self._dirty_chains.add((ref.listener_index, ref.chain))
            self._merged = None

    # -- endpoints ------------------------------------------------------------------------------

    def endpoints(self, cluster: str, endpoints: Any) -> tuple[Any, tuple[int, Any]]:
        """(cluster, [(ip, port, weight)]) for the core and the checked Cluster message;
        ConfigError (nothing changed) otherwise."""
        i = self._clusters.get(cluster)
        if i is None:
            raise ConfigError(f'{self.source}: cluster "{cluster}": not in the running config')
        current = self._cluster_msgs.get(i) or self.applied.static_resources.clusters[i]
        trial = type(current)()
        trial.CopyFrom(current)
        cla = trial.load_assignment
        if not cla.cluster_name:
            cla.cluster_name = cluster
        del cla.endpoints[:]
        if hasattr(endpoints, "DESCRIPTOR"):  # a ClusterLoadAssignment
            cla.endpoints.extend(endpoints.endpoints)
        else:
            lle = cla.endpoints.add()
            for e in endpoints:
                ip, port, *weight = e
                lbe = lle.lb_endpoints.add()
                sa = lbe.endpoint.address.socket_address
                if not isinstance(port, int) or not 0 <= port < 65536:
                    raise ConfigError(f'{self.source}: cluster "{cluster}": endpoint {ip!r}: port {port!r} '
                                      "is not an integer in 0..65535")
                sa.address, sa.port_value = str(ip), port
                if weight:
                    lbe.load_balancing_weight.value = weight[0]
        validate_resource(trial, self.source, "cluster", i)  # errors as a full apply's
        flat = []
        for locality in cla.endpoints:
            for lbe in locality.lb_endpoints:
                sa = lbe.endpoint.address.socket_address
                w = lbe.load_balancing_weight.value if lbe.HasField("load_balancing_weight") else 1
                flat.append((sa.address, sa.port_value, w))
        return (cluster, flat), (i, trial)

    def endpoints_applied(self, messages: list[tuple[int, Any]]) -> None:
        with self._lock:
            for i, msg in messages:
                self._cluster_msgs[i] = msg
            self._merged = None

    # -- a whole new config that differs only in weights and endpoints --------------------------

    def diff(self, new: Any, source: str) -> tuple[list[tuple[RouteRef, list[int]]], list[Any]] | None:
        """For a full apply of `new`: ([(RouteRef, weights)], [cluster change as endpoints()
        returns it]) when it differs from the running config only in route weights and
        cluster endpoints (each checked as set_weights / set_endpoints check them), else
        None (the full path applies it)."""
        cur = self.bootstrap()
        a, b = cur.static_resources, new.static_resources
        if len(a.listeners) != len(b.listeners) or len(a.clusters) != len(b.clusters):
            return None
        if _rest(cur) != _rest(new):
            return None
        self.source, before = source, self.source
        try:
            endpoints = []
            for ca, cb in zip(a.clusters, b.clusters, strict=True):
                if ca.name != cb.name:
                    return None
                if ca.SerializeToString() == cb.SerializeToString():
                    continue
                if not _same_but(ca, cb, lambda c: c.load_assignment.ClearField("endpoints")):
                    return None
                endpoints.append(self.endpoints(cb.name, cb.load_assignment))
            weights = []
            for li, (la, lb) in enumerate(zip(a.listeners, b.listeners, strict=True)):
                if la.SerializeToString() == lb.SerializeToString():
                    continue
                found = self._weights_between(li, la, lb)
                if found is None:
                    return None
                weights += found
            return weights, endpoints
        finally:
            self.source = before

    def _weights_between(self, li: int, la: Any, lb: Any) -> list[tuple[RouteRef, list[int]]] | None:
        """[(RouteRef, weights)] when listener lb is la with other route weights, else None."""
        if len(la.filter_chains) != len(lb.filter_chains) or la.name != lb.name:
            return None
        self._route_index()
        out = []
        for k, (cha, chb) in enumerate(zip(la.filter_chains, lb.filter_chains, strict=True)):
            if cha == chb:
                continue
            if len(cha.filters) != len(chb.filters):
                return None
            for fa, fb in zip(cha.filters, chb.filters, strict=True):
                if fa == fb:
                    continue
                if not (xds_types.is_a(fa.typed_config, xds_types.HCM) and fa.name == fb.name
                        and fb.typed_config.type_url == fa.typed_config.type_url):
                    return None
                ha, hb = _unpack(fa.typed_config), _unpack(fb.typed_config)
                va, vb = ha.route_config.virtual_hosts, hb.route_config.virtual_hosts
                if len(va) != len(vb):
                    return None
                changed = []
                for vi, (xa, xb) in enumerate(zip(va, vb, strict=True)):
                    if len(xa.routes) != len(xb.routes):
                        return None
                    for ri, (ra, rb) in enumerate(zip(xa.routes, xb.routes, strict=True)):
                        if ra == rb:
                            continue
                        wa, wb = ra.route.weighted_clusters.clusters, rb.route.weighted_clusters.clusters
                        if not wa or [c.name for c in wa] != [c.name for c in wb]:
                            return None
                        changed.append((vi, ri, [c.weight.value for c in wb]))
                # Everything but those weights must be equal: put the old weights back and compare.
                for vi, ri, _ in changed:
                    old = va[vi].routes[ri].route.weighted_clusters.clusters
                    for wc, wold in zip(vb[vi].routes[ri].route.weighted_clusters.clusters, old, strict=True):
                        wc.weight.CopyFrom(wold.weight)
                if ha != hb:
                    return None
                for vi, ri, values in changed:
                    ref = self._at.get((li, k, vi, ri))
                    if ref is None:
                        return None
                    self._check_weights(ref, values)
                    out.append((ref, values))
        return out


def _rest(bootstrap: Any) -> bytes:
    """A Bootstrap without its listeners and clusters, serialized (for comparison)."""
    from meshcore.config.bootstrap import _copy_fields

    rest = type(bootstrap)()
    _copy_fields(bootstrap, rest, "static_resources")
    _copy_fields(bootstrap.static_resources, rest.static_resources, "listeners", "clusters")
    out: bytes = rest.SerializeToString(deterministic=True)
    return out


def _same_but(a: Any, b: Any, strip: Callable[[Any], object]) -> bool:
    """Whether messages a and b are equal once strip() has been applied to copies of both."""
    x, y = type(a)(), type(b)()
    x.CopyFrom(a)
    y.CopyFrom(b)
    strip(x)
    strip(y)
    return bool(x == y)


def _unpack(any_msg: Any) -> Any:
    return xds_types.unpack(any_msg)  # type: ignore[no-untyped-call]

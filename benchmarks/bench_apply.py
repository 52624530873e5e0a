#!/usr/bin/env python3
"""How long Engine.apply holds the caller, by config size; and the fast paths.

The config is what a mesh sidecar gets: N outbound clusters (STATIC, two
endpoints each, circuit breakers, outlier detection, Istio service metadata,
ISTIO_MUTUAL TLS through the `default`/`ROOTCA` SDS secrets with a SPIFFE ID
and SNI of their own), an inbound mTLS listener, and an outbound listener
whose route configuration holds R routes (10 per virtual host), each a 90/10
weighted split between two of the clusters. Certificates come from a fresh
meshcore CA. For N in --sizes (R = --routes), on a fresh engine (2 workers):

    first apply      the config applied to a new engine
    re-apply         the same Bootstrap again
    all changed      a config where every cluster and route differs (timeouts):
                     a whole validation and compile on a running engine
    weights (full)   apply() of the config with every route's weights changed
    endpoints (full) apply() of the config with one cluster's endpoints changed
    set_weights      Engine.set_weights on one route (in place)
    set_endpoints    Engine.set_endpoints on one cluster (a derived snapshot)

Figures are medians of --repeat runs, in ms, wall clock in this process;
for "all changed" the applying thread's CPU time is printed too (closer to
what an idle machine would show). The machine is shared and noisy: figures
move by 20-50% between runs (far more under load); compare within one run.
"n/a": the build has no such call (older builds).

    .venv/bin/python benchmarks/bench_apply.py                  # 2, 100, 1000
    .venv/bin/python benchmarks/bench_apply.py --sizes 1000 --repeat 9

Before/after: run the same file with another checkout's interpreter and
package, e.g. main's (the script imports whichever meshcore that python has):

    /work/main/.venv/bin/python benchmarks/bench_apply.py       # before
    .venv/bin/python benchmarks/bench_apply.py                  # after

The last such pair, with the figures, is in benchmarks/README.md ("Apply").

Targets (issue 11): 1,000 clusters + 1,000 routes apply in <= 100 ms; a
weights-only or endpoints-only change in <= 5 ms. Reported, never enforced.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time

UP = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
DOWN = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
TARGETS = {"apply_1000": 100.0, "incremental": 5.0}


def secrets() -> tuple:
    """The workload's `default` (key + chain) and `ROOTCA` (trust bundle) Secrets."""
    from meshcore import ca

    d = tempfile.mkdtemp(prefix="bench-apply-")
    authority = ca.CertificateAuthority.init(d + "/ca", "cluster.local", intermediate=False)
    key, chain = ca.issue_workload(authority, "bench", "bench")
    return ({"name": "default", "tls_certificate": {"certificate_chain": {"inline_string": chain.decode()},
                                                   "private_key": {"inline_string": key.decode()}}},
            {"name": "ROOTCA", "validation_context": {"trusted_ca": {
                "inline_string": authority.trust_bundle_pem.decode()}}})


def cluster_name(i: int) -> str:
    return f"outbound|9080|v1|svc-{i}.bench.svc.cluster.local"


def istio_mutual(i: int) -> dict:
    sans = [{"san_type": "URI", "matcher": {"exact": f"spiffe://cluster.local/ns/bench/sa/svc-{i}"}}]
    return {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": UP, "sni": f"outbound_.9080_.v1_.svc-{i}.bench.svc.cluster.local",
        "common_tls_context": {
            "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
            "tls_certificate_sds_secret_configs": [{"name": "default"}],
            "combined_validation_context": {"default_validation_context": {"match_typed_subject_alt_names": sans},
                                            "validation_context_sds_secret_config": {"name": "ROOTCA"}}}}}


def cluster(i: int, port_base: int = 9080, timeout: str = "10s") -> dict:
    host = f"svc-{i}.bench.svc.cluster.local"
    eps = [{"endpoint": {"address": {"socket_address": {
        "address": f"127.0.{1 + i // 200}.{i % 200 + 1}", "port_value": port_base + k}}}} for k in range(2)]
    return {"name": cluster_name(i), "type": "STATIC", "connect_timeout": timeout, "lb_policy": "ROUND_ROBIN",
            "circuit_breakers": {"thresholds": [{"max_connections": 4096, "max_requests": 4096}]},
            "outlier_detection": {"consecutive_5xx": 5, "interval": "10s", "base_ejection_time": "30s"},
            "metadata": {"filter_metadata": {"istio": {"services": [
                {"host": host, "name": f"svc-{i}", "namespace": "bench"}]}}},
            "load_assignment": {"cluster_name": cluster_name(i), "endpoints": [{"lb_endpoints": eps}]},
            "transport_socket": istio_mutual(i)}


def listener(name: str, direction: str, hcm: dict, transport_socket=None) -> dict:
    chain = {"filters": [{"name": "envoy.filters.network.http_connection_manager",
                          "typed_config": {"@type": HCM, "http_filters": [ROUTER], **hcm}}]}
    if transport_socket:
        chain["transport_socket"] = transport_socket
    return {"name": name, "traffic_direction": direction,
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}, "filter_chains": [chain]}


def config(n: int, routes: int, secret_docs, weight: int = 90, moved: int | None = None, timeout: int = 10) -> dict:
    """The bench config; weight: the first cluster's share of every split;
    moved: a cluster whose endpoints moved to other ports; timeout: every
    cluster's connect timeout and route's timeout (s), to change them all."""
    vhosts = []
    for v in range((routes + 9) // 10):
        rs = [{"name": f"r{k}", "match": {"prefix": f"/r{k}/"}, "route": {
            "timeout": f"{timeout}s", "weighted_clusters": {"clusters": [
                {"name": cluster_name(k % n), "weight": weight},
                {"name": cluster_name((k + 1) % n), "weight": 100 - weight}]}}}
              for k in range(v * 10, min(routes, v * 10 + 10))]
        vhosts.append({"name": f"vh{v}", "domains": [f"svc-{v}.bench.svc.cluster.local", f"svc-{v}"], "routes": rs})
    outbound = listener("outbound", "OUTBOUND", {"stat_prefix": "outbound_0.0.0.0_9080",
                                                 "route_config": {"name": "9080", "virtual_hosts": vhosts}})
    inbound_tls = {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": DOWN, "require_client_certificate": True, "common_tls_context": {
            "tls_certificate_sds_secret_configs": [{"name": "default"}],
            "combined_validation_context": {"default_validation_context": {},
                                            "validation_context_sds_secret_config": {"name": "ROOTCA"}}}}}
    inbound = listener("inbound", "INBOUND", {"stat_prefix": "inbound_0.0.0.0_9080", "route_config": {
        "name": "inbound|9080", "virtual_hosts": [{"name": "in", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "route": {"cluster": "inbound|9080||"}}]}]}}, inbound_tls)
    local = {"name": "inbound|9080||", "type": "STATIC", "connect_timeout": "1s", "load_assignment": {
        "cluster_name": "inbound|9080||", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 8080}}}}]}]}}
    clusters = [cluster(i, 7000 if i == moved else 9080, f"{timeout}s") for i in range(n)]
    return {"node": {"id": "sidecar~127.0.0.1~bench.bench~bench.svc.cluster.local", "cluster": "bench.bench",
                     "metadata": {"NAME": "bench", "NAMESPACE": "bench", "WORKLOAD_NAME": "bench",
                                  "LABELS": {"app": "bench"}}},
            "static_resources": {"listeners": [outbound, inbound], "clusters": clusters + [local],
                                 "secrets": list(secret_docs)}}


def message(doc: dict):
    from envoy.config.bootstrap.v3 import bootstrap_pb2
    from google.protobuf import json_format

    return json_format.ParseDict(doc, bootstrap_pb2.Bootstrap())


def ms(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def median_ms(fns) -> float:
    return statistics.median(ms(f) for f in fns)


def measure(n: int, routes: int, repeat: int, secret_docs) -> dict:
    import meshcore

    base = message(config(n, routes, secret_docs))
    weights = [message(config(n, routes, secret_docs, weight=w)) for w in (50, 90)]
    changed = [message(config(n, routes, secret_docs, timeout=t)) for t in (11, 10)]
    moved = [message(config(n, routes, secret_docs, moved=n // 2)), base]
    engine = meshcore.Engine(concurrency=2).start()
    try:
        out = {"clusters": n, "routes": routes, "first apply": ms(lambda: engine.apply(base))}
        out["re-apply"] = median_ms(lambda: engine.apply(base) for _ in range(repeat))
        cpu = time.thread_time()
        out["all changed"] = median_ms((lambda m=changed[i % 2]: engine.apply(m)) for i in range(repeat))
        out["all changed cpu"] = (time.thread_time() - cpu) * 1000 / repeat  # this thread's CPU, mean
        out["weights (full)"] = median_ms((lambda m=weights[i % 2]: engine.apply(m)) for i in range(repeat))
        out["endpoints (full)"] = median_ms((lambda m=moved[i % 2]: engine.apply(m)) for i in range(repeat))
        if hasattr(engine, "set_weights"):
            engine.apply(base)
            a, b = cluster_name(5 % n), cluster_name(6 % n)
            out["set_weights"] = median_ms(
                (lambda w=(50 if i % 2 else 90): engine.set_weights("r5", {a: w, b: 100 - w})) for i in range(repeat))
            c = cluster_name(n // 2)
            out["set_endpoints"] = median_ms(
                (lambda p=(7000 if i % 2 else 9080): engine.set_endpoints(c, [(f"127.0.9.{k}", p) for k in (1, 2)]))
                for i in range(repeat))
        else:
            out["set_weights"] = out["set_endpoints"] = None
    finally:
        engine.stop()
    return out


COLUMNS = ("first apply", "re-apply", "all changed", "weights (full)", "endpoints (full)", "set_weights",
           "set_endpoints")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="2,100,1000", help="cluster counts (default 2,100,1000)")
    ap.add_argument("--routes", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    import meshcore

    secret_docs = secrets()
    rows = [measure(int(n), args.routes, args.repeat, secret_docs) for n in args.sizes.split(",")]
    print(f"meshcore from {meshcore.__file__}; ms, median of {args.repeat} (noisy shared machine)")
    print(f"{'clusters':>8} {'routes':>6} " + " ".join(f"{c:>16}" for c in COLUMNS))
    for r in rows:
        cells = ("n/a" if r[c] is None else f"{r[c]:.2f}" for c in COLUMNS)
        print(f"{r['clusters']:>8} {r['routes']:>6} " + " ".join(f"{c:>16}" for c in cells))
    for r in rows:
        if r["clusters"] == 1000:
            full = r["all changed"]
            print(f"target: 1,000 clusters apply <= {TARGETS['apply_1000']:.0f} ms: all changed {full:.1f} "
                  f"({'met' if full <= TARGETS['apply_1000'] else 'missed'}; CPU of the applying thread "
                  f"{r['all changed cpu']:.1f} ms); first {r['first apply']:.1f}, re-apply {r['re-apply']:.1f}")
            for c in ("set_weights", "set_endpoints"):
                if r[c] is not None:
                    print(f"target: {c} <= {TARGETS['incremental']:.0f} ms: {r[c]:.2f} "
                          f"({'met' if r[c] <= TARGETS['incremental'] else 'missed'})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

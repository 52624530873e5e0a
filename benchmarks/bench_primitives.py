#!/usr/bin/env python3
"""The primitives (meshcore.http, .route, .balance, .tls) against their Python
alternatives, in one process, one run: per-call ns and ratios.

    .venv/bin/pip install -e ".[bench]"      # httptools, h11
    .venv/bin/python benchmarks/bench_primitives.py [--quick] [--json FILE]

Unlike the proxy benchmarks, this measures a library inside the caller's
interpreter, so it imports meshcore. Every figure is the best of several
timed loops (the least disturbed by other processes on the machine; it is
noisy, so compare ratios from one run, not figures across runs):

  * parser: a typical ~940-byte, 18-header sidecar request head, and a
    small one. meshcore's result object (parse_request) and its
    httptools-shaped callback parser, httptools (llhttp) with the same
    callbacks, h11 (pure Python; a new Connection per request).
  * router: Router.match on a 10-route table (the kind an embedder has) and
    on the 1,100-route table of tests/python/test_bench_micro.py, against a
    hand-written Python router over the same table (checked to agree).
  * weighted pick, 90/10: WeightedPicker.pick against random.choices and a
    Python smooth weighted round robin.
  * TLS: a full mTLS handshake over a socketpair with meshcore.tls contexts
    (ssl.SSLContext + the SPIFFE check) against the plain ssl contexts.

--quick runs every loop briefly (tests/python/test_bench_primitives.py
runs it to see that it produces figures; nothing checks a speed).
"""
from __future__ import annotations

import argparse
import json
import random
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from meshcore.balance import WeightedPicker
from meshcore.http import HttpRequestParser, parse_request
from meshcore.route import Router
from meshcore.tls import ClientContext, ServerContext

TYPICAL = (
    b"POST /api/v1/orders/4711/items?expand=price&currency=EUR HTTP/1.1\r\n"
    b"Host: checkout.default.svc.cluster.local\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/120.0.0.0 Safari/537.36\r\n"
    b"Accept: application/json, text/plain, */*\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 0\r\n"
    b"Authorization: Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwi"
    b"bmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c\r\n"
    b"Cookie: session=5f2b8c1e9a7d4e3f; theme=dark; consent=1\r\n"
    b"X-Request-Id: 3f1c9a2e-7b4d-4c8e-9f60-1a2b3c4d5e6f\r\n"
    b"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
    b"tracestate: rojo=00f067aa0ba902b7,congo=t61rcWkgMzE\r\n"
    b"X-Forwarded-For: 10.0.3.17, 10.0.7.2\r\n"
    b"X-Forwarded-Proto: https\r\n"
    b"X-Envoy-Attempt-Count: 1\r\n"
    b"X-Canary: false\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n"
)
SMALL = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:10080\r\n\r\n"


def best_ns(fn: Callable[[], Any], loops: int, repeats: int) -> float:
    """ns per call of fn: the best of `repeats` timed loops of `loops` calls."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(loops):
            fn()
        best = min(best, (time.perf_counter_ns() - t0) / loops)
    return best


# ---- parser ---------------------------------------------------------------------------------


class Collect:
    """The callbacks an HTTP server built on httptools typically has."""

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.done = 0

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_message_complete(self) -> None:
        self.done += 1
        self.headers = []


def parser_cases(raw: bytes) -> dict[str, Callable[[], Any]]:
    cases: dict[str, Callable[[], Any]] = {"meshcore parse_request": lambda: parse_request(raw)}
    mine = HttpRequestParser(Collect())
    cases["meshcore HttpRequestParser"] = lambda: mine.feed_data(raw)
    try:
        import httptools
        theirs = httptools.HttpRequestParser(Collect())
        cases["httptools"] = lambda: theirs.feed_data(raw)
    except ImportError:
        print("  (httptools not installed: pip install -e '.[bench]')")
    try:
        import h11

        def h11_parse() -> Any:
            c = h11.Connection(h11.SERVER)
            c.receive_data(raw)
            return c.next_event()
        cases["h11"] = h11_parse
    except ImportError:
        print("  (h11 not installed: pip install -e '.[bench]')")
    return cases


# ---- router ---------------------------------------------------------------------------------


def small_table() -> dict[str, Any]:
    routes: list[dict[str, Any]] = [
        {"name": "health", "match": {"path": "/healthz"}, "direct_response": {"status": 200}},
        {"name": "canary", "match": {"prefix": "/api/", "headers": [{"name": "x-canary",
                                                                     "string_match": {"exact": "true"}}]},
         "route": {"cluster": "api-canary"}},
        {"name": "users", "match": {"safe_regex": {"regex": "/api/users/[0-9]+"}}, "route": {"cluster": "users"}},
    ]
    routes += [{"name": f"svc{i}", "match": {"prefix": f"/svc{i}/"}, "route": {"cluster": f"c{i}"}}
               for i in range(6)]
    routes.append({"name": "api", "match": {"prefix": "/api/"}, "route": {"weighted_clusters": {"clusters": [
        {"name": "api-v1", "weight": 90}, {"name": "api-v2", "weight": 10}]}}})
    return {"name": "small", "virtual_hosts": [{"name": "mesh", "domains": ["*"], "routes": routes}]}


HEADER_MATCHERS = [
    {"name": "x-canary", "string_match": {"exact": "true"}},
    {"name": "x-debug", "present_match": True},
    {"name": "x-client-version", "string_match": {"prefix": "2."}},
    {"name": "x-tenant", "string_match": {"safe_regex": {"regex": "^(acme|globex)-[0-9]+$"}}},
]


def big_table() -> dict[str, Any]:
    """The micro-benchmarks' table (tests/python/test_bench_micro.py): 1,000
    prefix routes and a header-matched route before every 10th."""
    routes: list[dict[str, Any]] = []
    for i in range(1000):
        prefix = f"/svc{i:04d}/"
        if i % 10 == 0:
            routes.append({"name": f"svc{i:04d}-hdr", "match": {"prefix": prefix, "headers": [
                HEADER_MATCHERS[(i // 10) % len(HEADER_MATCHERS)]]}, "route": {"cluster": f"c{(i + 1) % 8}"}})
        routes.append({"name": f"svc{i:04d}", "match": {"prefix": prefix}, "route": {"cluster": f"c{i % 8}"}})
    return {"name": "big", "virtual_hosts": [{"name": "mesh", "domains": ["*"], "routes": routes}]}


class PyRouter:
    """A hand-written Python router over the same table: first match wins on
    prefix / path / safe_regex plus exact, present, prefix or regex header
    matchers (what the benchmark tables use), one virtual host "*"."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.routes = []
        for r in config["virtual_hosts"][0]["routes"]:
            m = r["match"]
            if "prefix" in m:
                path = (lambda p: lambda s: s.startswith(p))(m["prefix"])
            elif "path" in m:
                path = (lambda p: lambda s: s == p)(m["path"])
            else:
                path = re.compile(m["safe_regex"]["regex"]).fullmatch
            headers = [self._header(h) for h in m.get("headers", [])]
            self.routes.append((r["name"], path, headers))

    @staticmethod
    def _header(h: dict[str, Any]) -> tuple[str, Callable[[str | None], bool]]:
        name = h["name"]
        if h.get("present_match"):
            return name, lambda v: v is not None
        sm = h["string_match"]
        if "exact" in sm:
            return name, (lambda x: lambda v: v == x)(sm["exact"])
        if "prefix" in sm:
            return name, (lambda x: lambda v: v is not None and v.startswith(x))(sm["prefix"])
        rx = re.compile(sm["safe_regex"]["regex"])
        return name, lambda v: v is not None and rx.fullmatch(v) is not None

    def match(self, method: str, authority: str, path: str, headers: dict[str, str]) -> str | None:
        p = path.split("?", 1)[0]
        for name, path_ok, hms in self.routes:
            if path_ok(p) and all(ok(headers.get(h)) for h, ok in hms):
                return name
        return None


ROUTE_REQUESTS = {
    "small": ("/api/orders/42", {"x-canary": "false", "user-agent": "bench"}),
    "big": ("/svc0999/orders/42", {"x-canary": "false", "x-client-version": "1.9.3", "x-tenant": "initech-7"}),
}


# ---- weighted pick --------------------------------------------------------------------------


class PySwrr:
    """Smooth weighted round robin in Python (nginx's)."""

    def __init__(self, weights: dict[str, int]) -> None:
        self.keys = list(weights)
        self.weights = list(weights.values())
        self.cur = [0] * len(self.keys)
        self.total = sum(self.weights)

    def pick(self) -> str:
        best = 0
        for i, w in enumerate(self.weights):
            self.cur[i] += w
            if self.cur[i] > self.cur[best]:
                best = i
        self.cur[best] -= self.total
        return self.keys[best]


# ---- TLS ------------------------------------------------------------------------------------


def tls_pairs(workdir: str) -> dict[str, tuple[Callable[[socket.socket], Any], Callable[[socket.socket], Any]]]:
    from meshcore.ca import CertificateAuthority, issue_workload

    ca = CertificateAuthority.init(f"{workdir}/ca", "cluster.local")
    s_key, s_chain = issue_workload(ca, "default", "server")
    c_key, c_chain = issue_workload(ca, "default", "client")
    server = ServerContext(s_chain, s_key, ca.trust_bundle_pem, trust_domain="cluster.local")
    client = ClientContext(c_chain, c_key, ca.trust_bundle_pem,
                           spiffe_ids=["spiffe://cluster.local/ns/default/sa/server"])
    plain_s, plain_c = server._build(s_chain, s_key, ca.trust_bundle_pem), client._build(c_chain, c_key,
                                                                                          ca.trust_bundle_pem)
    return {
        "meshcore.tls": (lambda s: server.wrap_socket(s)[0], lambda s: client.wrap_socket(s)[0]),
        "ssl (no SPIFFE check)": (lambda s: plain_s.wrap_socket(s, server_side=True),
                                  lambda s: plain_c.wrap_socket(s, server_side=False)),
    }


def handshake_ns(server: Callable[[socket.socket], Any], client: Callable[[socket.socket], Any], n: int) -> float:
    """ns per full handshake (both sides, a thread each) over a socketpair, best-of-n/5 batches."""
    def one() -> None:
        a, b = socket.socketpair()
        t = threading.Thread(target=lambda: server(a).close())
        t.start()
        client(b).close()
        t.join()
    batch = max(1, n // 5)
    return best_ns(one, batch, 5)


# ---- the run --------------------------------------------------------------------------------


def report(title: str, figures: dict[str, float], base: str) -> dict[str, Any]:
    print(f"\n{title} (ratio: time over {base}'s)")
    ref = figures[base]
    for name, ns in figures.items():
        ratio = "" if name == base else f"  {ns / ref:6.2f}x"
        unit = f"{ns / 1e6:10.3f} ms" if ns > 1e6 else f"{ns:10.0f} ns"
        print(f"  {name:34s} {unit}{ratio}")
    return {"title": title, "ns": figures, "base": base}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="brief loops (figures, not measurements)")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    loops, repeats, handshakes = (300, 2, 10) if args.quick else (50_000, 7, 200)
    print(f"bench_primitives: best of {repeats} loops of {loops} calls; a ratio above 1 means the row is slower "
          "than the first. Noisy machine: other processes share its cores.")
    out = []

    for label, raw in (("typical 940-byte head", TYPICAL), ("small head", SMALL)):
        figures = {name: best_ns(fn, loops, repeats) for name, fn in parser_cases(raw).items()}
        out.append(report(f"HTTP/1.1 request parse, {label}: ns per request", figures, "meshcore parse_request"))

    for label, table in (("small", small_table()), ("big", big_table())):
        router, py = Router(table), PyRouter(table)
        path, headers = ROUTE_REQUESTS[label]
        mine = router.match("GET", "svc", path, headers)
        assert mine is not None and mine.route.name == py.match("GET", "svc", path, headers), "routers disagree"
        n = len(table["virtual_hosts"][0]["routes"])
        figures = {"meshcore Router.match": best_ns(lambda r=router, p=path, h=headers: r.match("GET", "svc", p, h),
                                                    loops, repeats),
                   "Python router": best_ns(lambda r=py, p=path, h=headers: r.match("GET", "svc", p, h),
                                            max(1, loops // (20 if label == "big" else 1)), repeats)}
        out.append(report(f"route match, {n} routes (matching route {mine.route.name!r}): ns per match",
                          figures, "meshcore Router.match"))

    weights = {"stable": 90, "canary": 10}
    wp, ps = WeightedPicker(weights), PySwrr(weights)
    keys, ws = list(weights), list(weights.values())
    figures = {"meshcore WeightedPicker.pick": best_ns(wp.pick, loops, repeats),
               "random.choices": best_ns(lambda: random.choices(keys, ws), loops, repeats),
               "Python smooth WRR": best_ns(ps.pick, loops, repeats)}
    out.append(report("weighted pick 90/10: ns per pick", figures, "meshcore WeightedPicker.pick"))

    with tempfile.TemporaryDirectory(prefix="bench-primitives-") as d:
        figures = {name: handshake_ns(s, c, handshakes) for name, (s, c) in tls_pairs(d).items()}
    out.append(report("mTLS handshake over a socketpair (ECDSA P-256, TLS 1.3): per handshake", figures,
                      "meshcore.tls"))

    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

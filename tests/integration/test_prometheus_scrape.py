"""Istio's standard metrics as a real Prometheus sees them (Debian's `prometheus`, 2.x).

Two `meshcore proxy` sidecars (support/telemetry.py: productpage-v1 calls
reviews-v1) carry a load the test paces itself; a Prometheus server on
loopback (support/prometheus.py) scrapes both admin APIs every second.
PromQL over what it stored must agree with that load:

* once a scrape has started after the last request was counted, the
  counters are exactly the requests sent, per reporter and response code,
  with productpage-v1 -> reviews-v1 on both reporters, and Prometheus
  stored every series just as the sidecars expose it;
* rate() over a window inside the load is the rate the test sent in that
  window, within what one-second scrapes can resolve;
* histogram_quantile(0.99, ...) falls in the bucket that holds the true p99
  (bucket resolution);

and `promtool check metrics` accepts the exposition but for Istio's own
millisecond name (as test_istio_metrics.py finds)."""
from __future__ import annotations

import collections
import dataclasses
import math
import shutil
import subprocess
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import http as h
from support import telemetry as t
from support.net import wait_until
from support.prometheus import Prometheus

from meshcore.telemetry.istio_metrics import BUCKETS

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None or shutil.which("promtool") is None,
                                reason="prometheus / promtool (Debian package prometheus) not installed")

# The load: RATE requests a second for SECONDS, open loop over THREADS
# keep-alive connections to the client sidecar. Every 10th request is slow
# (the backend sleeps SLOW), every 10th another one fails (503), the rest
# are fast (FAST).
RATE = 20
SECONDS = 10
THREADS = 5
FAST = 0.005
SLOW = 0.120
# rate() and histogram_quantile() are read over [QUERY_AT - WINDOW, QUERY_AT],
# QUERY_AT = load start + SECONDS - 2: well inside the load, after the
# first scrapes that saw its series.
WINDOW = 6
# The core counts an observation in the first Istio bound at or above its
# log-linear bucket's upper end, at most 1/8 above the value
# (include/meshcore/istio_metrics.h).
REBUCKET = 1.125


def kind_of(i: int) -> str:
    if i % 10 == 5:
        return "slow"
    if i % 10 == 2:
        return "fail"
    return "ok"


def backend_handler(req):
    kind = req.target.split("/")[1]
    time.sleep(SLOW if kind == "slow" else FAST)
    return h.Reply(503 if kind == "fail" else 200, [], b"reviews\n")


@dataclasses.dataclass
class Sent:
    kind: str
    status: int
    end: float  # wall clock (Prometheus's clock) when the whole response was read
    latency: float  # seconds, as the client saw it


class PacedLoad:
    """Open loop: request i is due at start + i / rate whatever the earlier
    ones did; THREADS connections take turns so a slow reply does not hold
    up the schedule. Every response is kept; any error is recorded."""

    def __init__(self, port: int, rate: float, seconds: float, threads: int = THREADS):
        self.port = port
        self.rate = rate
        self.sent: list[Sent | None] = [None] * int(rate * seconds)
        self.failures: list[str] = []
        self._threads = [threading.Thread(target=self._run, args=(j, threads), name=f"paced-load-{j}", daemon=True)
                         for j in range(threads)]

    def start(self) -> PacedLoad:
        self.t0 = time.time()
        self._m0 = time.monotonic()
        for th in self._threads:
            th.start()
        return self

    def _run(self, first: int, step: int) -> None:
        i = first
        try:
            with h.Conn(self.port) as c:
                for i in range(first, len(self.sent), step):
                    due = self._m0 + i / self.rate - time.monotonic()
                    if due > 0:
                        time.sleep(due)  # pacing, not waiting for anything
                    kind = kind_of(i)
                    began = time.monotonic()
                    r = c.request("GET", f"/{kind}/{i}", host=t.SERVICE)
                    self.sent[i] = Sent(kind, r.status, time.time(), time.monotonic() - began)
        except BaseException as e:  # noqa: BLE001 - reported through failures
            self.failures.append(f"request {i}: {type(e).__name__}: {e}")

    def join(self) -> list[Sent]:
        for th in self._threads:
            th.join(timeout=60)
            assert not th.is_alive(), f"{th.name} hung"
        assert not self.failures, self.failures
        return self.sent


@pytest.fixture
def prometheus_factory(tmp_path):
    """make({name: admin port}) -> a started Prometheus scraping those; stopped at teardown."""
    servers = []

    def make(targets: dict[str, int]) -> Prometheus:
        p = Prometheus(tmp_path / f"prometheus{len(servers)}", targets)
        servers.append(p)
        return p.start()

    yield make
    for p in servers:
        p.stop()


def requests_counted(proxy, reporter: str) -> float:
    status, text = proxy.get("/stats/prometheus")
    assert status == 200, text
    return t.value(text, "istio_requests_total", reporter=reporter)


def bound_at_or_above(ms: float) -> float:
    return next((b for b in BUCKETS if b >= ms), math.inf)


def test_prometheus_scrapes_both_sidecars_and_promql_agrees_with_the_load(
        proxy_factory, backend_factory, prometheus_factory):
    backend = backend_factory("reviews", backend_handler)
    # A short drain: at teardown the client sidecar's idle pooled connections
    # would otherwise hold the server sidecar for its default 5 s.
    server = proxy_factory(t.server_sidecar(backend.port), name="reviews", drain_timeout=1.0)
    client = proxy_factory(t.client_sidecar(server.listener_port("inbound")), name="productpage",
                           drain_timeout=1.0)
    prom = prometheus_factory({"productpage": client.admin_port, "reviews": server.admin_port})
    prom.wait_targets_up()  # Prometheus 2.x starts scraping up to 5 s after it is ready

    load = PacedLoad(client.listener_port("outbound"), RATE, SECONDS).start()
    sent = load.join()
    n = len(sent)
    assert [s.status for s in sent] == [503 if s.kind == "fail" else 200 for s in sent]
    fails = sum(s.kind == "fail" for s in sent)
    slow = sum(s.kind == "slow" for s in sent)

    # -- counters: exact, once a scrape started after everything was counted.
    # (Not increase() over the whole load: a series first appears with the
    # requests of its first scrape already counted, and increase() only
    # extrapolates part of that first step, by where the scrapes fell.)
    wait_until(lambda: requests_counted(client, "source") >= n and requests_counted(server, "destination") >= n,
               what=f"both sidecars to count {n} requests")
    prom.wait_scraped_after(time.time())
    keys = ("reporter", "sidecar", "source_workload", "destination_workload", "response_code", "response_flags")
    got = {tuple(m[k] for k in keys): v
           for m, v in prom.query(f"sum by ({', '.join(keys)}) (istio_requests_total)")}
    assert got == {
        ("source", "productpage", "productpage-v1", "reviews-v1", "200", "-"): n - fails,
        ("source", "productpage", "productpage-v1", "reviews-v1", "503", "-"): fails,
        ("destination", "reviews", "productpage-v1", "reviews-v1", "200", "-"): n - fails,
        ("destination", "reviews", "productpage-v1", "reviews-v1", "503", "-"): fails,
    }
    for reporter in ("source", "destination"):
        sel = f'reporter="{reporter}"'
        assert prom.value(f"sum(istio_request_duration_milliseconds_count{{{sel}}})") == n
        assert prom.value(f'sum(istio_request_duration_milliseconds_bucket{{{sel}, le="+Inf"}})') == n
        # the slow ones took >= 120 ms: none of them is at or under 100
        assert prom.value(f'sum(istio_request_duration_milliseconds_bucket{{{sel}, le="100.0"}})') <= n - slow

    # Prometheus stored every istio_requests_total series as exposed: no label
    # renamed (exported_*), none lost but the empty ones (grpc_response_status=""
    # on HTTP: an empty label is no label in Prometheus).
    expositions = {}
    for name, proxy in (("productpage", client), ("reviews", server)):
        status, expositions[name] = proxy.get("/stats/prometheus")
        assert status == 200
        exposed = {frozenset((k, v) for k, v in s.labels.items() if v): s.value
                   for s in t.samples(expositions[name], "istio_requests_total")}
        stored = {frozenset((k, v) for k, v in m.items() if k not in ("__name__", "job", "instance", "sidecar")): v
                  for m, v in prom.query(f'istio_requests_total{{sidecar="{name}"}}')}
        assert stored == exposed, name
        # ... and every sample of the whole exposition (Envoy's too) is a
        # series of its own: Prometheus keeps the first of two samples with
        # the same name and labels and drops the other without a word.
        every = [(s.name, frozenset(s.labels.items()))
                 for fam in text_string_to_metric_families(expositions[name]) for s in fam.samples]
        assert len(set(every)) == len(every), [k for k, c in collections.Counter(every).items() if c > 1][:5]
        assert prom.value(f'count({{sidecar="{name}", __name__!~"up|scrape_.*"}})') == len(every), name

    # -- rate(): inside the window both edges are within one scrape interval
    # of a sample, so Prometheus extrapolates the slope between the first and
    # last sample in it, which span at least WINDOW - 2 s. Against the test's
    # own count over exactly the window, each of the four ends (two samples,
    # two window edges) may be one request of the evenly paced load off:
    # 2 / (WINDOW - 2) + 2 / WINDOW <= 4 / (WINDOW - 2) requests a second;
    # 10 % more for the generator's pacing on a busy machine.
    at = load.t0 + SECONDS - 2
    window = [s for s in sent if at - WINDOW < s.end <= at]

    def tolerance(rate: float) -> float:
        return 0.1 * rate + 4 / (WINDOW - 2)

    measured = {}
    for reporter in ("source", "destination"):
        sel = f'reporter="{reporter}"'
        want = len(window) / WINDOW
        rate = prom.value(f"sum(rate(istio_requests_total{{{sel}}}[{WINDOW}s]))", at)
        assert abs(rate - want) <= tolerance(want), (reporter, rate, want)
        by_code = {m["response_code"]: v for m, v in prom.query(
            f"sum by (response_code) (rate(istio_requests_total{{{sel}}}[{WINDOW}s]))", at)}
        assert set(by_code) == {"200", "503"}, by_code
        for code in ("200", "503"):
            want_code = sum(s.status == int(code) for s in window) / WINDOW
            assert abs(by_code[code] - want_code) <= tolerance(want_code), (reporter, code, by_code, want_code)
        # the histogram counts what the counter counts, scrape for scrape
        count_rate = prom.value(f"sum(rate(istio_request_duration_milliseconds_count{{{sel}}}[{WINDOW}s]))", at)
        assert count_rate == pytest.approx(rate, rel=1e-9)

        # -- histogram_quantile(0.99): 10 % of the requests are slow, at
        # least SLOW = 120 ms (the backend sleeps that long inside both
        # sidecars' timing), so the true p99 is a slow one and more than 1 %
        # of every window lies above the 100 ms bound: the quantile is
        # interpolated inside a bucket above 100. No sidecar timed a request
        # longer than the client did, and the core's re-bucketing puts an
        # observation at most 1/8 above its value, so no observation is in a
        # bucket above the one holding 1.125 x the slowest client latency:
        # (100, 250] on any machine that answers within ~220 ms, a wider
        # bucket only if the machine stalled that long.
        upper = bound_at_or_above(REBUCKET * 1000 * max(s.latency for s in sent))
        p99 = prom.value(f"histogram_quantile(0.99, sum by (le) "
                         f"(rate(istio_request_duration_milliseconds_bucket{{{sel}}}[{WINDOW}s])))", at)
        assert 100 < p99 <= upper, (reporter, p99, upper)
        measured[reporter] = (rate, want, by_code, p99)

    # -- Prometheus took every scrape whole
    for target in prom.active_targets():
        assert (target["health"], target["lastError"]) == ("up", ""), target
    own = prom.own_metrics()
    for name in ("prometheus_target_scrapes_sample_duplicate_timestamp_total",
                 "prometheus_target_scrapes_sample_out_of_order_total",
                 "prometheus_target_scrapes_sample_out_of_bounds_total",
                 "prometheus_target_scrapes_exceeded_sample_limit_total"):
        assert own.get(name) == 0, (name, own.get(name))

    # -- promtool lints what was scraped: only Istio's mandated millisecond name
    for name, text in expositions.items():
        res = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        problems = [line for line in (res.stdout + res.stderr).splitlines() if line.strip()]
        assert problems == ['istio_request_duration_milliseconds use base unit "seconds" instead of '
                            '"milliseconds"'], (name, problems)

    slowest = max(s.latency for s in sent) * 1000
    counts = collections.Counter(s.status for s in sent)
    print(f"\nsent {n} ({dict(counts)}) in {sent[-1].end - load.t0:.2f} s, slowest {slowest:.1f} ms; "
          f"window {len(window)} requests; (rate, want, by code, p99) {measured}")

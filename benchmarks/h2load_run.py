"""h2load (Debian nghttp2-client) for bench_h2.py: one run, pinned to the load
core, its summary parsed and, for the latency run, its per-request log read
for the median.

h2load's summary has no percentiles; `--log-file` writes one line per request
(start time in us, status, duration in us), from which the p50 is taken.
"""
from __future__ import annotations

import re
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The gRPC unary workload: a POST of one length-prefixed message (RFC-less
# but gRPC's wire format: 1 byte "not compressed", 4 bytes big-endian length,
# the protobuf bytes; here field 1 = "abc") with gRPC's request headers.
GRPC_PATH = "/bench.Echo/Unary"
GRPC_MESSAGE = b"\x0a\x03abc"
GRPC_FRAME = b"\x00" + len(GRPC_MESSAGE).to_bytes(4, "big") + GRPC_MESSAGE
GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")


@dataclass
class H2loadResult:
    requests: int = 0      # done
    succeeded: int = 0
    failed: int = 0
    errored: int = 0
    status_2xx: int = 0
    non_2xx: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    p50_ms: float | None = None  # from --log-file, when asked for
    raw_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.succeeded > 0 and self.failed == 0 and self.errored == 0 and self.non_2xx == 0

    def to_dict(self) -> dict:
        d = dict(vars(self))
        d.pop("raw_tail")
        return d


_FINISHED = re.compile(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s")
_REQUESTS = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                       r"(\d+) errored")
_CODES = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")


def parse(text: str) -> H2loadResult:
    r = H2loadResult(raw_tail="\n".join(text.strip().splitlines()[-12:]))
    m = _FINISHED.search(text)
    if m:
        r.seconds = float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
        r.rps = float(m.group(3))
    m = _REQUESTS.search(text)
    if m:
        r.requests, r.succeeded, r.failed, r.errored = (int(m.group(i)) for i in (3, 4, 5, 6))
    m = _CODES.search(text)
    if m:
        r.status_2xx = int(m.group(1))
        r.non_2xx = sum(int(m.group(i)) for i in (2, 3, 4))
    return r


def median_ms(log: Path) -> float | None:
    """The p50 of the requests that got a status, from h2load's --log-file."""
    durations = []
    for line in log.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[1] != "-1":
            durations.append(int(parts[2]) / 1000.0)
    return statistics.median(durations) if durations else None


def run(url: str, *, clients: int, streams: int, duration: float | None = None, requests: int | None = None,
        core: int | None = None, grpc_data: Path | None = None, log: Path | None = None,
        timeout: float = 120.0) -> H2loadResult:
    """h2load over h2c with prior knowledge (-p h2c), one thread. duration (-D)
    or a number of requests (-n); grpc_data: the request body file of the gRPC
    workload (POST with gRPC's headers)."""
    cmd = (["taskset", "-c", str(core)] if core is not None else []) + [
        "h2load", "-t", "1", "-c", str(clients), "-m", str(streams)]
    cmd += ["-D", f"{duration:g}"] if duration is not None else ["-n", str(requests or 1)]
    if grpc_data is not None:
        cmd += ["-d", str(grpc_data)]
        for h in GRPC_HEADERS:
            cmd += ["-H", h]
    if log is not None:
        cmd += ["--log-file", str(log)]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    r = parse(out.stdout + out.stderr)
    if log is not None and log.exists():
        r.p50_ms = median_ms(log)
    return r

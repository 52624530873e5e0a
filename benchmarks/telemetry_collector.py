"""bench_telemetry.py's trace collector: a small OTLP/HTTP receiver in a process of its
own that counts the spans in each export, and how to start and read it.
"""
from __future__ import annotations

import json
import sys

from common import (
    BenchError,
    Proc,
    free_port,
    http_get,
    start_pinned,
    wait_port,
)

# The trace collector: a ThreadingHTTPServer in a process of its own (its own
# GIL, pinned to the load core) answering 200 to POST /v1/traces. It counts
# the spans in each OTLP/protobuf ExportTraceServiceRequest by walking the
# wire format (resource_spans = 1 -> scope_spans = 2 -> spans = 2), so it
# needs nothing beyond the standard library. GET /count returns its counts.
COLLECTOR = r'''
import http.server, json, sys, threading

counts = {"posts": 0, "spans": 0, "bytes": 0, "bad": 0, "bad_detail": ""}
lock = threading.Lock()

def varint(b, i):
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        if c < 0x80:
            return n, i
        shift += 7

def fields(b):
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            _, i = varint(b, i)
            yield num, None
        elif wt == 1:
            i += 8
            yield num, None
        elif wt == 2:
            n, i = varint(b, i)
            yield num, b[i:i + n]
            i += n
        elif wt == 5:
            i += 4
            yield num, None
        else:
            raise ValueError(f"wire type {wt}")

def count_spans(body):
    n = 0
    for f, rs in fields(body):
        if f == 1:
            for g, ss in fields(rs):
                if g == 2:
                    n += sum(1 for h, _ in fields(ss) if h == 2)
    return n

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        ctype = self.headers.get("content-type", "")
        try:
            if self.path != "/v1/traces" or ctype != "application/x-protobuf":
                raise ValueError(f"POST {self.path} content-type {ctype!r}")
            n, bad = count_spans(body), ""
        except (ValueError, IndexError) as e:
            n, bad = 0, str(e)
        with lock:
            counts["posts"] += 1
            counts["spans"] += n
            counts["bytes"] += len(body)
            if bad:
                counts["bad"] += 1
                counts["bad_detail"] = bad
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self):
        with lock:
            body = json.dumps(counts).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
'''


def start_collector(ctx: dict) -> tuple[Proc, int]:
    port = free_port()
    proc = start_pinned("collector", [sys.executable, "-c", COLLECTOR, str(port)],
                        ctx["load_core"], ctx["workdir"])
    wait_port(port, proc=proc)
    return proc, port


def collector_counts(port: int) -> dict:
    status, body = http_get(port, "/count")
    if status != 200:
        raise BenchError(f"collector answered {status}")
    return json.loads(body)


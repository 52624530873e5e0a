"""HTTP/1.1 helpers for the http_connection_manager tests: configs, a scriptable
upstream, and raw clients.

Configs: `hcm_listener`, `vhost`, `route`, `http_cluster` build Envoy v3
bootstrap dicts (the YAML shape) for an http_connection_manager listener on
127.0.0.1 port 0; `simple` is one listener routing everything to one cluster.

Backend: a real HTTP/1.1 server on a thread per connection (a ScriptedServer
running a small, strict parser) so a test can see exactly what the proxy
sent: the raw head, every header in order, the body bytes, chunk extensions
and trailers, which upstream connection carried which request. What it
answers is a `handler(req) -> Reply`; the default echoes the body back with
`x-backend: <name>`. A Reply may also be raw bytes, close the connection, or
stream a chunked body from a generator.

A connection the proxy drops mid-message is recorded in `incomplete` (the
proxy may give up on a request); a message that is not valid HTTP/1.1 is a
ProtocolViolation, re-raised when the Backend stops, failing the test.

Clients: `Conn` is a raw socket with a read buffer; it builds requests,
sends arbitrary bytes (pipelined or malformed) and parses responses
(Content-Length, chunked with extensions and trailers, or until close), or
streams a response body through a digest (store=False). `HttpLoad` runs
http.client threads doing checked keep-alive requests.

Stats: `stat` reads one (0 when absent); `wait_stat` polls until a counter
reaches a value, as the proxy may count just after the client has its bytes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import socket
import threading

from .net import wait_until
from .servers import ScriptedServer

HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
FAULT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
PREVIOUS_HOSTS_TYPE = "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
FAULT_FILTER = "envoy.filters.http.fault"

# ---- configs ---------------------------------------------------------------------------------


def router_filter() -> dict:
    return {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}}


def fault_filter(**fault) -> dict:
    """The fault filter; fault: abort={...} and/or delay={...} (HTTPFault fields)."""
    return {"name": FAULT_FILTER, "typed_config": {"@type": FAULT_TYPE, **fault}}


def fault_config(**fault) -> dict:
    """A route's typed_per_filter_config entry for the fault filter."""
    return {FAULT_FILTER: {"@type": FAULT_TYPE, **fault}}


def percent(numerator: int, denominator: str = "HUNDRED") -> dict:
    return {"numerator": numerator, "denominator": denominator}


def previous_hosts() -> list:
    return [{"name": "envoy.retry_host_predicates.previous_hosts",
             "typed_config": {"@type": PREVIOUS_HOSTS_TYPE}}]


def route(prefix: str | None = "/", cluster: str | None = None, *, match: dict | None = None, **kw) -> dict:
    """A route. match defaults to {"prefix": prefix}; cluster= sets route.cluster;
    other keywords: route (a dict merged into the RouteAction), redirect,
    direct_response, name, typed_per_filter_config, *_headers_to_*."""
    r = {"match": dict(match) if match is not None else {"prefix": prefix}}
    action = kw.pop("route", None)
    if cluster is not None or action is not None:
        r["route"] = {**({"cluster": cluster} if cluster is not None else {}), **(action or {})}
    r.update(kw)
    return r


def vhost(name: str, domains, routes, **kw) -> dict:
    return {"name": name, "domains": list(domains), "routes": list(routes), **kw}


def hcm_listener(name: str = "http", virtual_hosts=None, *, routes=None, stat_prefix: str | None = None,
                 http_filters=None, route_config: dict | None = None, **hcm) -> dict:
    """A listener whose only filter is an http_connection_manager.

    virtual_hosts: the route config's virtual hosts; or routes: one "*"
    virtual host with these routes. route_config: extra RouteConfiguration
    fields (e.g. request_headers_to_add). hcm: extra HttpConnectionManager
    fields."""
    if virtual_hosts is None:
        virtual_hosts = [vhost("all", ["*"], routes or [route("/", "backend")])]
    rc = {"name": f"{name}_routes", "virtual_hosts": virtual_hosts, **(route_config or {})}
    typed = {"@type": HCM_TYPE, "stat_prefix": stat_prefix or name, "codec_type": "HTTP1",
             "route_config": rc, "http_filters": list(http_filters or []) + [router_filter()], **hcm}
    return {"name": name, "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": typed}]}]}


def http_cluster(name: str, endpoints, *, lb_policy: str = "ROUND_ROBIN", connect_timeout: str = "1s",
                 **extra) -> dict:
    """A STATIC cluster of 127.0.0.1 ports (or (port, weight) pairs); extra:
    circuit_breakers, outlier_detection, ring_hash_lb_config, ..."""
    lb = []
    for ep in endpoints:
        port, weight = ep if isinstance(ep, tuple) else (ep, None)
        item = {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}
        if weight is not None:
            item["load_balancing_weight"] = weight
        lb.append(item)
    return {"name": name, "type": "STATIC", "connect_timeout": connect_timeout, "lb_policy": lb_policy,
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": lb}]}, **extra}


def circuit_breakers(**thresholds) -> dict:
    return {"thresholds": [thresholds]}


def bootstrap(listeners, clusters) -> dict:
    return {"node": {"id": "http-test", "cluster": "tests"},
            "static_resources": {"listeners": list(listeners), "clusters": list(clusters)}}


def simple(ports, *, routes=None, cluster: str = "backend", listener: str = "http", cluster_kw=None,
           **hcm) -> dict:
    """One HTTP listener; every request (or `routes`) to one cluster of ports."""
    return bootstrap([hcm_listener(listener, routes=routes or [route("/", cluster)], **hcm)],
                     [http_cluster(cluster, ports, **(cluster_kw or {}))])


# ---- messages ------------------------------------------------------------------------------------


def _header(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _headers_named(headers, name):
    name = name.lower()
    return [v for k, v in headers if k.lower() == name]


@dataclasses.dataclass
class Request:
    """One request as the backend received it."""

    method: str
    target: str
    version: str
    headers: list  # [(name, value)] in wire order, names as sent
    raw_head: bytes
    conn: int  # 1-based number of the upstream connection that carried it
    index: int = 0  # 0-based position on that connection
    body: bytes | None = None  # decoded body (None when not stored)
    body_len: int = 0
    body_sha256: str = ""
    raw_body: bytes | None = None  # body bytes as on the wire (chunk framing included)
    chunked: bool = False
    chunk_exts: list = dataclasses.field(default_factory=list)  # the text after each size, ";" included
    trailers: list = dataclasses.field(default_factory=list)

    def header(self, name):
        return _header(self.headers, name)

    def headers_named(self, name):
        return _headers_named(self.headers, name)

    def has(self, name) -> bool:
        return _header(self.headers, name) is not None


@dataclasses.dataclass
class Reply:
    """What the backend answers.

    raw: bytes sent verbatim instead of a built response. stream: an
    iterable of byte strings sent as a chunked body. close: close the
    connection after this reply. after: called once the reply is sent (to
    stall the connection there, say). A Content-Length is added unless the
    headers carry one or Transfer-Encoding, or no_length is set."""

    status: int = 200
    headers: list = dataclasses.field(default_factory=list)
    body: bytes = b""
    raw: bytes | None = None
    stream: object = None
    close: bool = False
    no_length: bool = False
    after: object = None

    def encode_head(self) -> bytes:
        reasons = {200: "OK", 204: "No Content", 304: "Not Modified", 418: "I'm a teapot", 500: "Internal Server Error",
                   503: "Service Unavailable"}
        lines = [f"HTTP/1.1 {self.status} {reasons.get(self.status, 'Whatever')}"]
        names = {k.lower() for k, _ in self.headers}
        lines += [f"{k}: {v}" for k, v in self.headers]
        if self.stream is not None and "transfer-encoding" not in names:
            lines.append("transfer-encoding: chunked")
        elif not self.no_length and "content-length" not in names and "transfer-encoding" not in names:
            lines.append(f"content-length: {len(self.body)}")
        if self.close and "connection" not in names:
            lines.append("connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class ProtocolViolation(AssertionError):
    """The proxy sent the backend something that is not valid HTTP/1.1."""


class Truncated(ConnectionError):
    """The peer closed in the middle of a message."""


class _Reader:
    """Buffered reads from a socket; EOF and resets both read as b""."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self, n: int = 1 << 16) -> bool:
        try:
            data = self.sock.recv(n)
        except (ConnectionResetError, ConnectionAbortedError):
            data = b""
        if not data:
            return False
        self.buf += data
        return True

    def line(self, limit: int = 1 << 20) -> bytes | None:
        """One line including CRLF; None at EOF (a partial line is returned as is)."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                out = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return out
            if len(self.buf) > limit:
                raise ProtocolViolation("line too long")
            if not self._fill():
                if self.buf:
                    out = bytes(self.buf)
                    self.buf.clear()
                    return out
                return None

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill(max(1 << 16, min(n - len(self.buf), 1 << 20))):
                break
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def discard(self, n: int, digest=None) -> int:
        """Reads and drops n bytes (fewer at EOF); returns how many."""
        got = min(n, len(self.buf))
        if got:
            if digest is not None:
                digest.update(self.buf[:got])
            del self.buf[:got]
        scratch = bytearray(1 << 20)
        view = memoryview(scratch)
        while got < n:
            try:
                k = self.sock.recv_into(view, min(len(scratch), n - got))
            except (ConnectionResetError, ConnectionAbortedError):
                k = 0
            if k == 0:
                break
            if digest is not None:
                digest.update(view[:k])
            got += k
        return got

    def rest(self) -> bytes:
        while self._fill():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def at_eof(self) -> bool:
        """True if the peer has closed and nothing is buffered."""
        return not self.buf and not self._fill()


def _read_head(r: _Reader, first_line_optional: bool = True):
    """(raw head, start line, [(name, value)]); None at a clean EOF."""
    lines = []
    while True:
        line = r.line()
        if line is None:
            if lines:
                raise Truncated(f"EOF inside a head: {b''.join(lines)!r}")
            return None
        lines.append(line)
        if not line.endswith(b"\n"):
            raise Truncated(f"EOF inside a head: {b''.join(lines)!r}")
        if not line.endswith(b"\r\n"):
            raise ProtocolViolation(f"line without CRLF: {line!r}")
        if line == b"\r\n":
            if len(lines) == 1:
                raise ProtocolViolation("empty line before a start line")
            break
    raw = b"".join(lines)
    start = lines[0][:-2].decode("latin-1")
    headers = []
    for line in lines[1:-1]:
        text = line[:-2].decode("latin-1")
        name, sep, value = text.partition(":")
        if not sep or not name or name != name.strip() or " " in name:
            raise ProtocolViolation(f"bad field line {line!r}")
        headers.append((name, value.strip(" \t")))
    return raw, start, headers


def _read_chunked(r: _Reader, keep: bool, digest):
    """Reads a chunked body; returns (decoded or None, length, raw or None, exts, trailers)."""
    decoded, raw = bytearray(), bytearray()
    exts, trailers, total = [], [], 0
    while True:
        line = r.line()
        if line is None or not line.endswith(b"\n"):
            raise Truncated(f"EOF in a chunk-size line {line!r}")
        if not line.endswith(b"\r\n"):
            raise ProtocolViolation(f"bare LF in a chunk-size line {line!r}")
        if keep:
            raw += line
        size_text, semi, ext = line[:-2].partition(b";")
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolViolation(f"bad chunk size line {line!r}") from None
        if semi:
            exts.append(";" + ext.decode("latin-1"))
        if size == 0:
            break
        if keep:
            data = r.exactly(size)
            if len(data) != size:
                raise Truncated("EOF in chunk data")
            decoded += data
            raw += data
            if digest is not None:
                digest.update(data)
        elif r.discard(size, digest) != size:
            raise Truncated("EOF in chunk data")
        total += size
        crlf = r.exactly(2)
        if len(crlf) < 2:
            raise Truncated("EOF after chunk data")
        if crlf != b"\r\n":
            raise ProtocolViolation(f"chunk data not followed by CRLF: {crlf!r}")
        if keep:
            raw += crlf
    while True:
        line = r.line()
        if line is None or not line.endswith(b"\n"):
            raise Truncated(f"EOF in the trailer section {line!r}")
        if not line.endswith(b"\r\n"):
            raise ProtocolViolation(f"bare LF in the trailer section {line!r}")
        if keep:
            raw += line
        if line == b"\r\n":
            break
        name, _, value = line[:-2].decode("latin-1").partition(":")
        trailers.append((name, value.strip()))
    return (bytes(decoded) if keep else None), total, (bytes(raw) if keep else None), exts, trailers


class Backend:
    """A scriptable HTTP/1.1 upstream (thread per connection).

    requests: every request received, in arrival order. accepted: upstream
    connections accepted. heads: request heads parsed (counted before the
    body is read, so a test can see a request that never completed).
    received: bytes received over all connections (a request that is not
    even a valid head still shows here). incomplete: requests whose
    connection ended mid-message (the proxy gave up on them), with why."""

    def __init__(self, name: str = "backend", handler=None, *, store_body: bool = True, hash_body: bool = True):
        self.name = name
        self.handler = handler or self.echo
        self.store_body = store_body
        self.hash_body = hash_body
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self.heads = 0
        self.incomplete: list[str] = []
        self.open = 0
        self.finished = 0  # connections served to their end
        self.max_open = 0
        self._conn_no = 0
        self.server = ScriptedServer(self._serve, f"backend-{name}", backlog=1024)
        self.port = self.server.port

    @property
    def accepted(self) -> int:
        return self.server.accepted

    def echo(self, req: Request) -> Reply:
        return Reply(200, [("x-backend", self.name), ("x-path", req.target)], req.body or b"")

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def wait_requests(self, n: int, timeout: float = 10.0) -> list[Request]:
        wait_until(lambda: self.count() >= n, timeout, what=f"{n} requests at backend {self.name}")
        with self._lock:
            return list(self.requests)

    def settle(self, connections: int, timeout: float = 10.0) -> None:
        """Waits until `connections` connections were accepted and every one
        has been served to its end (so every head sent on them is counted)."""
        wait_until(lambda: self.accepted >= connections and self.finished == self.accepted, timeout,
                   what=f"backend {self.name} to settle")

    def _serve(self, conn: socket.socket):
        with self._lock:
            self._conn_no += 1
            number = self._conn_no
            self.open += 1
            self.max_open = max(self.max_open, self.open)
        try:
            self._loop(conn, number)
        except Truncated as e:
            with self._lock:
                self.incomplete.append(str(e))
        except OSError:  # reset, timeout: the proxy gave up on this connection
            pass
        finally:
            with self._lock:
                self.open -= 1
                self.finished += 1

    def _loop(self, conn: socket.socket, number: int):
        r = _Reader(conn)
        index = 0
        while True:
            head = _read_head(r)
            if head is None:
                return
            raw, start, headers = head
            parts = start.split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                raise ProtocolViolation(f"bad request line {start!r}")
            with self._lock:
                self.heads += 1
            req = Request(parts[0], parts[1], parts[2], headers, raw, number, index)
            index += 1
            digest = hashlib.sha256() if self.hash_body else None
            te = _header(headers, "transfer-encoding")
            cl = _headers_named(headers, "content-length")
            if te is not None and cl:
                raise ProtocolViolation("request with both Content-Length and Transfer-Encoding")
            if len(cl) > 1:
                raise ProtocolViolation(f"request with {len(cl)} Content-Length fields")
            if te is not None:
                if te.lower() != "chunked":
                    raise ProtocolViolation(f"Transfer-Encoding {te!r}")
                req.chunked = True
                req.body, req.body_len, req.raw_body, req.chunk_exts, req.trailers = _read_chunked(
                    r, self.store_body, digest)
            elif cl:
                n = int(cl[0])
                if self.store_body:
                    req.body = r.exactly(n)
                    req.raw_body = req.body
                    if len(req.body) != n:
                        raise Truncated(f"EOF after {len(req.body)} of {n} body bytes")
                    if digest is not None:
                        digest.update(req.body)
                    req.body_len = n
                else:
                    req.body_len = r.discard(n, digest)
                    if req.body_len != n:
                        raise Truncated(f"EOF after {req.body_len} of {n} body bytes")
            else:
                req.body = b"" if self.store_body else None
                req.raw_body = req.body
            if digest is not None:
                req.body_sha256 = digest.hexdigest()
            with self._lock:
                self.requests.append(req)
            reply = self.handler(req)
            if reply is None:  # the handler closes without answering
                return
            if reply.raw is not None:
                conn.sendall(reply.raw)
            else:
                conn.sendall(reply.encode_head() + (reply.body if reply.stream is None else b""))
                if reply.stream is not None:
                    for piece in reply.stream:
                        if piece:
                            conn.sendall(b"%x\r\n" % len(piece))
                            conn.sendall(piece)
                            conn.sendall(b"\r\n")
                    conn.sendall(b"0\r\n\r\n")
            if reply.after is not None:
                reply.after()
            conn_hdr = (req.header("connection") or "").lower()
            if reply.close or "close" in conn_hdr or req.version == "HTTP/1.0":
                try:
                    conn.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                r.rest()
                return

    def stop(self):
        self.server.stop()


# ---- clients ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list
    body: bytes
    raw_head: bytes
    raw_body: bytes = b""  # as on the wire (chunk framing included)
    trailers: list = dataclasses.field(default_factory=list)
    chunk_exts: list = dataclasses.field(default_factory=list)
    body_len: int = 0  # with store=False
    body_sha256: str = ""

    def header(self, name):
        return _header(self.headers, name)

    def headers_named(self, name):
        return _headers_named(self.headers, name)

    def has(self, name) -> bool:
        return _header(self.headers, name) is not None


def build_request(method: str = "GET", path: str = "/", *, host: str | None = "svc", headers=(),
                  body: bytes | None = None, version: str = "HTTP/1.1", length: bool = True) -> bytes:
    lines = [f"{method} {path} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines += [f"{k}: {v}" for k, v in headers]
    names = {k.lower() for k, _ in headers}
    if body is not None and length and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def chunked(pieces, ext: str = "", trailers=()) -> bytes:
    """A chunked body of the given pieces; ext is appended to every size."""
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(p), ext.encode(), p) for p in pieces if p)
    out += b"0" + ext.encode() + b"\r\n"
    out += b"".join(f"{k}: {v}\r\n".encode() for k, v in trailers)
    return out + b"\r\n"


class Conn:
    """A raw client connection to the proxy."""

    def __init__(self, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.r = _Reader(self.sock)

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str = "GET", path: str = "/", **kw) -> Response:
        head_request = method == "HEAD"
        self.send(build_request(method, path, **kw))
        return self.response(head_request=head_request)

    def response(self, head_request: bool = False, store: bool = True) -> Response:
        """Reads one response (an interim 1xx one is returned as it comes).

        store=False: the body is read and dropped; body_len and body_sha256
        (set on the Response) describe it."""
        head = _read_head(self.r)
        if head is None:
            raise ConnectionError("the proxy closed the connection before a response")
        raw, start, headers = head
        version, _, rest = start.partition(" ")
        status_text, _, reason = rest.partition(" ")
        status = int(status_text)
        resp = Response(version, status, reason, headers, b"", raw)
        if head_request or status < 200 or status in (204, 304):
            return resp
        te = _header(headers, "transfer-encoding")
        cl = _header(headers, "content-length")
        if not store:
            digest = hashlib.sha256()
            if te is not None:
                _, resp.body_len, _, resp.chunk_exts, resp.trailers = _read_chunked(self.r, False, digest)
            elif cl is not None:
                resp.body_len = self.r.discard(int(cl), digest)
                if resp.body_len != int(cl):
                    raise ConnectionError(f"truncated body: {resp.body_len} of {cl} bytes")
            else:
                resp.body_len = self.r.discard(1 << 62, digest)
            resp.body_sha256 = digest.hexdigest()
            return resp
        if te is not None:
            assert te.lower() == "chunked", te
            resp.body, _, resp.raw_body, resp.chunk_exts, resp.trailers = _read_chunked(self.r, True, None)
        elif cl is not None:
            resp.body = self.r.exactly(int(cl))
            if len(resp.body) != int(cl):
                raise ConnectionError(f"truncated body: {len(resp.body)} of {cl} bytes")
        else:
            resp.body = self.r.rest()
        resp.raw_body = resp.raw_body or resp.body
        return resp

    def at_eof(self) -> bool:
        """True if the proxy has closed the connection (reads until it does or data comes)."""
        try:
            return self.r.at_eof()
        except TimeoutError:
            return False

    def rest(self) -> bytes:
        return self.r.rest()


def request(port: int, method: str = "GET", path: str = "/", **kw) -> Response:
    """One request on a fresh connection."""
    with Conn(port) as c:
        return c.request(method, path, **kw)


def pipeline(conn: Conn, raw_requests, head_requests=None) -> list[Response]:
    """Sends every request in one write, then reads the responses in order."""
    conn.send(b"".join(raw_requests))
    return [conn.response(head_request=bool(head_requests and head_requests[i])) for i in range(len(raw_requests))]


def many(port: int, n: int, path: str = "/", *, batch: int = 100, **kw) -> list[Response]:
    """n GETs over one keep-alive connection, pipelined in batches."""
    out = []
    raw = build_request("GET", path, **kw)
    with Conn(port, timeout=30) as c:
        while len(out) < n:
            k = min(batch, n - len(out))
            out += pipeline(c, [raw] * k)
    return out


# ---- stats --------------------------------------------------------------------------------------------


def stat(source, name: str) -> int:
    """A counter or gauge from an Engine (or a ProxyProcess); 0 when absent."""
    st = source.stats()
    value = st.get(name) if hasattr(st, "get") else None
    return value if value is not None else 0


def wait_stat(source, name: str, at_least: int, timeout: float = 10.0) -> int:
    """Waits until stat >= at_least (the proxy counts some things just after
    the client has its answer); returns the value."""
    wait_until(lambda: stat(source, name) >= at_least, timeout, what=f"{name} >= {at_least}")
    return stat(source, name)


# ---- load ------------------------------------------------------------------------------------------------


class HttpLoad:
    """Client threads doing checked keep-alive requests with http.client.

    Each thread keeps a connection for `per_connection` requests, then opens
    a new one. Every request POSTs a small unique body that an echoing
    upstream returns; a wrong status or body, or any exception, is recorded
    in `failures` (never swallowed). `served` counts x-backend values."""

    def __init__(self, port: int, clients: int = 4, per_connection: int = 25, host: str = "svc"):
        self.port = port
        self.per_connection = per_connection
        self.host = host
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.done = 0
        self.failures: list[str] = []
        self.served: dict = {}
        self._threads = [threading.Thread(target=self._run, args=(i,), name=f"http-load-{i}", daemon=True)
                         for i in range(clients)]

    def start(self) -> HttpLoad:
        for t in self._threads:
            t.start()
        return self

    def _run(self, i: int) -> None:
        import http.client

        n = 0
        try:
            while not self._stop.is_set():
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                try:
                    for _ in range(self.per_connection):
                        body = f"client {i} request {n}".encode()
                        conn.request("POST", f"/load/{i}/{n}", body=body, headers={"Host": self.host})
                        resp = conn.getresponse()
                        got = resp.read()
                        if resp.status != 200 or got != body:
                            raise AssertionError(f"status {resp.status}, body {got[:80]!r} for {body!r}")
                        n += 1
                        with self._lock:
                            self.done += 1
                            name = resp.getheader("x-backend")
                            self.served[name] = self.served.get(name, 0) + 1
                        if self._stop.is_set():
                            break
                finally:
                    conn.close()
        except BaseException as e:  # noqa: BLE001 - reported through failures
            with self._lock:
                self.failures.append(f"client {i} after {n} requests: {type(e).__name__}: {e}")

    def progress(self, requests: int = 200, timeout: float = 60.0) -> None:
        target = self.done + requests
        wait_until(lambda: self.done >= target or self.failures, timeout, what=f"{requests} more requests")

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
            assert not t.is_alive(), f"{t.name} hung"

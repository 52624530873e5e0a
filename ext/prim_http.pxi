# HTTP/1.1 parsing for embedders (meshcore.http): the proxy's own parser
# (http/h1_parser.c) and chunked decoder (http/h1_chunked.c) through
# meshcore/primitives.h. Two shapes over the same C:
#   parse_request / parse_response: one head in, a result object out;
#   HttpRequestParser / HttpResponseParser: httptools' callback interface,
#   incremental over heads, bodies and pipelined messages.
# A head is delivered only once it is complete and valid (the C parser is
# stateless: it re-reads the buffered head when bytes arrive, as the proxy
# does), so no callback ever sees part of a head the proxy would refuse.

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdlib cimport malloc

from meshcore.errors import HttpParseError, HttpParserUpgrade

_BODY_KINDS = ("none", "length", "chunked", "until_close")
_FIELDS_STATIC = 256
cdef mc_prim_field_t _static_fields[256]  # parse_request/parse_response (the GIL is held throughout)


cdef inline object _data(object data, const char **p, size_t *n):
    """data's bytes without a copy for bytes and bytearray (the common
    cases), else a bytes copy; returns what keeps p alive."""
    if type(data) is bytes:
        p[0], n[0] = PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data)
        return data
    if type(data) is bytearray:
        p[0], n[0] = PyByteArray_AS_STRING(data), PyByteArray_GET_SIZE(data)
        return data
    data = bytes(data)
    p[0], n[0] = PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data)
    return data


cdef mc_prim_limits_t _default_limits
mc_prim_default_limits(&_default_limits)


cdef inline bytes _view(const char *p, size_t n):
    return p[:n] if p != NULL else None


cdef list _headers(const mc_prim_field_t *f, size_t n):
    cdef size_t i
    return [(f[i].name[:f[i].name_len], f[i].value[:f[i].value_len]) for i in range(n)]


cdef void _limits(mc_prim_limits_t *lim, max_head_bytes, max_target_bytes, max_headers) except *:
    lim[0] = _default_limits
    if max_head_bytes is not None:
        lim.max_head_bytes = max_head_bytes
    if max_target_bytes is not None:
        lim.max_target_bytes = max_target_bytes
    if max_headers is not None:
        lim.max_headers = max_headers


cdef class Request:
    """A parsed request head. Byte strings are as sent; ``authority`` is the
    target's (absolute or authority form) or else the Host header's, None
    for an HTTP/1.0 request without Host."""
    cdef readonly bytes method, target, path, query, authority, scheme
    cdef readonly str version, body
    cdef readonly list headers
    cdef readonly object content_length
    cdef readonly bint keep_alive, expect_continue, upgrade, connect, te_trailers
    cdef readonly int head_length

    def __repr__(self):
        return (f"<Request {self.method.decode()} {self.target.decode(errors='replace')} HTTP/{self.version} "
                f"body={self.body}{'' if self.content_length is None else ' ' + str(self.content_length)}>")


cdef class Response:
    """A parsed status line and header section."""
    cdef readonly int status
    cdef readonly bytes reason
    cdef readonly str version, body
    cdef readonly list headers
    cdef readonly object content_length
    cdef readonly bint keep_alive, upgrade
    cdef readonly int head_length

    def __repr__(self):
        return f"<Response {self.status} HTTP/{self.version} body={self.body}>"


cdef Request _request(const char *buf, int rc, mc_prim_head_t *h, const mc_prim_field_t *f):
    cdef Request r = Request.__new__(Request)
    r.method = h.method[:h.method_len]
    r.target = h.target[:h.target_len]
    r.path = _view(h.path, h.path_len)
    r.query = h.query[:h.query_len] if h.has_query else None
    r.authority = h.authority[:h.authority_len] if h.has_authority else None
    r.scheme = _view(h.scheme, h.scheme_len)
    r.version = "1.1" if h.minor_version else "1.0"
    r.body = _BODY_KINDS[h.body]
    r.content_length = h.content_length if h.body == MC_PRIM_BODY_LENGTH else None
    r.headers = _headers(f, h.n_fields)
    r.keep_alive, r.expect_continue, r.upgrade = h.keep_alive, h.expect_continue, h.upgrade
    r.connect, r.te_trailers = h.connect, h.te_trailers
    r.head_length = rc
    return r


cdef Response _response(int rc, mc_prim_head_t *h, const mc_prim_field_t *f):
    cdef Response r = Response.__new__(Response)
    r.status = h.status
    r.reason = h.reason[:h.reason_len]
    r.version = "1.1" if h.minor_version else "1.0"
    r.body = _BODY_KINDS[h.body]
    r.content_length = h.content_length if h.body == MC_PRIM_BODY_LENGTH else None
    r.headers = _headers(f, h.n_fields)
    r.keep_alive, r.upgrade = h.keep_alive, h.upgrade
    r.head_length = rc
    return r


cdef inline _refuse(mc_prim_head_t *h, bint request):
    raise HttpParseError(h.error_reason.decode(), h.error_status, "DPE" if request else "UPE")


def parse_request(data, *, max_head_bytes=None, max_target_bytes=None, max_headers=None):
    """The request head at the start of data: a Request, or None when more
    bytes are needed. HttpParseError when the proxy would refuse it."""
    cdef const char *p
    cdef size_t n
    cdef mc_prim_limits_t lim
    cdef mc_prim_head_t h
    keep = _data(data, &p, &n)
    if max_head_bytes is None and max_target_bytes is None and max_headers is None:
        lim = _default_limits
    else:
        _limits(&lim, max_head_bytes, max_target_bytes, max_headers)
    cdef int rc = mc_prim_parse_request(p, n, &lim, _static_fields, _FIELDS_STATIC, &h)
    if rc > 0:
        return _request(p, rc, &h, _static_fields)
    if rc == -1:
        _refuse(&h, True)
    return None


def parse_response(data, *, request_method=b"GET", max_head_bytes=None, max_headers=None):
    """The response head at the start of data (answering request_method):
    a Response, or None when more bytes are needed. HttpParseError (status
    502) when the proxy would refuse it."""
    cdef const char *p
    cdef size_t n
    cdef mc_prim_limits_t lim
    cdef mc_prim_head_t h
    keep = _data(data, &p, &n)
    _limits(&lim, max_head_bytes, None, max_headers)
    cdef bytes m = _b(request_method)
    cdef int rc = mc_prim_parse_response(p, n, &lim, m == b"HEAD", m == b"CONNECT", _static_fields,
                                         _FIELDS_STATIC, &h)
    if rc > 0:
        return _response(rc, &h, _static_fields)
    if rc == -1:
        _refuse(&h, False)
    return None


cdef class ChunkedDecoder:
    """A chunked body, decoded incrementally: feed() returns the chunk data
    in the bytes given (framing validated and dropped). Once the body ended,
    ``done`` is true and ``tail`` holds the bytes after it. A malformed body
    raises HttpParseError (the proxy: 400 from a client, 502 from an
    upstream), and keeps raising."""
    cdef mc_prim_chunked_t *c
    cdef readonly bint done
    cdef readonly bytes tail
    cdef bint request
    cdef object error

    def __cinit__(self, bint request=True):
        self.c = mc_prim_chunked_new()
        if self.c == NULL:
            raise MemoryError()
        self.request = request
        self.tail = b""

    def __dealloc__(self):
        mc_prim_chunked_free(self.c)

    cdef bytes _decode(self, const char *p, size_t n, ssize_t *used):
        """The data in p[0..n) up to the end or an error (then self.error
        is set and *used is -1); the data before an error is still returned,
        as byte-at-a-time feeding would have returned it."""
        cdef bytearray out = bytearray(n)
        cdef size_t got = 0
        cdef int done = 0
        cdef const char *why = NULL
        used[0] = mc_prim_chunked_decode(self.c, p, n, <char *>out, &got, &done, &why)
        if used[0] < 0:
            self.error = HttpParseError((why or b"malformed chunked body").decode(),
                                        400 if self.request else 502, "DPE" if self.request else "UPE")
        self.done = done
        return bytes(out[:got])

    def feed(self, data):
        """The chunk data in data; b"" once done. A malformed body raises
        HttpParseError (after returning the data that came before it)."""
        cdef const unsigned char[::1] v = data
        cdef ssize_t used = 0
        if self.error is not None:
            raise self.error
        if self.done or not v.shape[0]:
            if self.done and v.shape[0]:
                self.tail += bytes(v)
            return b""
        cdef bytes out = self._decode(<const char *>&v[0], v.shape[0], &used)
        if used < 0:
            if out:
                return out  # the error is raised by the next call
            raise self.error
        if self.done:
            self.tail = bytes(v[used:])
        return out


# States of the callback parsers.
cdef enum:
    ST_HEAD, ST_LENGTH, ST_CHUNKED, ST_UNTIL_CLOSE, ST_UPGRADED, ST_ERROR


cdef class _H1Parser:
    """What the request and response parsers share: buffering a head until
    it is complete, then the body by its framing, then the next message."""
    cdef object _on_message_begin, _on_header, _on_headers_complete, _on_body, _on_message_complete
    cdef bytearray _buf
    cdef int _state
    cdef uint64_t _remaining
    cdef ChunkedDecoder _chunked
    cdef mc_prim_limits_t _lim
    cdef mc_prim_field_t *_fields
    cdef bint _request
    cdef object _error
    cdef int _minor
    cdef bint _keep_alive, _upgrade

    def __cinit__(self, *args, **kwargs):
        self._buf = bytearray()
        self._state = ST_HEAD

    def __dealloc__(self):
        free(self._fields)

    cdef _setup(self, protocol, bint request, max_head_bytes, max_target_bytes, max_headers):
        self._request = request
        _limits(&self._lim, max_head_bytes, max_target_bytes, max_headers)
        self._fields = <mc_prim_field_t *>malloc((self._lim.max_headers or 1) * sizeof(mc_prim_field_t))
        if self._fields == NULL:
            raise MemoryError()
        self._on_message_begin = getattr(protocol, "on_message_begin", None)
        self._on_header = getattr(protocol, "on_header", None)
        self._on_headers_complete = getattr(protocol, "on_headers_complete", None)
        self._on_body = getattr(protocol, "on_body", None)
        self._on_message_complete = getattr(protocol, "on_message_complete", None)

    cdef int _parse(self, const char *p, size_t n, mc_prim_head_t *h) noexcept:
        return -1  # each parser has its own

    cdef _deliver(self, const char *p, int rc, mc_prim_head_t *h):
        pass

    cdef _fail(self, exc):
        self._state = ST_ERROR
        self._error = exc
        raise exc

    cdef _complete(self):
        self._state = ST_HEAD
        if self._on_message_complete is not None:
            self._on_message_complete()

    cdef _headers_done(self, mc_prim_head_t *h, size_t offset):
        self._minor = h.minor_version
        self._keep_alive = h.keep_alive
        if self._on_headers_complete is not None:
            self._on_headers_complete()
        if h.body == MC_PRIM_BODY_LENGTH and h.content_length:
            self._state, self._remaining = ST_LENGTH, h.content_length
        elif h.body == MC_PRIM_BODY_CHUNKED:
            self._state, self._chunked = ST_CHUNKED, ChunkedDecoder(self._request)
        elif h.body == MC_PRIM_BODY_UNTIL_CLOSE:
            self._state = ST_UNTIL_CLOSE
        else:
            self._complete()
        if self._upgrade and self._state == ST_HEAD:
            self._state = ST_UPGRADED
            raise HttpParserUpgrade(offset)

    def feed_data(self, data):
        """Parses the next bytes: fires the protocol's callbacks for what
        they complete. HttpParseError when the proxy would refuse the bytes
        (sticky); HttpParserUpgrade(offset) once a message switches protocols
        (101 response, 2xx to CONNECT, Upgrade request, CONNECT): the bytes
        from offset on are the new protocol's, and the parser is done (a
        later feed_data raises HttpParserUpgrade(0))."""
        cdef const char *p
        cdef size_t n, pos = 0, buffered, take
        keep = _data(data, &p, &n)
        cdef const char *src
        cdef mc_prim_head_t h
        cdef int rc
        cdef ssize_t used
        cdef bytes out
        if self._state == ST_ERROR:
            raise self._error
        if self._state == ST_UPGRADED:
            raise HttpParserUpgrade(0)
        while pos < n:
            if self._state == ST_HEAD:
                buffered = len(self._buf)
                if buffered:
                    self._buf += p[pos:n]
                    src = <const char *>(<char *>self._buf)
                    rc = self._parse(src, len(self._buf), &h)
                else:
                    src = p + pos
                    rc = self._parse(src, n - pos, &h)
                if rc == -2:
                    if not buffered:
                        self._buf += p[pos:n]
                    return
                if rc == -1:
                    self._buf.clear()
                    self._fail(HttpParseError(h.error_reason.decode(), h.error_status,
                                              "DPE" if self._request else "UPE"))
                if self._on_message_begin is not None:
                    self._on_message_begin()
                self._deliver(src, rc, &h)
                pos += <size_t>rc - buffered
                if buffered:
                    self._buf.clear()
                self._headers_done(&h, pos)
            elif self._state == ST_LENGTH:
                take = n - pos if n - pos < self._remaining else <size_t>self._remaining
                if self._on_body is not None:
                    self._on_body(p[pos:pos + take])
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._complete()
            elif self._state == ST_CHUNKED:
                out = self._chunked._decode(p + pos, n - pos, &used)
                if out and self._on_body is not None:
                    self._on_body(out)
                if used < 0:
                    self._fail(self._chunked.error)
                pos += <size_t>used
                if self._chunked.done:
                    self._chunked = None
                    self._complete()
            elif self._state == ST_UNTIL_CLOSE:
                if self._on_body is not None:
                    self._on_body(p[pos:n])
                pos = n
            else:  # upgraded by this call's message
                raise HttpParserUpgrade(pos)

    def feed_eof(self):
        """The peer closed: completes a body that runs until close; an error
        when a message was cut short (the proxy's 400 / 502)."""
        if self._state == ST_UNTIL_CLOSE:
            self._complete()
        elif self._state in (ST_LENGTH, ST_CHUNKED) or (self._state == ST_HEAD and self._buf):
            self._fail(HttpParseError("connection closed before the message ended",
                                      400 if self._request else 502, "DPE" if self._request else "UPE"))

    def get_http_version(self):
        return "1.1" if self._minor else "1.0"

    def should_keep_alive(self):
        return bool(self._keep_alive)

    def should_upgrade(self):
        return bool(self._upgrade)


cdef class HttpRequestParser(_H1Parser):
    """httptools.HttpRequestParser's interface over the proxy's parser.

    protocol may define on_message_begin(), on_url(url), on_header(name,
    value), on_headers_complete(), on_body(body), on_message_complete()
    (bytes as sent). Limits default to the proxy's (60 KiB head, 8 KiB
    target, 100 header fields)."""
    cdef object _on_url
    cdef bytes _method

    def __init__(self, protocol, *, max_head_bytes=None, max_target_bytes=None, max_headers=None):
        self._setup(protocol, True, max_head_bytes, max_target_bytes, max_headers)
        self._on_url = getattr(protocol, "on_url", None)

    cdef int _parse(self, const char *p, size_t n, mc_prim_head_t *h) noexcept:
        return mc_prim_parse_request(p, n, &self._lim, self._fields, self._lim.max_headers, h)

    cdef _deliver(self, const char *p, int rc, mc_prim_head_t *h):
        cdef size_t i
        self._method = h.method[:h.method_len]
        self._upgrade = h.upgrade or h.connect
        if self._on_url is not None:
            self._on_url(h.target[:h.target_len])
        if self._on_header is not None:
            for i in range(h.n_fields):
                self._on_header(self._fields[i].name[:self._fields[i].name_len],
                                self._fields[i].value[:self._fields[i].value_len])

    def get_method(self):
        return self._method


cdef class HttpResponseParser(_H1Parser):
    """httptools.HttpResponseParser's interface over the proxy's parser;
    on_status(reason) instead of on_url. Set ``request_method`` to what
    the response answers (b"HEAD" and b"CONNECT" change its framing)."""
    cdef object _on_status
    cdef public bytes request_method
    cdef int _status

    def __init__(self, protocol, *, request_method=b"GET", max_head_bytes=None, max_headers=None):
        self._setup(protocol, False, max_head_bytes, None, max_headers)
        self._on_status = getattr(protocol, "on_status", None)
        self.request_method = _b(request_method)

    cdef int _parse(self, const char *p, size_t n, mc_prim_head_t *h) noexcept:
        return mc_prim_parse_response(p, n, &self._lim, self.request_method == b"HEAD",
                                      self.request_method == b"CONNECT", self._fields, self._lim.max_headers, h)

    cdef _deliver(self, const char *p, int rc, mc_prim_head_t *h):
        cdef size_t i
        self._status = h.status
        # 101, or a 2xx to CONNECT: the connection is a tunnel from here
        self._upgrade = h.upgrade or (self.request_method == b"CONNECT" and 200 <= h.status < 300)
        if self._on_status is not None:
            self._on_status(h.reason[:h.reason_len])
        if self._on_header is not None:
            for i in range(h.n_fields):
                self._on_header(self._fields[i].name[:self._fields[i].name_len],
                                self._fields[i].value[:self._fields[i].value_len])

    def get_status_code(self):
        return self._status

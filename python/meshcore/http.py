"""HTTP/1.1 parsing with the proxy's own parser (meshcore.http).

The C parser the sidecar runs (src/meshcore/http/h1_parser.c, with
h1_chunked.c for bodies): the same strictness and the same verdicts, so an
embedder refuses exactly what the proxy refuses (request smuggling shapes:
Content-Length with Transfer-Encoding, differing Content-Lengths, obs-fold,
lenient chunk sizes, bare LF...). Two shapes over it:

- ``HttpRequestParser(protocol)`` / ``HttpResponseParser(protocol)``: the
  callback interface of httptools (``feed_data``, ``on_url``, ``on_header``,
  ``on_headers_complete``, ``on_body``, ``on_message_complete``,
  ``get_method``, ``should_keep_alive``, ``HttpParserUpgrade``), so code
  written for httptools switches by changing its import. Callbacks were
  chosen for that drop-in: bodies and pipelined messages stream through
  without the caller keeping state. Unlike httptools, a head's callbacks
  fire together once the whole head has arrived and validated: no callback
  ever sees part of a head the proxy would refuse. Chunked trailer fields
  are validated, not delivered (httptools passes them to on_header), and
  there are no on_chunk_header/on_chunk_complete callbacks.
- ``parse_request(data)`` / ``parse_response(data)``: one head in, a
  ``Request`` / ``Response`` out (None while incomplete), for code that
  does its own buffering, plus ``ChunkedDecoder`` for bodies.

A refusal raises ``HttpParseError`` (``meshcore.errors``; ``HttpParserError``
here, as httptools names it) with the proxy's ``status`` (400, 414, 417,
431, 501, 505; 502 for a response), ``reason`` and access-log ``flag``.
"""
from meshcore._core import (
    ChunkedDecoder,
    HttpRequestParser,
    HttpResponseParser,
    Request,
    Response,
    parse_request,
    parse_response,
)
from meshcore.errors import HttpParseError, HttpParserUpgrade

HttpParserError = HttpParseError  # httptools' name

__all__ = ["ChunkedDecoder", "HttpParseError", "HttpParserError", "HttpParserUpgrade", "HttpRequestParser",
           "HttpResponseParser", "Request", "Response", "parse_request", "parse_response"]

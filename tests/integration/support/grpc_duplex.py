"""gRPC bidirectional calls for the tests: a grpcio server whose methods
answer message by message (service d.S), a request iterator fed one message
at a time, and the client loop that waits for each answer before it sends
the next message."""
from __future__ import annotations

import queue
import threading

import grpc

from .grpc_server import GrpcServer

MAX_MESSAGE = 8 << 20
OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)]


class Server(GrpcServer):
    """A grpcio server with bidirectional methods on service d.S."""

    def __init__(self, name="s", fail_first=False):
        self.name = name
        self.cancelled = threading.Event()
        self.calls = 0
        self.lock = threading.Lock()

        def echo(reqs, ctx):  # one answer per message, upper-cased
            with self.lock:
                self.calls += 1
            if fail_first:
                next(reqs, None)  # the first message arrived, then: refused
                ctx.abort(grpc.StatusCode.UNAVAILABLE, "down")
            for r in reqs:
                yield self.name.encode() + b":" + r.upper()

        def first_only(reqs, ctx):  # ends the call after the first message
            yield next(reqs)

        def then_stream(reqs, ctx):  # reads all, then answers 5 times
            got = list(reqs)
            for i in range(5):
                yield b"%d:%d" % (i, len(got))

        def watch(reqs, ctx):  # notices the client going away
            ctx.add_callback(self.cancelled.set)
            yield from reqs

        def size(reqs, ctx):  # answers each message with one of the size it asks
            for r in reqs:
                yield b"x" * int(r[:8]) + r[8:16]

        super().__init__("d.S", {
            name: grpc.stream_stream_rpc_method_handler(fn) for name, fn in
            (("Echo", echo), ("FirstOnly", first_only), ("ThenStream", then_stream), ("Watch", watch),
             ("Size", size))}, workers=40, options=OPTIONS)


class Pipe:
    """A request iterator fed one message at a time."""

    def __init__(self):
        self.q: queue.Queue = queue.Queue()

    def __iter__(self):
        while (item := self.q.get()) is not None:
            yield item

    def send(self, msg: bytes):
        self.q.put(msg)

    def close(self):
        self.q.put(None)


def ping_pong(ch, method, msgs, timeout=20):
    """Sends each message only after the answer to the previous one arrived."""
    pipe = Pipe()
    call = ch.stream_stream(method)(iter(pipe), timeout=timeout)
    answers = []
    for m in msgs:
        pipe.send(m)
        answers.append(next(call))
    pipe.close()
    assert list(call) == []
    return answers, call

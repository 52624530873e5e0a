"""A real grpcio server (h2c, 127.0.0.1) for the tests: the generic
handlers of one service, its own thread pool, and a stop that waits for
both. Each test's server subclass says only what its methods do."""
from __future__ import annotations

from concurrent import futures

import grpc


class GrpcServer:
    def __init__(self, service: str, handlers: dict, *, workers: int = 8, options=(), credentials=None):
        """handlers: method name -> grpc.*_rpc_method_handler(...); credentials:
        grpc.ssl_server_credentials for TLS, else plaintext."""
        self.pool = futures.ThreadPoolExecutor(workers)
        self.server = grpc.server(self.pool, options=list(options))
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        addr = "127.0.0.1:0"
        self.port = (self.server.add_secure_port(addr, credentials) if credentials
                     else self.server.add_insecure_port(addr))
        self.server.start()

    def stop(self):
        self.server.stop(0).wait()
        self.pool.shutdown(wait=True)

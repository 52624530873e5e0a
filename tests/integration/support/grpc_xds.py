"""Proxyless gRPC on the control plane: real grpcio servers and a real grpcio
client resolving `xds:///` targets, no sidecars.

    VersionServer("v1")                a gRPC server (127.0.0.1, port 0) whose one
                                       unary method answers its version
    write_bootstrap(path, xds, ...)    a GRPC_XDS_BOOTSTRAP file naming the control
                                       plane and the client's workload (node metadata)
    XdsClient(target, bootstrap, log)  the client in a subprocess (grpc reads the
                                       bootstrap at channel creation; a subprocess keeps
                                       it and gRPC's xDS state out of the test process):
                                       .ready(), .calls(n) -> {"counts", "failed", "errors"}

The client's script is this module run as a program (`python grpc_xds.py
TARGET`): it reads commands from stdin ("ready", a number of calls, "quit")
and answers each with one JSON line.
"""
from __future__ import annotations

import json
import subprocess
import sys
from concurrent import futures

import grpc

SERVICE, METHOD = "meshcore.test.Checkout", "Version"
PATH = f"/{SERVICE}/{METHOD}"


class VersionServer:
    """A gRPC server whose method answers `version` (bytes in, bytes out: no protoc)."""

    def __init__(self, version: str):
        self.version = version
        self.calls = 0
        self._pool = futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"grpc-{version}")
        self.server = grpc.server(self._pool)
        handler = grpc.unary_unary_rpc_method_handler(self._answer)
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {METHOD: handler}),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _answer(self, request, context):
        self.calls += 1
        return self.version.encode()

    def stop(self) -> None:
        self.server.stop(grace=None).wait(5)
        self._pool.shutdown(wait=True)


def write_bootstrap(path, xds_address: str, namespace: str, workload: str, node_id: str = "proxyless-1"):
    """gRPC's xDS bootstrap (gRFC A27): the control plane over an insecure channel, xDS v3,
    and the node Istio's proxyless bootstrap writes (metadata NAMESPACE, WORKLOAD_NAME, GENERATOR)."""
    doc = {"xds_servers": [{"server_uri": xds_address, "channel_creds": [{"type": "insecure"}],
                            "server_features": ["xds_v3"]}],
           "node": {"id": node_id, "locality": {},
                    "metadata": {"NAMESPACE": namespace, "WORKLOAD_NAME": workload, "GENERATOR": "grpc"}}}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    return path


class XdsClient:
    """The gRPC client as a subprocess with GRPC_XDS_BOOTSTRAP set."""

    def __init__(self, target: str, bootstrap, log_path):
        import os

        env = dict(os.environ, GRPC_XDS_BOOTSTRAP=str(bootstrap))
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, __file__, target], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1)

    def _ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the gRPC client exited ({self.proc.wait(5)}) answering {command!r}")
        return json.loads(line)

    def ready(self) -> dict:
        """One call that waits for the channel to resolve (xDS) and connect."""
        return self._ask("ready")

    def calls(self, n: int) -> dict:
        return self._ask(str(n))

    def close(self) -> int:
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            return self.proc.wait(timeout=15)
        except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
            self.proc.kill()
            return self.proc.wait(timeout=10)
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()
            self._log.close()


def _main(target: str) -> int:
    channel = grpc.insecure_channel(f"xds:///{target}")
    call = channel.unary_unary(PATH)
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        wait, n = (True, 1) if command == "ready" else (False, int(command))
        counts, errors = {}, []
        for _ in range(n):
            try:
                version = call(b"", timeout=30 if wait else 10, wait_for_ready=wait).decode()
            except grpc.RpcError as e:
                errors.append(f"{e.code().name}: {e.details()}")
                continue
            counts[version] = counts.get(version, 0) + 1
        print(json.dumps({"counts": counts, "failed": len(errors), "errors": errors[:5]}), flush=True)
    channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))

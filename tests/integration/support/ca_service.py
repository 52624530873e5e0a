"""The certificate service on a real gRPC server on loopback, in this process,
as the control plane registers it (CertificateService.register), and a
`meshcore agent` subprocess."""
from __future__ import annotations

import os
import pathlib
import subprocess
from concurrent import futures

import grpc

from meshcore import ca
from meshcore.controlplane.ca_service import CertificateService
from meshcore.controlplane.tokens import TokenStore, write_token_file

from .net import wait_until
from .proxy import meshcore_command


class CAService:
    """A CA directory, its token store and the certificate service on 127.0.0.1:<port>."""

    def __init__(self, tmp: pathlib.Path, intermediate: bool = True, key_type: str = "ec-p256"):
        self.tmp = pathlib.Path(tmp)
        self.ca_dir = self.tmp / "cadir"
        self.authority = ca.CertificateAuthority.init(str(self.ca_dir), "cluster.local", key_type=key_type,
                                                      intermediate=intermediate)
        self.tokens = TokenStore(str(self.ca_dir), self.authority)
        self.service = CertificateService(self.authority, self.tokens)
        self.port = 0
        self._server = self._executor = None

    def start(self) -> CAService:
        self._executor = futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="ca-svc")
        self._server = grpc.server(self._executor)
        self.service.register(self._server)
        self.port = self._server.add_insecure_port(f"127.0.0.1:{self.port}")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(0).wait()
            self._executor.shutdown(wait=True)
            self._server = self._executor = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def token_file(self, ns: str = "shop", sa: str = "api", ttl=None, name: str | None = None) -> str:
        path = self.tmp / (name or f"token-{ns}-{sa}.json")
        write_token_file(str(path), self.tokens.issue(ns, sa, ttl=ttl))
        return str(path)

    def ca_key_bytes(self) -> list[bytes]:
        return [p.read_bytes() for p in self.ca_dir.glob("*-key.pem")]


class AgentProcess:
    """`meshcore agent ...` with its output in a log file; ready when its SDS socket exists."""

    def __init__(self, target: str, token_file: str, socket_path: str, log_path: str, workload: str = "shop/api",
                 extra_args=()):
        self.socket_path = socket_path
        self.log_path = log_path
        self.args = ["--log-level", "info", "agent", "--xds", target, "--workload", workload, "--token",
                     token_file, "--sds-socket", socket_path, *extra_args]
        self.proc: subprocess.Popen | None = None

    def start(self, wait_ready: bool = True, timeout: float = 30.0) -> AgentProcess:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(meshcore_command() + self.args, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        if wait_ready:
            wait_until(lambda: os.path.exists(self.socket_path) or self.proc.poll() is not None, timeout=timeout)
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited {self.proc.returncode}: {self.log()}")
        return self

    def log(self) -> str:
        return pathlib.Path(self.log_path).read_text(errors="replace")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

"""ControlPlane: the config store, the views, the ADS service and the status
page, together.

    cp = ControlPlane("mesh/", "ca/", listen="127.0.0.1:0", status="127.0.0.1:0")
    cp.start()            # ConfigError if the config or the CA cannot be used
    cp.port, cp.status_port
    cp.stop()

Threads: one asyncio loop (`mc-cp-grpc`) runs the gRPC server (grpc.aio) and
every ADS stream; the store's watcher (`mc-cp-watch`) and the pusher
(`mc-cp-push`) translate off the loop and hand each new Snapshot to it; the
status page has its own thread (`mc-cp-status`).

extra_services: callables `hook(grpc_server)` run before the server starts,
to add other services on the same port (the certificate service). The server
is a grpc.aio server made with a `migration_thread_pool`, so a servicer
written for the synchronous API (plain `def` methods) works unchanged; an
`async def` servicer runs on the loop.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time

from meshcore.errors import ConfigError

from .pusher import DEFAULT_WINDOW, Pusher, PushStats
from .store import DEFAULT_POLL_INTERVAL, DirectoryStore

log = logging.getLogger("meshcore.controlplane")

DEFAULT_LISTEN = "127.0.0.1:15010"  # istiod's plaintext xDS port
DEFAULT_STATUS = "127.0.0.1:15014"  # istiod's monitoring port


def split_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"address {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


class ControlPlane:
    def __init__(self, mesh_dir: str | None, ca_dir: str, listen: str = DEFAULT_LISTEN,
                 status: str | None = DEFAULT_STATUS, *, store=None, poll_interval: float = DEFAULT_POLL_INTERVAL,
                 window: float = DEFAULT_WINDOW, root_namespace: str | None = None, extra_services=(),
                 workers: int = 4):
        self.store = store if store is not None else DirectoryStore(mesh_dir, poll_interval)
        self.ca_dir = ca_dir
        self.listen, self.status_address = listen, status
        self.window, self.root_namespace = window, root_namespace
        self.extra_services = list(extra_services)
        self.workers = workers
        self.stats = PushStats()
        self.ca = None
        self.certificates = None
        self.pusher: Pusher | None = None
        self.ads = None
        self.port: int | None = None
        self.status_port: int | None = None
        self.started_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._grpc = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._status = None

    # -- lifecycle

    def start(self) -> None:
        from meshcore.ca import CertificateAuthority
        from meshcore.translate import Security

        from .ads import AdsServicer
        from .ca_service import CertificateService
        from .tokens import TokenStore
        from .views import Rejected

        self.ca = CertificateAuthority.load(self.ca_dir)
        # The certificate service shares the xDS port (Istio's istiod serves both on one port).
        self.certificates = CertificateService(self.ca, TokenStore(self.ca_dir, authority=self.ca))
        kw = {"trust_domain": self.ca.trust_domain}
        if self.root_namespace:
            kw["root_namespace"] = self.root_namespace
        bundle = self.ca.trust_bundle_pem
        bundle = bundle.decode() if isinstance(bundle, bytes) else bundle
        self.pusher = Pusher(self.store, Security(**kw), bundle, self._publish, self.stats, self.window)
        try:
            self.pusher.rebuild(initial=True)
        except Rejected as e:
            raise ConfigError(f"{self.store}: " + "\n  ".join([f"config {e.version} has errors:", *e.reasons])) \
                from None
        self.ads = AdsServicer(lambda: self.pusher.current, self.stats)
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="mc-cp-grpc", daemon=True)
        self._loop_thread.start()
        try:
            self.port = self._call(self._start_grpc())
            if self.status_address:
                from .status import StatusServer

                self._status = StatusServer(split_address(self.status_address), self.describe, self.ready)
                self.status_port = self._status.port
                self._status.start()
        except BaseException:
            self.stop()
            raise
        self.pusher.start()
        self.started_at = time.time()
        log.info("control plane: xDS on %s:%d, status on %s, config %s", split_address(self.listen)[0], self.port,
                 f"port {self.status_port}" if self._status else "none", self.pusher.current.version)

    async def _start_grpc(self) -> int:
        import grpc
        from envoy.service.discovery.v3 import ads_pb2_grpc

        self._pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="mc-cp-rpc")
        server = grpc.aio.server(migration_thread_pool=self._pool)
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(self.ads, server)
        self.certificates.register(server)
        for hook in self.extra_services:
            hook(server)
        try:
            port = server.add_insecure_port(self.listen)
        except RuntimeError as e:
            raise ConfigError(f"--listen {self.listen}: cannot bind ({e})") from None
        if not port:
            raise ConfigError(f"--listen {self.listen}: cannot bind")
        await server.start()
        self._grpc = server
        return port

    def _call(self, coro, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self, grace: float = 0.5) -> None:
        if self.pusher is not None:
            self.pusher.stop()
        if self._status is not None:
            self._status.stop()
            self._status = None
        if self._loop is not None and self._loop_thread is not None:
            if self._grpc is not None:
                try:
                    self._call(self._grpc.stop(grace), timeout=grace + 5)
                except Exception as e:  # stopping anyway
                    log.debug("grpc stop: %s", e)
                self._grpc = None
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join(timeout=5)
            self._loop_thread = None
            self._loop.close()
            self._loop = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # -- pushes and status

    def _publish(self, snapshot, detected) -> None:
        """The pusher thread: hand a new Snapshot to the loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.ads.publish, snapshot, detected)

    def ready(self) -> bool:
        return self.pusher is not None and self.pusher.current is not None and self._grpc is not None

    def describe(self) -> dict:
        """The /debug/syncz dict (docs/control-plane.md)."""
        async def proxies():
            return self.ads.describe()

        current = self.pusher.current
        return {"config": {"version": current.version if current else None,
                           "built_at": current.built_at if current else None,
                           "workloads": sorted(current.views) if current else [],
                           "warnings": current.warnings if current else [],
                           "rejected": list(self.pusher.rejected),
                           "last_rejected_version": self.pusher.last_rejected_version},
                "counters": self.stats.describe(),
                "certificates": self.certificates.status() if self.certificates is not None else {},
                "proxies": self._call(proxies(), timeout=5) if self._loop is not None else [],
                "started_at": self.started_at}

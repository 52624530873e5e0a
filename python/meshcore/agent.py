"""`meshcore agent`: istio-agent's part for a real Envoy.

    meshcore agent --xds HOST:PORT --workload NS/NAME --token FILE --sds-socket PATH

makes the workload's key (in memory; it is never written anywhere), gets its
certificate from the control plane's certificate service by CSR,
authenticated by the bootstrap token, renews it at half its lifetime with
the current certificate (meshcore.xds.ca_client.CertificateKeeper), and
serves it to Envoy over SDS on a Unix socket (meshcore.xds.sds), with
Istio's secret names: `default` and `ROOTCA`. Each renewal is pushed as a
new version. The socket appears once the first certificate is there: Envoy
(or a test) can wait for it.

With --envoy-bootstrap PATH it also writes the Envoy sidecar's bootstrap, as
istio-agent does (meshcore.envoy_bootstrap; node id from --ip, metadata from
the workload, the token's service account and --label): written at start,
before the first certificate, so Envoy can be started at once (its SDS
cluster retries until the socket is there).
"""
from __future__ import annotations

import logging
import signal
import threading

from meshcore.errors import ConfigError

log = logging.getLogger("meshcore.agent")


class Agent:
    def __init__(self, xds: str, workload: str, token_file: str, sds_socket: str, ttl=None,
                 wait: float = 30.0, renew_fraction: float = 0.5, envoy_bootstrap: dict | None = None):
        from meshcore.xds.ca_client import CertificateClient

        namespace, _, self.name = workload.rpartition("/")
        self.client = CertificateClient(xds, token_file=token_file, ttl=ttl)
        if namespace and namespace != self.client.namespace:
            self.client.close()
            raise ConfigError(f"{token_file}: the token is for namespace {self.client.namespace!r}, "
                              f"but --workload is in {namespace!r}")
        self.sds_socket = sds_socket
        self.namespace = namespace or self.client.namespace
        # {"path": ..., "ip": ..., "labels": {...}, "mode": "delta"|"sotw"} or None
        self.envoy_bootstrap = envoy_bootstrap
        self.wait = wait
        self.renew_fraction = renew_fraction
        self.keeper = None
        self.sds = None
        self._stop = threading.Event()

    def start(self) -> None:
        from meshcore.xds.ca_client import CertificateKeeper
        from meshcore.xds.sds import SecretServer

        if self.envoy_bootstrap:
            self.write_envoy_bootstrap()
        self.sds = SecretServer()
        self.keeper = CertificateKeeper(self.client, on_change=self.sds.update, renew_fraction=self.renew_fraction)
        try:
            cert = self.keeper.start(wait=self.wait)
            self.sds.update(cert)
            self.sds.start(self.sds_socket)
        except BaseException:
            self.keeper.stop()
            raise
        log.info("agent for %s (%s): serving %s over SDS on %s", self.name, cert.spiffe_id,
                 cert.describe(), self.sds_socket)

    def write_envoy_bootstrap(self) -> None:
        from meshcore import envoy_bootstrap

        opts = self.envoy_bootstrap
        config = envoy_bootstrap.bootstrap(
            xds=self.client.target, namespace=self.namespace, name=self.name,
            service_account=self.client.service_account, ip=opts.get("ip") or "127.0.0.1",
            sds_socket=self.sds_socket, labels=opts.get("labels"), mode=opts.get("mode") or "delta")
        envoy_bootstrap.write(opts["path"], config)
        log.info("Envoy bootstrap for %s/%s written to %s (node %s)", self.namespace, self.name, opts["path"],
                 config["node"]["id"])

    def serve_forever(self) -> None:
        """Until SIGTERM or SIGINT (or stop())."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stop.set())
        self._stop.wait()
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self.keeper is not None:
            self.keeper.stop()
        if self.sds is not None:
            self.sds.stop()

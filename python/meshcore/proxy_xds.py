"""`meshcore proxy --xds HOST:PORT --workload NS/NAME`: a sidecar fed by a control plane.

The proxy starts with no config: the engine runs, the admin API answers
(/ready 503 PRE_INITIALIZING), then

1. the certificate: a keeper (meshcore.xds.ca_client.CertificateKeeper) makes
   the key here, gets the certificate by CSR from the control plane
   (authenticated by --token the first time) and renews it; `start()` blocks
   until the first one arrives;
2. the config: an ADS stream (meshcore.xds.client.XdsClient) delivers
   listeners, routes, clusters and endpoints; each complete set is put
   together with the proxy's own Secrets (`default`, `ROOTCA`) and applied as
   a new snapshot, exactly as file mode applies a file.

/ready answers 200 once both are there. A renewed certificate re-applies the
running config with the new Secrets (new handshakes use it; connections
stay). When the control plane is gone the proxy keeps serving what it has and
reconnects with back-off. /config_dump shows the dynamic resources with their
versions (admin/xds_dump.py); /stats adds the client's counters
(xds.<type>.update_success|update_rejected|update_warming,
control_plane.connected_state).

The certificate source is a seam: `certificates(on_change) -> keeper`, the
keeper having `.start(wait)` (seconds to wait for a control plane not up yet),
`.current` (whose `.secrets()` gives the two Secret dicts, as
meshcore.certs.Certificate) and `.stop()`.
"""
from __future__ import annotations

import logging

from meshcore import __version__
from meshcore.admin import AdminContext, AdminServer
from meshcore.errors import ConfigError, EngineError
from meshcore.proxy import DEFAULT_ADMIN

log = logging.getLogger("meshcore.proxy")


def parse_target(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"--xds {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def certificate_service(target: str, token_file: str | None, namespace: str, service_account: str, ttl=None):
    """The default certificate source: the control plane's certificate service."""
    def make(on_change):
        try:
            from meshcore.xds.ca_client import CertificateClient, CertificateKeeper
        except ImportError as e:
            raise EngineError(f"no certificate service client in this build ({e})") from None
        client = CertificateClient(target, token_file=token_file, namespace=namespace,
                                   service_account=service_account, ttl=ttl)
        return CertificateKeeper(client, on_change)
    return make


class XdsSource:
    """What `Proxy(xds=...)` runs: the certificate keeper and the ADS client.

    mode: "delta" (default) or "sotw". certificates: a keeper factory (default:
    the certificate service at target). backoff: a meshcore.xds.client.Backoff."""

    def __init__(self, target: str, *, mode: str = "delta", token_file: str | None = None,
                 service_account: str | None = None, labels: dict | None = None, certificates=None,
                 backoff=None, node_ip: str | None = None, cert_ttl=None, cert_wait: float = 30.0):
        self.host, self.port = parse_target(target)
        self.target = target
        self.mode = mode
        self.token_file = token_file
        self.service_account = service_account or _token_service_account(token_file) or "default"
        self.labels = dict(labels or {})
        self.node_ip = node_ip
        self.cert_ttl = cert_ttl
        self.cert_wait = cert_wait  # how long the first certificate may wait for the control plane
        self._certificates = certificates
        self._backoff = backoff
        self.keeper = None
        self.client = None
        self.base = None
        self.proxy = None
        self.rotations = 0

    # -- start / stop ----------------------------------------------------------------------

    def start(self, proxy) -> None:
        from meshcore.xds import client as xc

        if self.mode not in (xc.DELTA, xc.SOTW):
            raise ConfigError(f"--xds-mode {self.mode!r}: expected delta or sotw")
        self.proxy = proxy
        ns, _, name = proxy.workload.rpartition("/")
        ip = self.node_ip or xc.local_ip_towards(self.host, self.port)
        node = xc.node(f"{ns}/{name}", ip, self.service_account, self.labels)
        host, port = proxy._admin_override or DEFAULT_ADMIN
        self.base = self._base(node, host, port)
        proxy.engine.start()
        try:
            ctx = AdminContext(proxy.engine, reload=None, quit=proxy.request_stop, counters=self._counters,
                               version=f"meshcore/{__version__}", not_ready=self._not_ready, dumps=self._dumps)
            try:
                proxy.admin = AdminServer(ctx, host, port).start()
            except OSError as e:
                raise EngineError(f"admin API: cannot listen on {host}:{port}: {e.strerror}") from None
            log.info("admin API on http://%s:%d/ (%d workers)", *proxy.admin.address, proxy.engine.concurrency)
            make = self._certificates or certificate_service(self.target, self.token_file, ns,
                                                              self.service_account, self.cert_ttl)
            self.keeper = make(self._on_certificate)
            self.keeper.start(wait=self.cert_wait)  # blocks until the first certificate
            log.info("certificate: %s", _describe(self.keeper.current))
            self.client = xc.XdsClient(self.target, node, self._apply, self._secrets, base=self.base,
                                       mode=self.mode, token_file=self.token_file,
                                       backoff=self._backoff, apply_endpoints=self._apply_endpoints).start()
            log.info("xDS: %s to %s as %s", self.mode, self.target, node.id)
        except BaseException:
            self.stop()
            if proxy.admin:
                proxy.admin.stop()
            proxy.engine.stop()
            raise

    def stop(self) -> None:
        if self.client is not None:
            self.client.stop()
        if self.keeper is not None:
            self.keeper.stop()

    def _base(self, node, admin_host, admin_port):
        """The Bootstrap this proxy starts from: its node and admin address, and
        (for /config_dump only) the ADS source its dynamic resources come from."""
        from envoy.config.bootstrap.v3 import bootstrap_pb2
        from google.protobuf import json_format

        b = bootstrap_pb2.Bootstrap()
        b.node.CopyFrom(node)
        b.admin.address.socket_address.address = admin_host
        b.admin.address.socket_address.port_value = admin_port
        ads = {"ads": {}, "resource_api_version": "V3"}
        json_format.ParseDict({
            "ads_config": {"api_type": "DELTA_GRPC" if self.mode == "delta" else "GRPC",
                           "transport_api_version": "V3",
                           "grpc_services": [{"google_grpc": {"target_uri": self.target, "stat_prefix": "ads"}}]},
            "cds_config": ads, "lds_config": ads}, b.dynamic_resources)
        return b

    # -- the client's and the keeper's callbacks ---------------------------------------------

    def _secrets(self):
        cert = self.keeper.current if self.keeper is not None else None
        return cert.secrets() if cert is not None else ()

    def _apply(self, bootstrap) -> None:
        proxy = self.proxy
        before = {n for n, _, _ in proxy.engine.listeners()}
        with proxy._reload_lock:
            proxy.engine.apply(bootstrap, f"xds:{self.target}", drained_ok=True)
            proxy._last_bootstrap = proxy.engine.bootstrap
        for lname, addr, _ in proxy.engine.listeners():
            if lname not in before:
                log.info("listener %s on %s", lname, addr)

    def _apply_endpoints(self, endpoints: dict) -> None:
        """An EDS-only update: the clusters' endpoints replaced in place of a full
        apply (Engine.set_endpoints_many; same checks, same errors)."""
        with self.proxy._reload_lock:  # (_last_bootstrap is for certificate files: endpoints do not touch them)
            self.proxy.engine.set_endpoints_many(endpoints)

    def _on_certificate(self, *_) -> None:
        """A new certificate: the running config again, with the new Secrets."""
        if self.client is None:
            return  # the first one: the client starts with it
        counters = self.proxy._counters
        if self.client.refresh("certificate renewed"):
            self.rotations += 1
            counters["server.certificate_rotations"] += 1
            for name in ("default", "ROOTCA"):
                counters[f"sds.{name}.update_success"] = counters.get(f"sds.{name}.update_success", 0) + 1
            log.info("certificate rotated: %s", _describe(self.keeper.current))
        else:
            counters["server.certificate_rotation_failures"] += 1

    # -- admin --------------------------------------------------------------------------------

    def _not_ready(self) -> str | None:
        if self.keeper is None or self.keeper.current is None:
            return "PRE_INITIALIZING"  # no certificate yet
        if self.client is None or not self.client.ready:
            return "PRE_INITIALIZING"  # no complete config yet
        return None

    def _counters(self) -> dict:
        out = dict(self.proxy._counters)
        if self.client is not None:
            out.update(self.client.stats())
        return out

    def _dumps(self) -> list:
        from meshcore.admin.xds_dump import xds_dumps

        if self.client is None:
            return []
        return xds_dumps(self.client, self.base, self.proxy.engine)


def _token_service_account(token_file: str | None) -> str | None:
    """The identity a bootstrap token is for: the sidecar's service account unless --service-account says."""
    if not token_file:
        return None
    from meshcore.controlplane.tokens import read_token_file

    return read_token_file(token_file).get("service_account")  # ConfigError naming the file


def _describe(cert) -> str:
    describe = getattr(cert, "describe", None)
    return describe() if describe else repr(cert)

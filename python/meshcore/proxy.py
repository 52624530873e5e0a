"""`meshcore proxy`: a sidecar run from a static config.

Three sources: `-c FILE`, an Envoy v3 bootstrap file; `--mesh-dir DIR
--workload NAMESPACE/NAME`, a directory of Istio YAML translated for one
workload (meshcore.translate; the directory is polled for changes every
half second); or `--xds HOST:PORT --workload NAMESPACE/NAME`, a control
plane over ADS (meshcore.xds.client), the certificate by CSR from the
certificate service (proxy_xds.py). Owns one Engine, the admin API and the source: SIGHUP, POST
/reload or (mesh directory) a changed file re-read it; a bad config is
rejected (logged, counted in server.config_reload_rejected) and the running
snapshot keeps serving. SIGTERM, SIGINT or POST /quitquitquit stop
gracefully: listeners close, connections get drain_timeout seconds to
finish, then the process exits.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time

from meshcore import __version__
from meshcore.admin import AdminContext, AdminServer
from meshcore.config import load_bootstrap
from meshcore.engine import Engine
from meshcore.errors import ConfigError, EngineError

log = logging.getLogger("meshcore.proxy")

DEFAULT_ADMIN = ("127.0.0.1", 15000)


def parse_address(text: str) -> tuple[str, int]:
    """"host:port" or "[v6]:port" -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"admin address {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


MESH_POLL_INTERVAL = 0.5  # seconds between looks at a mesh directory


def dir_signature(directory) -> tuple:
    """What changes when a mesh directory's YAML changes: each file's path,
    inode, size and mtime (an editor's rename-into-place changes the inode)."""
    from meshcore.translate.model import mesh_files  # mesh mode only: -c mode does not load the translator

    out = []
    for path in mesh_files(directory):
        try:
            st = os.stat(path)
        except OSError:
            continue
        out.append((path, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


class Proxy:
    """config_path: an Envoy bootstrap file; or mesh_dir + workload: a mesh directory;
    or xds + workload: a control plane (see XdsSource in proxy_xds.py for its options)."""

    def __init__(self, config_path: str | None = None, concurrency: int = 0, admin_address: str | None = None,
                 drain_timeout: float = 5.0, splice: str = "auto", *, mesh_dir: str | None = None,
                 workload: str | None = None, outbound_address: str = "127.0.0.1",
                 poll_interval: float = MESH_POLL_INTERVAL, ca_dir: str | None = None, cert_ttl=None,
                 root_namespace: str | None = None, trust_domain: str | None = None, xds=None):
        if sum(x is not None for x in (config_path, mesh_dir, xds)) != 1:
            raise ConfigError("give exactly one of a config file (-c), a mesh directory (--mesh-dir) "
                              "or a control plane (--xds)")
        if (mesh_dir is not None or xds is not None) and not workload:
            raise ConfigError(f"{'--mesh-dir' if mesh_dir is not None else '--xds'} needs --workload NAMESPACE/NAME")
        self.xds = xds  # an XdsSource (proxy_xds.py)
        if ca_dir is not None and mesh_dir is None:
            raise ConfigError("--ca-dir applies to --mesh-dir (with -c, the config's Secrets name the files)")
        # Certificates (certs.py): from a CA in mesh mode, from the config's files with -c.
        self.ca_dir, self.cert_ttl = ca_dir, cert_ttl
        self.root_namespace, self.trust_domain = root_namespace, trust_domain
        self._provisioner = None
        self._renewer = None
        self._last_bootstrap = None  # the Bootstrap last applied (a renewal swaps its Secrets)
        self._translation = None  # mesh mode: the Translation _load made last
        self._cert_files: list[str] = []
        self._cert_signature: tuple = ()
        self._cert_pending: tuple | None = None  # a change seen once, waiting to settle
        self.config_path = config_path
        self.mesh_dir = mesh_dir
        self.workload = workload
        self.outbound_address = outbound_address
        self.poll_interval = poll_interval
        self.drain_timeout = drain_timeout
        self.engine = Engine(concurrency=concurrency, splice=splice)
        self._admin_override = parse_address(admin_address) if admin_address else None
        self._reload_lock = threading.Lock()
        self._counters = {"server.config_reload_success": 0, "server.config_reload_rejected": 0,
                          "server.certificate_rotations": 0, "server.certificate_rotation_failures": 0}
        self._stop_requested = False
        self._reload_requested = False
        self._warnings: set[str] = set()
        self._watch_stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._signature: tuple = ()
        self.admin = None

    @property
    def source(self) -> str:
        """What the config is read from, for log lines."""
        if self.xds is not None:
            return f"xDS {self.xds.target} (workload {self.workload})"
        if self.mesh_dir is not None:
            return f"{self.mesh_dir} (workload {self.workload})"
        return self.config_path

    def _security(self):
        from meshcore.translate import Security

        kw = {"require_certificates": True}
        if self.root_namespace:
            kw["root_namespace"] = self.root_namespace
        if self._provisioner is not None:
            kw["trust_domain"] = self._provisioner.trust_domain
            kw["secrets"] = self._provisioner.current.secrets()
        elif self.trust_domain:
            kw["trust_domain"] = self.trust_domain
        return Security(**kw)

    def _translate(self):
        """The workload's Translation, its certificate issued (or re-issued for a new
        service account) first when the proxy has a CA."""
        import dataclasses

        from meshcore.translate import sidecar_translation  # only mesh mode pays for the import

        def run(require=True):
            sec = dataclasses.replace(self._security(), require_certificates=require)
            return sidecar_translation(self.mesh_dir, self.workload, self.outbound_address, sec)

        if self.ca_dir is not None:
            first, _ = run(require=False)  # who the workload is: its namespace and service account
            sa = first.workload.service_account or "default"
            if self._provisioner is None or self._provisioner.service_account != sa:
                from meshcore.certs import Provisioner

                self._provisioner = Provisioner.from_dir(self.ca_dir, first.workload.namespace, sa, self.cert_ttl)
                log.info("certificate issued: %s", self._provisioner.issue().describe())
        return run()

    def _load(self):
        """(Bootstrap, name for errors) from the source; ConfigError if it is bad."""
        if self.mesh_dir is None:
            return load_bootstrap(self.config_path), os.path.basename(self.config_path)
        result, warnings = self._translate()
        self._translation = result
        bootstrap = result.bootstrap
        current = {str(w) for w in warnings}
        for w in warnings:  # each warning once, not again at every reload
            if str(w) not in self._warnings:
                log.warning("%s", w)
        self._warnings = current
        return bootstrap, os.path.basename(os.path.normpath(self.mesh_dir))

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Loads the config and starts serving; ConfigError/EngineError if it cannot."""
        if self.xds is not None:
            return self.xds.start(self)
        if self.mesh_dir is not None:
            if not os.path.isdir(self.mesh_dir):
                raise ConfigError(f"{self.mesh_dir}: not a directory")
            self._signature = dir_signature(self.mesh_dir)  # before reading: a change meanwhile is seen
        bootstrap, name = self._load()
        self.engine.start()
        try:
            self.engine.apply(bootstrap, name)
            self._last_bootstrap = self.engine.bootstrap
            self._adopt_peers()
            host, port = self._admin_address(bootstrap)
            ctx = AdminContext(self.engine, reload=self.reload, quit=self.request_stop,
                               counters=lambda: dict(self._counters), version=f"meshcore/{__version__}")
            try:
                self.admin = AdminServer(ctx, host, port).start()
            except OSError as e:
                raise EngineError(f"admin API: cannot listen on {host}:{port}: {e.strerror}") from None
        except BaseException:
            self.engine.stop()
            raise
        for lname, addr, _ in self.engine.listeners():
            log.info("listener %s on %s", lname, addr)
        if self.mesh_dir is not None:
            self._watcher = threading.Thread(target=self._watch, name="mesh-dir-watch", daemon=True)
            self._watcher.start()
        self._start_certificate_rotation()
        log.info("admin API on http://%s:%d/ (%d workers)", *self.admin.address, self.engine.concurrency)

    def _watch(self) -> None:
        """Polls the mesh directory; a change (file added, removed, rewritten) reloads."""
        while not self._watch_stop.wait(self.poll_interval):
            try:
                signature = dir_signature(self.mesh_dir)
            except OSError as e:
                log.error("cannot read %s: %s", self.mesh_dir, e)
                continue
            if signature != self._signature:
                self._signature = signature
                log.info("%s changed", self.mesh_dir)
                self.reload()

    def _adopt_peers(self) -> None:
        """Mesh mode, after a translation was applied: the mesh's workloads by principal, for
        Istio's metrics labels of peers that sent no metadata (TCP, plaintext)."""
        if self._translation is None:
            return
        from meshcore.telemetry.istio_metrics import Workload

        self.engine.istio.peers = {p: Workload.from_metadata(md) for p, md in self._translation.peers.items()}

    def _admin_address(self, bootstrap) -> tuple[str, int]:
        if self._admin_override:
            return self._admin_override
        if bootstrap.HasField("admin") and bootstrap.admin.address.HasField("socket_address"):
            sa = bootstrap.admin.address.socket_address
            return sa.address, sa.port_value
        return DEFAULT_ADMIN

    def reload(self) -> tuple[bool, str]:
        """Re-reads the config; the old snapshot stays on any error."""
        if self.xds is not None:
            return False, "the config comes from the control plane (xDS); nothing to re-read"
        with self._reload_lock:
            try:
                if self.mesh_dir is None:
                    self.engine.apply(self.config_path, drained_ok=True)
                else:
                    self.engine.apply(*self._load(), drained_ok=True)
            except (ConfigError, EngineError) as e:
                log.error("config reload rejected, keeping the running config: %s", e)
                self._counters["server.config_reload_rejected"] += 1  # after the log line: a test waits on it
                return False, f"rejected: {e}"
            except Exception as e:  # a translator bug must not take the running proxy down
                if self.mesh_dir is None:
                    raise
                log.exception("config reload failed, keeping the running config")
                self._counters["server.config_reload_rejected"] += 1
                return False, f"rejected: internal error: {e}"
            self._last_bootstrap = self.engine.bootstrap
            if self.mesh_dir is None:
                self._watch_certificate_files()
            else:
                self._adopt_peers()
            log.info("config reloaded from %s", self.source)
            self._counters["server.config_reload_success"] += 1
            return True, "reloaded"

    def request_stop(self) -> None:
        # Plain attribute writes only: this runs in signal handlers too.
        self._stop_requested = True

    def _on_hup(self, signum, frame):
        self._reload_requested = True

    def _on_term(self, signum, frame):
        self._stop_requested = True

    def serve_forever(self) -> None:
        """Main thread: handles signals until asked to stop, then drains."""
        signal.signal(signal.SIGHUP, self._on_hup)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        while not self._stop_requested:
            time.sleep(0.1)
            if self._reload_requested:
                self._reload_requested = False
                self.reload()
        self.shutdown()

    # -- certificates (certs.py) ------------------------------------------------

    def _start_certificate_rotation(self) -> None:
        from meshcore.certs import Renewer

        if self._provisioner is not None:
            self._renewer = Renewer(lambda: self._provisioner.current.renew_at,
                                    lambda: self.rotate_certificates("renewal"), name="cert-renewer").start()
            return
        if self.mesh_dir is None:
            self._watch_certificate_files()
            if self._cert_files:
                self._renewer = Renewer(lambda: time.time() + self.poll_interval, self._poll_certificate_files,
                                        name="cert-file-watch").start()

    def _watch_certificate_files(self) -> None:
        from meshcore.certs import data_source_files, files_signature

        if self._last_bootstrap is not None:
            self._cert_files = data_source_files(self._last_bootstrap)
            self._cert_signature = files_signature(self._cert_files)

    def _poll_certificate_files(self) -> bool:
        from meshcore.certs import files_signature

        signature = files_signature(self._cert_files)
        if signature == self._cert_signature:
            self._cert_pending = None
            return True
        if signature != self._cert_pending:
            # A writer (`meshcore ca issue`, a Secret volume update) may be
            # between its files: rotate once they have stayed unchanged for a
            # poll interval, so that one rewrite is one rotation.
            self._cert_pending = signature
            return True
        self._cert_pending = None
        log.info("certificate files changed: %s", ", ".join(
            p for (p, *a), (_, *b) in zip(signature, self._cert_signature, strict=False) if a != b))
        return self.rotate_certificates("files changed")

    def rotate_certificates(self, reason: str) -> bool:
        """The one rotation hook: with a CA, issue a new certificate and re-apply the last
        config with the new Secrets; with -c, re-apply the config file, which reads the
        certificate files anew. The running config stays on any failure."""
        from meshcore.certs import certificate_pairs, check_pair, files_signature

        with self._reload_lock:
            try:
                if self._provisioner is not None:
                    cert = self._provisioner.issue()
                    bootstrap = type(self._last_bootstrap)()
                    bootstrap.CopyFrom(self._last_bootstrap)
                    from google.protobuf import json_format

                    del bootstrap.static_resources.secrets[:]
                    for secret in cert.secrets():
                        json_format.ParseDict(secret, bootstrap.static_resources.secrets.add())
                    self.engine.apply(bootstrap, self.engine.source, drained_ok=True)
                    described = cert.describe()
                    after = max(0.0, cert.renew_at - time.time())
                    secrets = [s["name"] for s in cert.secrets()]
                else:
                    signature = files_signature(self._cert_files)
                    bootstrap = load_bootstrap(self.config_path)
                    leaves = [check_pair(c, k) for c, k in certificate_pairs(bootstrap)]
                    self.engine.apply(bootstrap, os.path.basename(self.config_path), drained_ok=True)
                    self._cert_signature = signature
                    self._cert_files = __import__("meshcore.certs").certs.data_source_files(bootstrap)
                    described = ", ".join(f"serial {leaf.serial_number:x}, valid until "
                                          f"{leaf.not_valid_after_utc.isoformat(timespec='seconds')}"
                                          for leaf in leaves) or "trust bundle"
                    after = None
                    secrets = [s.name for s in bootstrap.static_resources.secrets]
            except (ConfigError, EngineError) as e:
                self._counters["server.certificate_rotation_failures"] += 1
                log.error("certificate rotation (%s) failed, keeping the running config: %s", reason, e)
                return False
            self._last_bootstrap = self.engine.bootstrap
            self._counters["server.certificate_rotations"] += 1
            for name in secrets:
                key = f"sds.{name}.update_success"
                self._counters[key] = self._counters.get(key, 0) + 1
            log.info("certificate rotated (%s): %s%s", reason, described,
                     f"; next renewal in {after:.1f}s" if after is not None else "")
            return True

    def shutdown(self) -> None:
        self._watch_stop.set()
        if self.xds is not None:
            self.xds.stop()
        if self._renewer is not None:
            self._renewer.stop()
        if self._watcher is not None:
            self._watcher.join(timeout=30)
        log.info("draining: listeners closed, connections have %.1fs to finish", self.drain_timeout)
        if self.admin:
            self.admin.ctx.draining = True
        self.engine.stop(self.drain_timeout)
        if self.admin:
            self.admin.stop()
        log.info("stopped")

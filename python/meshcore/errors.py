"""Exceptions raised by meshcore. Plain classes, no behaviour (STYLE.md).

Every bad argument is an InvalidArgumentError (a ValueError); every refusal
of the engine an EngineError; ConfigError for a rejected configuration."""


class MeshcoreError(Exception):
    """Base class for every error meshcore raises on purpose."""


class ConfigError(MeshcoreError):
    """A configuration was rejected.

    The message names the file, the resource and the field path, e.g.
    ``l4.yaml: listener "ingress": filter_chains[0].filters[0]: unsupported
    filter envoy.filters.network.redis_proxy``. A rejected config is never
    applied; whatever was running keeps running.
    """


class EngineError(MeshcoreError):
    """The data-plane engine refused an operation (bind failure, not started...)."""


class CAError(MeshcoreError):
    """The CA cannot do what was asked: no CA in a directory, a CA already
    there, an expired or inconsistent signing certificate, an unwritable file."""


class CSRRejected(CAError):
    """A certificate signing request was refused; the message says which rule it broke."""


class InvalidArgumentError(MeshcoreError, ValueError):
    """A call got an argument it cannot use (``Engine(concurrency=-1)``,
    ``splice="fast"``, a negative drain timeout...); the message names it."""


class EngineStateError(EngineError):
    """The engine's lifecycle forbids the call: ``start()`` or ``apply()``
    after ``stop()``, ``apply()`` after ``drain_listeners()``. An Engine runs
    once; create a new one."""


class UnknownListenerError(EngineError, LookupError):
    """A listener name the running config does not have; the message lists the known ones."""


class MissingExtraError(MeshcoreError, ImportError):
    """A feature needs a package that comes with one of meshcore's optional
    extras, and it is not installed; the message says which ``pip install``."""


# ---- the primitives (meshcore.http, meshcore.route, meshcore.tls) ----

class HttpParseError(MeshcoreError):
    """Bytes the proxy's HTTP/1.1 parser refuses (meshcore.http).

    ``status`` is what the proxy answers (400, 414, 417, 431, 501, 505 for a
    request; 502 for a response, which the proxy answers its client),
    ``reason`` the parser's own words ("both Content-Length and
    Transfer-Encoding") and ``flag`` the access-log response flag the proxy
    records: ``DPE`` (downstream protocol error) or ``UPE`` (upstream).
    """

    def __init__(self, reason: str, status: int, flag: str) -> None:
        super().__init__(f"{reason} (the proxy answers {status}, {flag})")
        self.reason = reason
        self.status = status
        self.flag = flag


class HttpParserUpgrade(MeshcoreError):
    """The message switched protocols (Upgrade or CONNECT), as httptools'
    exception of that name: ``offset`` is where, in the bytes of the
    feed_data call that raised it, the new protocol's bytes begin."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


class RouteConfigError(ConfigError):
    """A RouteConfiguration the core cannot compile (meshcore.route.Router)."""


class TLSPeerError(MeshcoreError):
    """A TLS peer the SPIFFE rules refuse (meshcore.tls): ``reason`` is the
    core's (more than one URI SAN, identity not accepted, no certificate);
    ``peer`` the URI SAN it presented, or None."""

    def __init__(self, reason: str, peer: str | None = None) -> None:
        super().__init__(f"{reason}" + (f" (peer {peer})" if peer else ""))
        self.reason = reason
        self.peer = peer

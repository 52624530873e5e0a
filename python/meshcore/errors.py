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

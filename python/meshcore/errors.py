"""Exceptions raised by meshcore. Plain classes, no behaviour (STYLE.md)."""


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

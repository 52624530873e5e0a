"""meshcore's optional dependencies: which extra brings which package.

An embedder installs the core (``pip install meshcore``: the Engine, its
config loader and the admin API); the control plane, the CA and certificate
handling need ``meshcore[control-plane]``, the Prometheus exposition
``meshcore[telemetry]``. A module that needs an extra calls require() before
importing it, so a missing package is a MissingExtraError naming the
``pip install`` instead of a bare ImportError.
"""
from __future__ import annotations

import importlib

from meshcore.errors import MissingExtraError

# import name -> (distribution on PyPI, meshcore extra that installs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "cryptography": ("cryptography", "control-plane"),
    "prometheus_client": ("prometheus-client", "telemetry"),
}


def require(module: str, feature: str) -> None:
    """Imports module (a key of EXTRAS) or raises MissingExtraError saying
    that feature needs it and which extra installs it."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise  # the package is there but broken: not a missing extra
        dist, extra = EXTRAS[module]
        raise MissingExtraError(
            f"{feature} needs the {dist} package, which is not installed: "
            f"pip install 'meshcore[{extra}]'", name=module) from None

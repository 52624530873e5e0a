"""meshcore: a service mesh whose sidecar proxy runs a C hot path.

Embedding: ``meshcore.Engine`` runs the data plane inside this process; see
docs/embedding.md.
"""
from meshcore.engine import Engine
from meshcore.errors import (
    ConfigError,
    EngineError,
    EngineStateError,
    InvalidArgumentError,
    MeshcoreError,
    MissingExtraError,
    UnknownListenerError,
)

__version__ = "0.1.0"
__all__ = ["Engine", "ConfigError", "EngineError", "EngineStateError", "InvalidArgumentError", "MeshcoreError",
           "MissingExtraError", "UnknownListenerError", "__version__"]

"""Where the control plane's config comes from, behind a small interface.

    store.load()                   -> (version, Mesh): the config now
    store.watch(callback, stop)    calls callback() when the config may have changed,
                                   until the threading.Event `stop` is set

A directory of Istio YAML is the one store today (`DirectoryStore`); a store
backed by etcd or the Kubernetes API implements the same two methods. The
version names the content (the same files give the same version, across
restarts), so proxies reconnecting to a restarted control plane see the
version they already have.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Protocol

from meshcore.translate import Mesh, load_dir

log = logging.getLogger("meshcore.controlplane.store")

DEFAULT_POLL_INTERVAL = 0.05  # seconds: detection latency is part of every push's latency


class ConfigStore(Protocol):
    def load(self) -> tuple[str, Mesh]: ...

    def watch(self, callback: Callable[[], None], stop: threading.Event) -> None: ...


def _signature(directory) -> tuple:
    # the proxy's file-mode watcher uses the same (path, inode, size, mtime) look
    from meshcore.proxy import dir_signature

    return dir_signature(directory)


class DirectoryStore:
    """A mesh directory (`meshcore check DIR` reads the same), polled for changes."""

    def __init__(self, mesh_dir: str, poll_interval: float = DEFAULT_POLL_INTERVAL):
        if not os.path.isdir(mesh_dir):
            from meshcore.errors import ConfigError

            raise ConfigError(f"{mesh_dir}: not a directory")
        self.mesh_dir = os.fspath(mesh_dir)
        self.poll_interval = poll_interval

    def __repr__(self) -> str:
        return f"DirectoryStore({self.mesh_dir!r})"

    def version(self) -> str:
        """A digest of every YAML file's relative path and content."""
        from meshcore.translate.model import mesh_files

        h = hashlib.sha256()
        for path in mesh_files(self.mesh_dir):
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            h.update(os.path.relpath(path, self.mesh_dir).encode() + b"\0")
            h.update(len(data).to_bytes(8, "big") + data)
        return h.hexdigest()[:12]

    def load(self) -> tuple[str, Mesh]:
        return self.version(), load_dir(self.mesh_dir)

    def watch(self, callback: Callable[[], None], stop: threading.Event) -> None:
        """Polls every poll_interval; callback() at each change of the files' signature."""
        last = _signature(self.mesh_dir)
        while not stop.wait(self.poll_interval):
            try:
                now = _signature(self.mesh_dir)
            except OSError as e:  # the directory itself went away: keep serving, keep looking
                log.warning("%s: %s", self.mesh_dir, e)
                continue
            if now != last:
                last = now
                callback()

"""Config changes to pushes: rebuild the views, hand them to the ADS streams.

Coalescing (docs/control-plane.md): a change that finds the pusher idle is
rebuilt and pushed at once (a lone change never waits for a quiet period).
For `window` seconds after a rebuild, further changes are collected, and at
the end of the window all of them are rebuilt and pushed as one; a burst
therefore costs about one rebuild per window, and the wait it adds to any
change is at most one window. Istio's debounce waits for 100 ms of quiet
(up to 10 s) before every push.

Push latency is measured from the moment a change is detected (the store's
watcher saw it; for merged changes, the first of them) to the moment each
response is handed to gRPC, per proxy and type.
"""
from __future__ import annotations

import collections
import logging
import threading
import time

from .views import Rejected, build

log = logging.getLogger("meshcore.controlplane")

DEFAULT_WINDOW = 0.03  # seconds
REJECTED_KEPT = 20
LATENCY_SAMPLES = 10000


class Latencies:
    """Push latencies: count, sum, and the last LATENCY_SAMPLES for percentiles."""

    def __init__(self):
        self.count, self.total, self.max = 0, 0.0, 0.0
        self.samples = collections.deque(maxlen=LATENCY_SAMPLES)

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.max = max(self.max, seconds)
        self.samples.append(seconds)

    def describe(self) -> dict:
        ordered = sorted(self.samples)

        def pct(p):
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 3) if ordered else None

        return {"count": self.count, "sum_ms": round(self.total * 1000, 3), "p50_ms": pct(0.5),
                "p90_ms": pct(0.9), "p99_ms": pct(0.99), "max_ms": round(self.max * 1000, 3)}


class PushStats:
    """The control plane's counters, thread-safe (the pusher thread and the gRPC loop count)."""

    COUNTERS = ("changes_detected", "rebuilds", "immediate_rebuilds", "coalesced_rebuilds", "merged_changes",
                "unchanged_rebuilds", "rejected_versions", "nodes_refused", "nacks", "stale_nonces",
                "connections_total")

    def __init__(self):
        self._lock = threading.Lock()
        self.counters = dict.fromkeys(self.COUNTERS, 0)
        self.pushes = collections.Counter()  # by short type name: responses caused by a config change
        self.responses = collections.Counter()  # by short type name: every response
        self.latency = Latencies()

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def sent(self, short: str, push: bool, detected: float | None) -> None:
        with self._lock:
            self.responses[short] += 1
            if push:
                self.pushes[short] += 1
                if detected is not None:
                    self.latency.add(time.monotonic() - detected)

    def describe(self) -> dict:
        with self._lock:
            return {**self.counters, "pushes": dict(self.pushes), "responses": dict(self.responses),
                    "push_latency": self.latency.describe()}


class Pusher:
    """Owns the current good Snapshot and turns store changes into publish(snapshot, detected) calls."""

    def __init__(self, store, security, root_bundle_pem, publish, stats: PushStats, window: float = DEFAULT_WINDOW):
        self.store, self.security, self.root_bundle_pem = store, security, root_bundle_pem
        self.publish, self.stats, self.window = publish, stats, window
        self.current = None  # the Snapshot served
        self.rejected = collections.deque(maxlen=REJECTED_KEPT)  # {version, time, reasons}
        self.last_rejected_version: str | None = None
        self._cond = threading.Condition()
        self._pending = 0
        self._detected: float | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- rebuilding

    def rebuild(self, merged: int = 1, detected: float | None = None, initial: bool = False) -> bool:
        """Loads and builds the store's config; publishes it if it is good and new.
        False if it was rejected (Rejected is raised instead when initial)."""
        version, mesh = self.store.load()
        if self.current is not None and version == self.current.version:
            self.stats.count("unchanged_rebuilds")
            return True
        try:
            snapshot = build(version, mesh, self.security, self.root_bundle_pem, self.current)
        except Rejected as e:
            if initial:
                raise
            self.stats.count("rejected_versions")
            if version != self.last_rejected_version:
                self.rejected.append({"version": version, "time": time.time(), "reasons": e.reasons})
                self.last_rejected_version = version
                log.error("%s; still serving %s", e, self.current.version if self.current else "nothing")
            return False
        self.stats.count("rebuilds")
        self.current = snapshot
        self.last_rejected_version = None
        for w in snapshot.warnings:
            log.debug("config %s: %s", version, w)
        log.info("config %s: %d workloads, built in %.1f ms (%d change(s))", version, len(snapshot.views),
                 snapshot.build_seconds * 1000, merged)
        if not initial:
            self.publish(snapshot, detected)
        return True

    # -- watching

    def on_change(self) -> None:
        """The store saw a change (the watcher thread)."""
        self.stats.count("changes_detected")
        with self._cond:
            self._pending += 1
            if self._detected is None:
                self._detected = time.monotonic()
            self._cond.notify()

    def _take(self, timeout: float | None):
        with self._cond:
            if not self._pending and not self._stop.is_set():
                self._cond.wait(timeout)
            n, detected = self._pending, self._detected
            self._pending, self._detected = 0, None
            return n, detected

    def _run(self) -> None:
        while not self._stop.is_set():
            n, detected = self._take(None)
            if not n:
                continue
            self.stats.count("immediate_rebuilds")
            self.stats.count("merged_changes", n - 1)
            self._safe_rebuild(n, detected)
            while not self._stop.is_set():  # the window: what comes now is merged
                deadline = time.monotonic() + self.window
                while not self._stop.is_set() and time.monotonic() < deadline:
                    self._stop.wait(max(0.0, deadline - time.monotonic()))
                n, detected = self._take(0)
                if not n:
                    break
                self.stats.count("coalesced_rebuilds")
                self.stats.count("merged_changes", n - 1)
                self._safe_rebuild(n, detected)

    def _safe_rebuild(self, n, detected) -> None:
        try:
            self.rebuild(n, detected)
        except Exception:  # a bug or an unreadable directory must not stop the control plane
            log.exception("config rebuild failed; still serving %s",
                          self.current.version if self.current else "nothing")

    def start(self) -> None:
        watcher = threading.Thread(target=self.store.watch, args=(self.on_change, self._stop),
                                   name="mc-cp-watch", daemon=True)
        pusher = threading.Thread(target=self._run, name="mc-cp-push", daemon=True)
        self._threads = [watcher, pusher]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []

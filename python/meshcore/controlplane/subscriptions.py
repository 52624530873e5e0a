"""One proxy's xDS state, per type: what it subscribed to, what it was sent,
what it ACKed or NACKed. Pure logic (no gRPC): requests and new views in,
responses out, in make-before-break order.

State of the world (SotW): a response carries every resource the proxy
subscribed to. LDS and CDS are wildcard when the first request names none
("*" is a wildcard for any type); other types are named. version_info is the
digest of the resources sent, a fresh nonce names each response; a request
whose nonce is not the last one sent for its type is stale and ignored; a
request with error_detail is a NACK of that nonce (recorded; the last ACKed
config stays what the proxy runs, and nothing is resent until the resources
change).

Delta: per-resource versions; the proxy's subscribe/unsubscribe lists;
`initial_resource_versions` on a new stream is what it already has (not sent
again at that version; named in removed_resources if gone); removals are sent
as removed_resources.

Ordering of a push: updates in PUSH_ORDER (CDS, EDS, LDS, RDS, SDS), then
removals (LDS, RDS, CDS, EDS, SDS: referrers go first). In SotW a wildcard
type that both changes and loses resources is sent twice: first with the
removed ones kept, then, after the others, without them.
"""
from __future__ import annotations

import itertools
import os
import time

from envoy.service.discovery.v3 import discovery_pb2

from meshcore.xds import resources as xr

from .views import set_digest

WILDCARD_BY_DEFAULT = (xr.LDS, xr.CDS)
REMOVAL_ORDER = (xr.LDS, xr.RDS, xr.CDS, xr.EDS, xr.SDS)
_nonces = itertools.count(1)
_NONCE_PREFIX = os.urandom(3).hex()


def nonce() -> str:
    return f"{_NONCE_PREFIX}-{next(_nonces)}"


class TypeState:
    """One type on one stream."""

    def __init__(self, type_url: str):
        self.type_url = type_url
        self.wildcard = False
        self.names: set[str] = set()
        self.sent: dict = {}  # name -> Entry the proxy has (as far as the server knows)
        self.sent_version: str | None = None
        self.sent_nonce: str | None = None
        self.sent_at: float | None = None
        self.acked_version: str | None = None
        self.acked_nonce: str | None = None
        self.acked_at: float | None = None
        self.nack: dict | None = None
        self.nacks = 0
        self.started = False  # a request for this type came on this stream
        self.responses = 0
        self.pushes = 0
        self.pending: dict[str, str] = {}  # delta: nonce -> version sent with it

    @property
    def short(self) -> str:
        return xr.SHORT_NAME.get(self.type_url, self.type_url)

    def wanted(self, view) -> dict:
        entries = view.of(self.type_url) if view is not None else {}
        if self.wildcard:
            return dict(entries)
        return {n: entries[n] for n in self.names if n in entries}

    @property
    def state(self) -> str:
        """istioctl proxy-status' words: NOT SENT, SYNCED, STALE (sent, not ACKed), NACK."""
        if self.sent_nonce is None:
            return "NOT SENT"
        if self.nack is not None and self.nack["nonce"] == self.sent_nonce:
            return "NACK"
        return "SYNCED" if self.acked_nonce == self.sent_nonce else "STALE"

    def describe(self) -> dict:
        return {"state": self.state, "subscribed": "*" if self.wildcard else sorted(self.names),
                "resources": len(self.sent), "sent_version": self.sent_version, "sent_nonce": self.sent_nonce,
                "sent_at": self.sent_at, "acked_version": self.acked_version, "acked_nonce": self.acked_nonce,
                "acked_at": self.acked_at, "responses": self.responses, "pushes": self.pushes,
                "nacks": self.nacks, "last_nack": self.nack}

    def record_nack(self, nonce_: str, version: str, message: str) -> None:
        self.nacks += 1
        self.nack = {"nonce": nonce_, "version": version, "message": message, "time": time.time()}

    def record_ack(self, nonce_: str, version: str) -> None:
        self.acked_nonce, self.acked_version, self.acked_at = nonce_, version, time.time()


class Stream:
    """The types of one stream; subclasses speak SotW or delta."""

    mode = ""

    def __init__(self):
        self.types: dict[str, TypeState] = {}
        self.stale = 0  # requests ignored for a stale nonce
        self.nack_events: list[tuple[str, str]] = []  # (type short name, message), drained by the caller

    def state(self, type_url: str) -> TypeState:
        if type_url not in self.types:
            self.types[type_url] = TypeState(type_url)
        return self.types[type_url]

    def on_view(self, view) -> list:
        """A new view of the proxy's workload: the responses it needs, in push order."""
        updates, removals = {}, {}
        for type_url in xr.PUSH_ORDER:
            st = self.types.get(type_url)
            if st is None:
                continue
            up, rm = self._diff(st, view, push=True)
            if up is not None:
                updates[type_url] = up
            if rm is not None:
                removals[type_url] = rm
        out = [updates[t] for t in xr.PUSH_ORDER if t in updates]
        return out + [removals[t] for t in REMOVAL_ORDER if t in removals]

    def _diff(self, st: TypeState, view, push: bool):
        raise NotImplementedError

    def _sent(self, st: TypeState, sent: dict, push: bool, nonce_: str) -> None:
        st.sent = sent
        st.sent_version = set_digest((n, e.version) for n, e in sent.items())
        st.sent_nonce, st.sent_at = nonce_, time.time()
        st.responses += 1
        st.pushes += push


class SotwStream(Stream):
    mode = "sotw"

    def on_request(self, req: discovery_pb2.DiscoveryRequest, view) -> list:
        st = self.state(req.type_url)
        first, st.started = not st.started, True
        if req.response_nonce and st.sent_nonce is not None:
            if req.response_nonce != st.sent_nonce:
                self.stale += 1  # answers an older response: a newer one is on its way
                return []
            if req.HasField("error_detail"):
                st.record_nack(req.response_nonce, st.sent_version or "", req.error_detail.message)
                self.nack_events.append((st.short, req.error_detail.message))
            else:
                st.record_ack(req.response_nonce, req.version_info)
        names = set(req.resource_names)
        wildcard = "*" in names or (not names and (st.wildcard or (first and req.type_url in WILDCARD_BY_DEFAULT)))
        names.discard("*")
        if not first and wildcard == st.wildcard and names == st.names:
            return []  # an ACK or NACK: nothing new asked
        st.wildcard, st.names = wildcard, names
        up, rm = self._diff(st, view, push=False, always=first and st.wildcard)
        return [r for r in (up, rm) if r is not None]

    def _response(self, st, entries: dict, push: bool):
        n = nonce()
        resp = discovery_pb2.DiscoveryResponse(
            version_info=set_digest((k, e.version) for k, e in entries.items()), type_url=st.type_url, nonce=n,
            resources=[entries[k].any for k in sorted(entries)])
        self._sent(st, entries, push, n)
        return resp

    def _diff(self, st, view, push, always=False):
        wanted = st.wanted(view)
        version = set_digest((n, e.version) for n, e in wanted.items())
        if version == st.sent_version and not always:
            return None, None
        if st.sent_nonce is None and not wanted and not always:
            return None, None  # named resources that do not exist yet: sent when they appear
        removed = {n: e for n, e in st.sent.items() if n not in wanted}
        changed = any(st.sent.get(n) is None or st.sent[n].version != e.version for n, e in wanted.items())
        if push and st.wildcard and removed and changed:
            # make before break: the new and changed ones now, the removals after the other types
            first = self._response(st, {**removed, **wanted}, push)
            return first, _Deferred(self, st, wanted, push)
        if push and st.wildcard and removed:
            return None, self._response(st, wanted, push)
        return self._response(st, wanted, push), None


def built(response):
    """A response of on_request/on_view as sent: deferred ones are built when their turn comes."""
    return response.build() if isinstance(response, _Deferred) else response


class _Deferred:
    """A response built when it is sent (after the others of its push)."""

    def __init__(self, stream, st, entries, push):
        self.stream, self.st, self.entries, self.push = stream, st, entries, push

    def build(self):
        return self.stream._response(self.st, self.entries, self.push)


class DeltaStream(Stream):
    mode = "delta"

    def on_request(self, req: discovery_pb2.DeltaDiscoveryRequest, view) -> list:
        st = self.state(req.type_url)
        if req.response_nonce:
            version = st.pending.pop(req.response_nonce, None)
            if req.HasField("error_detail"):
                st.record_nack(req.response_nonce, version or "", req.error_detail.message)
                self.nack_events.append((st.short, req.error_detail.message))
            elif version is not None:
                st.record_ack(req.response_nonce, version)
            for old in [k for k in st.pending if _seq(k) < _seq(req.response_nonce)]:
                del st.pending[old]  # answered by this one's ACK/NACK
        first, st.started = not st.started, True
        if first:
            st.wildcard = not req.resource_names_subscribe and req.type_url in WILDCARD_BY_DEFAULT
            view_entries = view.of(req.type_url) if view is not None else {}
            for name, version in req.initial_resource_versions.items():
                entry = view_entries.get(name)
                # the proxy has it: remember it at its version (an Entry stand-in when gone or different)
                st.sent[name] = entry if entry is not None and entry.version == version else _Had(version)
        for name in req.resource_names_subscribe:
            if name == "*":
                st.wildcard = True
            else:
                st.names.add(name)
        for name in req.resource_names_unsubscribe:
            if name == "*":
                st.wildcard = False
            else:
                st.names.discard(name)
                st.sent.pop(name, None)  # the proxy forgets it
        if not first and not req.resource_names_subscribe and not req.resource_names_unsubscribe:
            return []  # an ACK or NACK
        return [r for r in [self._diff(st, view, push=False, always=first and st.wildcard)] if r is not None]

    def on_view(self, view) -> list:
        out, removals = [], []
        for type_url in xr.PUSH_ORDER:
            st = self.types.get(type_url)
            if st is not None:
                up = self._diff(st, view, push=True, updates=True, removals=False)
                if up is not None:
                    out.append(up)
        for type_url in REMOVAL_ORDER:
            st = self.types.get(type_url)
            if st is not None:
                rm = self._diff(st, view, push=True, updates=False, removals=True)
                if rm is not None:
                    removals.append(rm)
        return out + removals

    def _diff(self, st, view, push, always=False, updates=True, removals=True):
        wanted = st.wanted(view)
        send = {n: e for n, e in wanted.items() if updates and (n not in st.sent or st.sent[n].version != e.version)}
        gone = [n for n in st.sent if removals and n not in wanted]
        if not send and not gone and not always:
            return None
        n_ = nonce()
        have = {k: e for k, e in st.sent.items() if k not in gone}
        have.update(send)
        resp = discovery_pb2.DeltaDiscoveryResponse(type_url=st.type_url, nonce=n_, removed_resources=sorted(gone))
        for name in sorted(send):
            resp.resources.add(name=name, version=send[name].version, resource=send[name].any)
        self._sent(st, have, push, n_)
        resp.system_version_info = st.sent_version
        st.pending[n_] = st.sent_version
        return resp


class _Had:
    """A resource the proxy said it has (initial_resource_versions) at a version the server does not serve."""

    def __init__(self, version: str):
        self.version = version


def _seq(n: str) -> int:
    try:
        return int(n.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1

"""Bootstrap tokens: how a workload proves who it is for its first certificate.

`meshcore control-plane token NS/SA --ca-dir CADIR` issues one: a random
secret (256 bits, URL-safe base64) handed to the workload in a token file,
JSON, mode 0600:

    {"token": "...", "namespace": "shop", "service_account": "api",
     "trust_domain": "cluster.local", "root_cert": "<PEM bundle>",
     "expires": "2026-...+00:00"}

The control plane keeps only the token's SHA-256, with its namespace,
service account and expiry, in CADIR/tokens.json (0600, next to the CA, read
again whenever it changes on disk, so tokens issued while the control plane
runs are accepted at once). A token is good for its whole lifetime and any
number of first certificates (an agent restarting needs it again); renewals
are authenticated by the current certificate instead. The token file holds
nothing of the CA's but its public roots.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import threading

from meshcore.durations import parse_lifetime
from meshcore.errors import CAError, ConfigError
from meshcore.identity import workload_id

TOKENS_FILE = "tokens.json"
DEFAULT_TOKEN_TTL = "7d"
TOKEN_BYTES = 32
_FIELDS = ("token", "namespace", "service_account", "trust_domain", "root_cert")


class TokenRejected(Exception):
    """A token that names no one: the message says why (unknown, expired)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason  # a counter key: "unknown_token", "expired_token"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """The bootstrap tokens of one CA directory (only their hashes are stored)."""

    def __init__(self, ca_dir: str, authority=None):
        self.ca_dir = ca_dir
        self.path = os.path.join(ca_dir, TOKENS_FILE)
        self._authority = authority
        self._lock = threading.Lock()
        self._entries: dict[str, dict] = {}
        self._signature = None

    # -- the file --

    def _stat(self):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _load(self) -> None:
        """Re-reads tokens.json if it changed on disk (caller holds the lock)."""
        sig = self._stat()
        if sig == self._signature:
            return
        entries: dict[str, dict] = {}
        if sig is not None:
            try:
                with open(self.path, encoding="utf-8") as f:
                    data = json.load(f)
            except (OSError, ValueError) as e:
                raise CAError(f"{self.path}: cannot read the token store: {e}") from None
            for entry in data.get("tokens", []):
                entries[entry["sha256"]] = entry
        self._entries, self._signature = entries, sig

    def _save(self) -> None:
        from meshcore.pki import write_file

        body = {"tokens": sorted(self._entries.values(), key=lambda e: e["issued"])}
        write_file(self.path, (json.dumps(body, indent=1) + "\n").encode(), mode=0o600)
        self._signature = self._stat()

    # -- issuing and checking --

    def authority(self):
        if self._authority is None:
            from meshcore.ca import CertificateAuthority

            self._authority = CertificateAuthority.load(self.ca_dir)
        return self._authority

    def issue(self, namespace: str, service_account: str, ttl=None) -> dict:
        """A new token for NS/SA; returns the token file's dict (the token in clear, once)."""
        authority = self.authority()
        workload_id(authority.trust_domain, namespace, service_account)  # ConfigError if malformed
        lifetime = parse_lifetime(ttl if ttl is not None else DEFAULT_TOKEN_TTL, "token ttl")
        if lifetime <= dt.timedelta(0):
            raise ConfigError("token ttl: must be positive")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        expires = now + lifetime
        entry = {"sha256": _hash(token), "namespace": namespace, "service_account": service_account,
                 "issued": now.isoformat(), "expires": expires.isoformat()}
        with self._lock:
            self._load()
            self._drop_expired(now)
            self._entries[entry["sha256"]] = entry
            self._save()
        return {"token": token, "namespace": namespace, "service_account": service_account,
                "trust_domain": authority.trust_domain, "root_cert": authority.trust_bundle_pem.decode(),
                "expires": expires.isoformat()}

    def _drop_expired(self, now: dt.datetime) -> None:
        """Forgets tokens expired for over a day (until then they are refused as expired, not unknown)."""
        cutoff = now - dt.timedelta(days=1)
        self._entries = {h: e for h, e in self._entries.items()
                         if dt.datetime.fromisoformat(e["expires"]) > cutoff}

    def check(self, token: str) -> tuple[str, str]:
        """(namespace, service_account) of a valid token; TokenRejected saying why not."""
        digest = _hash(token)
        with self._lock:
            self._load()
            entry = None
            for known, e in self._entries.items():  # constant-time comparison of each hash
                if hmac.compare_digest(known, digest):
                    entry = e
        if entry is None:
            raise TokenRejected("unknown_token", "bootstrap token not known to this control plane "
                                                 "(issue one with `meshcore control-plane token NS/SA`)")
        expires = dt.datetime.fromisoformat(entry["expires"])
        if expires <= dt.datetime.now(dt.timezone.utc):
            raise TokenRejected("expired_token", f"bootstrap token for {entry['namespace']}/"
                                f"{entry['service_account']} expired at {expires.isoformat()}")
        return entry["namespace"], entry["service_account"]

    def lookup(self, token: str) -> tuple[str, str] | None:
        """(namespace, service_account) of a valid token, else None."""
        try:
            return self.check(token)
        except TokenRejected:
            return None


def write_token_file(path: str, data: dict) -> None:
    """The token file, JSON, 0600 (atomically replaced)."""
    from meshcore.pki import write_file

    write_file(path, (json.dumps(data, indent=1) + "\n").encode(), mode=0o600)


def read_token_file(path: str) -> dict:
    """A token file's dict; ConfigError naming the file and what is wrong with it."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read token file: {e.strerror}") from None
    except ValueError as e:
        raise ConfigError(f"{path}: not a token file (invalid JSON: {e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a token file (expected a JSON object)")
    missing = [f for f in _FIELDS if not isinstance(data.get(f), str) or not data.get(f)]
    if missing:
        raise ConfigError(f"{path}: token file lacks {', '.join(missing)}")
    return data

"""API keys: created once, shown once, stored only as a slow hash.

A key reads ``tsk_<key id>_<secret>``. The key id is public (it names the key in the
audit log as ``key:<key id>`` and finds its record without hashing against every key);
the secret is 32 random bytes. The key file keeps, per key, its id, role, venue, times
and an scrypt hash of the whole key (``hashlib.scrypt``, 16 MiB of memory per check), so
a stolen file does not give the keys away.

A check costs tens of milliseconds by design; a running service remembers, in memory
only, a fast digest of each key it has verified, so only a key's first request pays it.
The file is written atomically (a temporary file renamed over it) under a lock, and
re-read by the service when it changes (a key created or revoked while it runs).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from traderseg.errors import ConfigError, DataError

ROLES: tuple[str, ...] = ("risk", "growth", "analyst", "compliance", "admin")
"""Roles a key may have; what each may do is in :mod:`traderseg.service.access`."""
KEY_PREFIX = "tsk"
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
"""scrypt cost of the stored hashes (16 MiB and tens of milliseconds per check)."""
_KEY = re.compile(rf"^{KEY_PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{43}})$")
_VENUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FILE_VERSION = 1
# what every key record holds (``revoked_at`` and ``scrypt`` may be absent)
_RECORD_FIELDS = ("key_id", "role", "venue", "created_at", "salt", "hash")


@dataclass(frozen=True)
class ApiKey:
    """The public record of a key (never its secret)."""

    key_id: str
    role: str
    venue: str
    created_at: str
    revoked_at: str | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this key."""
        return f"key:{self.key_id}"


def _hash(token: str, salt: bytes, cost: dict[str, int]) -> str:
    digest = hashlib.scrypt(token.encode(), salt=salt, maxmem=64 * 1024 * 1024, dklen=32,
                            n=int(cost["n"]), r=int(cost["r"]), p=int(cost["p"]))
    return digest.hex()


def _fast(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def check_venue_name(venue: str) -> None:
    """Refuse a venue name a key could not be bound to (letters, digits, '.', '_', '-').

    Raises
    ------
    DataError
        The name, and what a name may hold.
    """
    if not _VENUE.match(venue):
        raise DataError(f"venue {venue!r}: use letters, digits, '.', '_' or '-' (at most "
                        "64 characters, starting with a letter or digit)")


class KeyStore:
    """The key file of a service.

    Parameters
    ----------
    path : str or Path
        JSON file (created by the first :meth:`create`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, Any]] = {}
        self._stamp: tuple[int, int] | None = None
        self._verified: dict[str, bytes] = {}

    # ------------------------------------------------------------------ file
    def _read(self) -> dict[str, dict[str, Any]]:
        if self.path.is_dir():
            raise ConfigError(f"{self.path}: is a directory, not a key file")
        if not self.path.exists():
            return {}
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            if doc.get("version") != FILE_VERSION:
                raise ConfigError(f"{self.path}: key file version {doc.get('version')!r}, "
                                  f"expected {FILE_VERSION}")
            records = {str(r["key_id"]): dict(r) for r in doc["keys"]}
        except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
            raise ConfigError(f"{self.path}: not a traderseg key file ({exc})") from None
        for key_id, r in records.items():
            missing = [f for f in _RECORD_FIELDS if f not in r]
            if missing:
                raise ConfigError(f"{self.path}: key {key_id!r} lacks {', '.join(missing)}")
        return records

    def _write(self, records: dict[str, dict[str, Any]]) -> None:
        doc = {"version": FILE_VERSION, "keys": sorted(records.values(),
                                                       key=lambda r: r["created_at"])}
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
        os.replace(tmp, self.path)

    @contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, Any]]]:
        if not self.path.parent.is_dir():
            raise DataError(f"{self.path}: folder {self.path.parent} does not exist")
        lock = self.path.with_name(self.path.name + ".lock")
        with open(lock, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                records = self._read()
                yield records
                self._write(records)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _current(self) -> dict[str, dict[str, Any]]:
        """Return the records, re-read when the file changed since the last read."""
        try:
            st = self.path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._records = self._read()
                self._stamp = stamp
            return self._records

    # ------------------------------------------------------------------ keys
    def create(self, role: str, venue: str) -> tuple[ApiKey, str]:
        """Create a key for ``role`` on ``venue``; return its record and the key itself.

        The key is not kept anywhere: show it once.

        Raises
        ------
        DataError
            Unknown role or a venue name that is not a plain name.
        """
        if role not in ROLES:
            raise DataError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        check_venue_name(venue)
        with self._locked() as records:
            key_id = secrets.token_hex(6)
            while key_id in records:
                key_id = secrets.token_hex(6)
            token = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
            salt = secrets.token_bytes(16)
            key = ApiKey(key_id, role, venue, datetime.now(UTC).isoformat())
            records[key_id] = {**asdict(key), "salt": salt.hex(), "scrypt": SCRYPT,
                               "hash": _hash(token, salt, SCRYPT)}
        return key, token

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (kept in the file, refused from now on)."""
        with self._locked() as records:
            if key_id not in records:
                raise DataError(f"no key with id {key_id!r} in {self.path}")
            if records[key_id].get("revoked_at") is None:
                records[key_id]["revoked_at"] = datetime.now(UTC).isoformat()
            return _public(records[key_id])

    def keys(self) -> list[ApiKey]:
        """Every key's public record, oldest first."""
        return sorted((_public(r) for r in self._current().values()),
                      key=lambda k: k.created_at)

    def is_active(self, key_id: str) -> bool:
        """Whether ``key_id`` is a key of the file and not revoked."""
        record = self._current().get(key_id)
        return record is not None and record.get("revoked_at") is None

    def verify_known(self, token: str) -> ApiKey | None:
        """Return the key ``token`` is when it was verified before (one keyed hash, no scrypt).

        ``None`` says only that this quick check could not vouch for the token: use
        :meth:`verify` for the answer.
        """
        m = _KEY.match(token)
        if m is None:
            return None
        key_id = m.group(1)
        known = self._verified.get(key_id)
        if known is None or not hmac.compare_digest(known, _fast(token)):
            return None
        record = self._current().get(key_id)
        if record is None or record.get("revoked_at") is not None:
            return None
        return _public(record)

    def verify(self, token: str) -> ApiKey | None:
        """Return the key ``token`` is, or ``None`` (malformed, unknown, wrong or revoked)."""
        key = self.verify_known(token)
        if key is not None:
            return key
        m = _KEY.match(token)
        if m is None:
            return None
        key_id = m.group(1)
        record = self._current().get(key_id)
        if record is None or record.get("revoked_at") is not None:
            return None
        if key_id in self._verified:
            return None  # a key verified before, and this token is not it
        expected = str(record["hash"])
        got = _hash(token, bytes.fromhex(str(record["salt"])), record.get("scrypt", SCRYPT))
        if not hmac.compare_digest(expected, got):
            return None
        self._verified[key_id] = _fast(token)
        return _public(record)


def _public(record: dict[str, Any]) -> ApiKey:
    return ApiKey(str(record["key_id"]), str(record["role"]), str(record["venue"]),
                  str(record["created_at"]), record.get("revoked_at"))

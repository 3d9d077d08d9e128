"""Publish decisions to Redis hashes, the online store other services read in production.

Each account's current decision is the hash ``traderseg:controls:{account_id}`` (every
column of ``controls`` as text), written after the store committed it; writing the same
decision twice leaves the same hash, so a re-delivered checkpoint changes nothing.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from traderseg.errors import ConfigError
from traderseg.online.sources import RedisAddress, redis_client

KEY_PREFIX = "traderseg:controls:"


def _text(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v) or v is pd.NaT:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return str(v)


class RedisPublisher:
    """Write decision rows to Redis hashes (``redis://HOST:PORT[/DB]``)."""

    def __init__(self, url: str) -> None:
        from urllib.parse import urlparse

        u = urlparse(url)
        if not u.hostname:
            raise ConfigError(f"{url}: expected redis://HOST:PORT[/DB]")
        path = u.path.strip("/")
        db = int(path) if path.isdigit() else 0
        self.client = redis_client(RedisAddress(u.hostname, u.port or 6379, "", db))

    def __call__(self, rows: pd.DataFrame) -> None:
        """Write the last row of each account."""
        latest = rows.drop_duplicates("account_id", keep="last")
        pipe = self.client.pipeline(transaction=False)
        for rec in latest.to_dict("records"):
            pipe.hset(KEY_PREFIX + str(rec["account_id"]),
                      mapping={k: _text(v) for k, v in rec.items()})
        pipe.execute()


def read_published(client: Any, account_id: str) -> dict[str, str]:
    """Return the published hash of one account (empty when none)."""
    return dict(client.hgetall(KEY_PREFIX + account_id))

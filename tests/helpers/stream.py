"""Shared pieces of the stream tests (import as ``helpers.stream``)."""

from __future__ import annotations

import json

import pandas as pd

from traderseg.online.batch import decide_batch
from traderseg.online.consumer import StreamConfig, StreamConsumer
from traderseg.online.run import build_engine
from traderseg.online.sources import Batch, Message, ReplaySource, Source
from traderseg.online.tables import audit_changes, read_audit, read_controls
from traderseg.store import connect

# one decision a day keeps the batch reference short
DECIDE_EVERY_S = 86_400.0

# columns that say when a row was written, not what was decided
WALL_CLOCK = ["updated_at"]
AUDIT_KEY = ["account_id", "control", "old_value", "new_value", "rule", "policy_version",
             "model_version", "fill_id", "effective_at"]


def engine_for(con, venue):
    return build_engine(con, venue.model, venue.policy)


def run_replay(db, venue, decide_every_s, **cfg):
    con = connect(db)
    try:
        eng = engine_for(con, venue)
        c = StreamConsumer(con, ReplaySource(venue.fills), eng,
                           StreamConfig(decide_every_s=decide_every_s, **cfg),
                           source_label="replay:fills")
        return c.run()
    finally:
        con.close()


def controls_of(con) -> pd.DataFrame:
    return read_controls(con).drop(columns=WALL_CLOCK).reset_index(drop=True)


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    out = df.reset_index(drop=True).copy()
    out["effective_at"] = pd.to_datetime(out["effective_at"], utc=True)
    obj = out.astype(object)
    return obj.where(out.notna(), None)


def audit_of(con) -> pd.DataFrame:
    return _plain(read_audit(con)[AUDIT_KEY])


def batch_reference(con, venue, decide_every_s):
    """Controls and audit rows the batch computation gives over the store's fills."""
    ref = decide_batch(con, engine_for(con, venue), decide_every_s=decide_every_s)
    latest = ref.latest.drop(columns=WALL_CLOCK).reset_index(drop=True)
    audit = audit_changes(ref.history.iloc[:0], ref.history, actor="batch",
                          recorded_at=pd.Timestamp.now(tz="UTC"))[AUDIT_KEY]
    return latest, _plain(audit)


def assert_same_decisions(con, latest, audit):
    got = controls_of(con)
    pd.testing.assert_frame_equal(got, latest, check_dtype=False, check_exact=False,
                                  rtol=1e-9, atol=1e-12)
    got_audit = audit_of(con)
    pd.testing.assert_frame_equal(got_audit, audit, check_dtype=False)
    assert json.loads(got["rules"].iloc[0])  # the winning rules are recorded


def perp_fill(fid: str, ts: str, account: str = "acct-000001") -> dict:
    """A BTC perpetual fill as a stream delivers it (every field text)."""
    return {"fill_id": fid, "ts": ts, "account_id": account, "instrument": "BTC-PERP",
            "underlying": "BTC", "kind": "perp", "side": "buy", "qty": "1", "price": "40000",
            "notional_usd": "40000", "fee_usd": "2", "is_maker": "false"}


class ListSource(Source):
    """Given batches of fills, one per read; ``count`` counts the reads."""

    name = "batches"

    def __init__(self, batches):
        self.batches = list(batches)
        self.count = 0

    def read(self, max_messages, block_ms):
        self.count += 1
        if not self.batches:
            return None
        fills = self.batches.pop(0)
        return Batch([Message(f, f"mem:{f['fill_id']}") for f in fills], str(self.count))

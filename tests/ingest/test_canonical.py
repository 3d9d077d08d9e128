"""Canonical directory (the simulator's layout), written here with pyarrow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from traderseg.ingest import ingest
from traderseg.schema import ACCOUNTS, FILLS, MARKET, TRANSFERS, TRUTH

from .conftest import NOW, balanced, rejects

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _fill(i: int, **kw) -> dict:
    row = dict(fill_id=f"f{i}", ts=T0 + timedelta(minutes=i), account_id=f"a{i % 3}",
               instrument="BTC-PERPETUAL", underlying="BTC", kind="perp",
               side="buy" if i % 2 else "sell", qty=10.0 + i, price=40000.0,
               notional_usd=10.0 + i, fee_usd=0.01, is_maker=bool(i % 2))
    row.update(kw)
    return row


def _write(table, rows, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.arrow_schema()), path)


def _sim_dir(root):
    _write(FILLS, [_fill(i) for i in range(0, 40)], root / "fills" / "part-000.parquet")
    opt = _fill(99, instrument="BTC-26JAN24-50000-C", kind="option", option_type="call",
                strike=50000.0, expiry=datetime(2024, 1, 26, 8, tzinfo=UTC), iv=0.5, delta=0.3,
                underlying_price=42000.0)
    _write(FILLS, [_fill(i) for i in range(40, 60)] + [opt, _fill(7)],
           root / "fills" / "part-001.parquet")
    _write(ACCOUNTS, [dict(account_id=f"a{i}", created_at=T0, region="EU", kyc_tier=1,
                           channel="organic", vip_tier=0) for i in range(3)],
           root / "accounts.parquet")
    _write(MARKET, [dict(ts=T0 + timedelta(days=d), underlying="BTC", price=42000.0 + d)
                    for d in range(5)], root / "market.parquet")
    _write(TRANSFERS, [dict(transfer_id="t1", ts=T0, account_id="a0", direction="deposit",
                            amount_usd=1000.0)], root / "transfers.parquet")
    _write(TRUTH, [dict(account_id="a0", archetype="perp_scalper", created_at=T0)],
           root / "truth.parquet")


def test_directory_loads_each_table(store, tmp_path):
    _sim_dir(tmp_path / "sim")
    rep = ingest(tmp_path / "sim", store, now=NOW, batch_rows=16)
    assert balanced(rep)
    by_table = {}
    for s in rep.sources:
        by_table.setdefault(s.table, []).append(s)
    assert sorted(by_table) == ["accounts", "fills", "market", "transfers", "truth"]
    counts = {t: store.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in by_table}
    assert counts == {"fills": 61, "accounts": 3, "market": 5, "transfers": 1, "truth": 1}
    # f7 appears again in the second part: already present, not stored twice
    part1 = [s for s in by_table["fills"] if s.source.endswith("part-001.parquet")][0]
    assert (part1.read, part1.stored, part1.already_present) == (22, 21, 1)
    opt = store.execute("SELECT strike, delta, source FROM fills WHERE fill_id='f99'").fetchone()
    assert opt[0] == 50000.0 and opt[1] == 0.3 and opt[2].endswith("part-001.parquet")

    again = ingest(tmp_path / "sim", store, now=NOW)
    assert sum(s.stored for s in again.sources) == 0
    assert sum(s.already_present for s in again.sources) == sum(s.read for s in again.sources)


def test_duplicates_across_batches_of_one_file(store, tmp_path):
    rows = [_fill(i) for i in range(30)] + [_fill(3, qty=1.0)]
    _write(FILLS, rows, tmp_path / "fills.parquet")
    rep = ingest(tmp_path / "fills.parquet", store, now=NOW, batch_rows=8)
    s = rep.sources[0]
    assert (s.read, s.stored, s.rejected) == (31, 30, 1)
    [rej] = rejects(store)
    assert rej["line"] == 31 and "first at line 4" in rej["reason"]
    assert store.execute("SELECT qty FROM fills WHERE fill_id='f3'").fetchone()[0] == 13.0


def test_canonical_csv_with_epoch_and_table_option(store, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("account_id,created_at,kyc_tier\nx1,1704067200000,2\nx2,1704067200,1.5\n")
    rep = ingest(path, store, table="accounts", now=NOW)
    assert (rep.sources[0].stored, rep.sources[0].rejected) == (1, 1)
    got = store.execute("SELECT created_at FROM accounts").to_arrow_table().to_pylist()[0]["created_at"]
    assert got == T0
    assert rejects(store)[0]["field"] == "kyc_tier"


def _store_rows(con) -> dict[str, list]:
    out = {}
    for t in ("fills", "tiles_day", "tiles_map_instrument", "tiles_sketch_notional"):
        out[t] = sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall()))
    out["rejects"] = sorted(map(repr, con.execute(
        "SELECT source, line, field, reason, raw FROM rejects").fetchall()))
    return out


def test_a_stage_moved_to_a_table_stores_what_the_memory_stage_stores(tmp_path, monkeypatch):
    """Staged rows beyond the memory limit go to a temporary table, at any batch: the same
    fills, rejects and tiles, with in-source duplicates and rows already stored."""
    from traderseg.ingest import load
    from traderseg.store import connect

    _write(FILLS, [_fill(i) for i in range(20)], tmp_path / "first.parquet")
    rows = [_fill(i) for i in range(10, 50)] + [_fill(12, qty=1.0), _fill(60, side="hold")]
    _write(FILLS, rows, tmp_path / "second.parquet")
    got, moves = {}, []
    real = load.SourceLoader._to_table

    def move(self):
        moves.append((self.source.rsplit("/", 1)[-1], self.staged))
        real(self)

    monkeypatch.setattr(load.SourceLoader, "_to_table", move)
    # the whole source in memory; moved at the first batch; moved at a later batch
    for label, limit in (("memory", load.STAGE_MEMORY_BYTES), ("first", -1), ("later", 1)):
        moves.clear()
        monkeypatch.setattr(load, "STAGE_MEMORY_BYTES", limit)
        if label == "later":  # about two batches of 8 rows
            probe = pa.Table.from_pylist(rows[:8], schema=FILLS.arrow_schema())
            monkeypatch.setattr(load, "STAGE_MEMORY_BYTES", 2 * probe.nbytes + 64)
        con = connect(tmp_path / f"{label}.duckdb")
        ingest(tmp_path / "first.parquet", con, now=NOW, batch_rows=8)
        rep = ingest(tmp_path / "second.parquet", con, now=NOW, batch_rows=8)
        s = rep.sources[0]
        assert (s.read, s.stored, s.already_present, s.rejected) == (42, 30, 10, 2), label
        got[label] = _store_rows(con)
        con.close()
        # (file, rows staged when the stage moved); the duplicate moves it at the end
        second = [n for f, n in moves if f == "second.parquet"]
        if label == "memory":
            assert moves == [("second.parquet", 41)]
        elif label == "first":
            assert moves == [("first.parquet", 8), ("second.parquet", 8)]
        else:  # after some batches held in memory, before the last
            assert len(second) == 1 and 8 < second[0] < 41
    assert got["first"] == got["memory"]
    assert got["later"] == got["memory"]


def test_values_that_do_not_fit_the_stored_column_are_one_error_naming_file_and_column(
        tmp_path, capsys):
    """A store whose column was narrowed by hand: the value is refused, not rounded, and the
    command says which file and column in one line (exit 2); nothing of the file is kept."""
    from helpers.cli import run_cli
    from traderseg.store import connect

    db = tmp_path / "s.duckdb"
    con = connect(db)
    con.execute("ALTER TABLE fills ALTER COLUMN qty TYPE INTEGER")
    con.close()
    _write(FILLS, [_fill(1, qty=10.5)], tmp_path / "f.parquet")
    code, out, err = run_cli(["ingest", str(tmp_path / "f.parquet"), "--db", str(db)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert "f.parquet" in lines[0] and "'qty'" in lines[0] and "fills.qty" in lines[0]
    assert duckdb_count(db) == 0


def duckdb_count(db) -> int:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM fills").fetchone()[0]
    finally:
        con.close()


def test_the_stage_moves_only_once_held_bytes_exceed_the_limit(tmp_path, monkeypatch):
    """At exactly the limit the rows stay in memory; one byte over, they move."""
    from traderseg.ingest import load
    from traderseg.store import connect

    _write(FILLS, [_fill(i) for i in range(20)], tmp_path / "f.parquet")
    held, moves = [], []
    real_add, real_move = load.SourceLoader.add_rows, load.SourceLoader._to_table

    def add(self, rows, lines):
        real_add(self, rows, lines)
        held.append(self._held_bytes)

    def move(self):
        moves.append(self.staged)
        real_move(self)

    monkeypatch.setattr(load.SourceLoader, "add_rows", add)
    monkeypatch.setattr(load.SourceLoader, "_to_table", move)

    def run(limit, name):
        held.clear()
        moves.clear()
        monkeypatch.setattr(load, "STAGE_MEMORY_BYTES", limit)
        con = connect(tmp_path / f"{name}.duckdb")
        ingest(tmp_path / "f.parquet", con, now=NOW, batch_rows=8)
        con.close()

    run(2**40, "probe")
    first = held[0]  # bytes held after the first batch of 8 rows
    assert moves == []
    run(first, "at")
    assert moves[:1] != [8]  # not after the first batch
    run(first - 1, "over")
    assert moves == [8]

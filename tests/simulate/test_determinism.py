"""Same seed, same bytes; another seed, another venue; chunking changes nothing."""

from __future__ import annotations

import filecmp

import pyarrow.parquet as pq

from traderseg.simulate import simulate_venue

FILES = ("accounts", "market", "transfers", "truth")


def _run(path, **kw):
    args = {"accounts": 520, "days": 10, "seed": 3, "chunk_accounts": 250} | kw
    return simulate_venue(path, **args)


def test_same_seed_same_bytes(tmp_path):
    a, b = _run(tmp_path / "a"), _run(tmp_path / "b")
    assert a.fills == b.fills > 0 and a.parts == b.parts == 3
    for name in FILES:
        assert filecmp.cmp(a.out / f"{name}.parquet", b.out / f"{name}.parquet", shallow=False)
    for part in sorted((a.out / "fills").iterdir()):
        assert filecmp.cmp(part, b.out / "fills" / part.name, shallow=False)


def test_other_seed_differs(tmp_path):
    a, c = _run(tmp_path / "a"), _run(tmp_path / "c", seed=4)
    fa = pq.read_table(a.out / "fills").column("price").to_pylist()
    fc = pq.read_table(c.out / "fills").column("price").to_pylist()
    assert fa != fc
    ta = pq.read_table(a.out / "truth.parquet").column("archetype").to_pylist()
    tc = pq.read_table(c.out / "truth.parquet").column("archetype").to_pylist()
    assert ta != tc


def test_chunking_does_not_change_the_tables(tmp_path):
    small, big = _run(tmp_path / "s", chunk_accounts=250), _run(tmp_path / "b", chunk_accounts=1000)
    assert (small.parts, big.parts) == (3, 1)
    fs = pq.read_table(small.out / "fills")
    fb = pq.read_table(big.out / "fills")
    assert fs.num_rows == fb.num_rows
    assert fs.equals(fb)
    for name in FILES:
        assert pq.read_table(small.out / f"{name}.parquet").equals(
            pq.read_table(big.out / f"{name}.parquet")
        )

"""``traderseg simulate --live``: history into a store, live fills to a file or Redis, stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import redis

from helpers.cli import run_cli_text
from traderseg.simulate.live import decode_fill

VENUE = ["--accounts", "40", "--days", "5", "--seed", "3", "--crash-at", "2024-01-04"]
UNTIL = "2024-01-03"


def _fills(out: Path):
    return pq.read_table(out / "fills").to_pandas()


def test_history_to_the_store_and_the_rest_to_a_file(tmp_path, capsys):
    out, live, db = tmp_path / "v", tmp_path / "fills-live.jsonl", tmp_path / "s.duckdb"
    args = ["simulate", "--out", str(out), *VENUE, "--live", "--to", str(live),
            "--history-until", UNTIL, "--db", str(db)]
    code, text = run_cli_text(args, capsys)
    assert code == 0, text
    fills = _fills(out)
    cut = fills["ts"] >= "2024-01-03T00:00:00Z"
    lines = [decode_fill(json.loads(x)) for x in live.read_text().splitlines()]
    assert len(lines) == int(cut.sum()) > 0
    keys = [(f["ts"], f["fill_id"]) for f in lines]
    assert keys == sorted(keys)
    assert set(f["fill_id"] for f in lines) == set(fills.loc[cut, "fill_id"])
    con = duckdb.connect(str(db), read_only=True)
    stored, latest = con.execute("select count(*), max(ts) from fills").fetchone()
    bars = con.execute("select count(*), max(ts) from market").fetchone()
    con.close()
    assert stored == int((~cut).sum())
    assert bars[0] == 4  # BTC and ETH bars of the two days closed by the live start
    assert f"wrote {len(lines):,} fills to {live}" in text
    # the crash and its cascade are in the live part
    assert any(f["is_liquidation"] and f["ts"].hour in (13, 14, 15) for f in lines
               if f["ts"].day == 4)
    # the same command again: nothing new anywhere
    code, text = run_cli_text(args, capsys)
    assert code == 0, text
    assert "found the simulation" in text and f"{len(lines):,} already there" in text
    assert len(live.read_text().splitlines()) == len(lines)


def test_to_redis(tmp_path, capsys, redis_url):
    out = tmp_path / "v"
    code, text = run_cli_text(["simulate", "--out", str(out), *VENUE, "--live", "--to",
                               f"{redis_url}/fills"], capsys)
    assert code == 0, text
    assert redis.Redis.from_url(redis_url).xlen("fills") == len(_fills(out))


@pytest.mark.parametrize("extra, match", [
    (["--to", "x.jsonl"], "--to applies to --live only"),
    (["--live"], "--live needs --to"),
    (["--live", "--to", "x.jsonl", "--db", "s.duckdb"], "--db needs --history-until"),
    (["--live", "--to", "redis://h:p/s"], "port is not a number"),
    (["--live", "--to", "x.jsonl", "--history-until", "2023-01-01"], "outside the simulated"),
    (["--crash-at", "2025-01-01"], "outside the simulated window"),
    (["--crash-at", "2024-01-02", "--crash-size", "1.5"], "crash size"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, extra, match):
    code, text = run_cli_text(["simulate", "--out", str(tmp_path / "v"), "--accounts", "5",
                               "--days", "3", *extra], capsys)
    assert code == 2, text
    assert match in text and "Traceback" not in text
    assert len(text.strip().splitlines()) == 1


def test_sigterm_stops_cleanly_with_the_count(tmp_path):
    out, live = tmp_path / "v", tmp_path / "live.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "traderseg", "simulate", "--out", str(out), *VENUE, "--live",
         "--to", str(live), "--rate", "200"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
    try:
        deadline = time.monotonic() + 90
        while not (live.exists() and live.stat().st_size > 0):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    written = len(live.read_text().splitlines())
    assert f"stopped: wrote {written:,} fills" in err
    assert written < len(_fills(out))
    assert "Traceback" not in err

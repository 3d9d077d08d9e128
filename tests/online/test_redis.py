"""The stream from a real Redis server: consumer groups, a dead consumer, a server restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import redis

from helpers.stream import DECIDE_EVERY_S, assert_same_decisions, batch_reference
from traderseg.online.sources import RedisAddress, RedisSource
from traderseg.simulate.fillcodec import encode_fill, encode_packed
from traderseg.simulate.live import live_fills
from traderseg.store import connect

STREAM = "fills"


def _produce(url: str, venue, *, only=None, pack: int = 1) -> int:
    """XADD the venue's fills in time order: one an entry, or ``pack`` to a packed entry."""
    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    n = 0
    held: list[dict] = []
    for k, f in enumerate(live_fills(venue.fills)):
        if only is not None and not only(k):
            continue
        held.append(f)
        if len(held) == pack:
            pipe.xadd(STREAM, encode_fill(f) if pack == 1 else encode_packed(held))
            held = []
        n += 1
        if n % 1000 == 0:
            pipe.execute()
    if held:
        pipe.xadd(STREAM, encode_packed(held))
    pipe.execute()
    client.close()
    return n


def _consumer(venue, db, url, name, *extra):
    cmd = [sys.executable, "-m", "traderseg", "-v", "stream", "--source", f"{url}/{STREAM}",
           "--db", str(db), "--model", str(venue.model), "--policy", str(venue.policy),
           "--decide-every", f"{DECIDE_EVERY_S:g}s", "--consumer", name,
           "--checkpoint-every", "0.2s", "--batch-size", "300", *extra]
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_for(proc, text: str, count: int = 1) -> list[str]:
    lines, seen = [], 0
    for line in proc.stderr:
        lines.append(line)
        if text in line:
            seen += 1
            if seen == count:
                return lines
    raise AssertionError("consumer ended before " + repr(text) + ":\n" + "".join(lines[-20:]))


def _drain(proc) -> threading.Thread:
    t = threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True)
    t.start()
    return t


def test_redis_address_forms():
    assert RedisAddress.parse("redis://h:7000/s") == RedisAddress("h", 7000, "s", 0)
    assert RedisAddress.parse("redis://h/2/s") == RedisAddress("h", 6379, "s", 2)
    with pytest.raises(Exception, match="expected redis://HOST:PORT/STREAM"):
        RedisAddress.parse("redis://h:7000")


@pytest.mark.slow
def test_a_dead_consumers_entries_are_claimed_and_nothing_is_lost(venue, tmp_path, redis_url):
    db = venue.store(tmp_path)
    n = _produce(redis_url, venue)
    a = _consumer(venue, db, redis_url, "a", "--batch-size", "200")
    _wait_for(a, "checkpoint ", 3)
    a.send_signal(signal.SIGKILL)
    assert a.wait(timeout=60) == -signal.SIGKILL
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    pending_a = client.xpending(STREAM, "traderseg")["pending"]
    b = _consumer(venue, db, redis_url, "b", "--claim-idle", "0.2s", "--idle-stop", "3s")
    _drain(b)
    assert b.wait(timeout=600) == 0
    assert client.xpending(STREAM, "traderseg")["pending"] == 0  # every entry acknowledged
    con = connect(db)
    assert con.execute("SELECT count(*), count(DISTINCT fill_id) FROM fills").fetchone() == (n, n)
    latest, audit = batch_reference(con, venue, DECIDE_EVERY_S)
    assert_same_decisions(con, latest, audit)
    con.close()
    assert pending_a >= 0


@pytest.mark.slow
def test_a_server_that_goes_away_and_comes_back(venue, tmp_path, redis_server):
    url = redis_server.url
    db = venue.store(tmp_path)
    everything = sum(1 for _ in live_fills(venue.fills))
    n = _produce(url, venue, only=lambda k: k < everything // 2)  # the first half, in order
    c = _consumer(venue, db, url, "a", "--idle-stop", "15s")
    # the first commit: the consumer may have read the whole first half by then, and it
    # stops only after 15 s without messages, so the server goes away while it runs
    _wait_for(c, "checkpoint ", 1)
    redis_server.stop()  # the server keeps nothing: the stream and the group are gone
    time.sleep(1.0)
    redis_server.start()
    # the producer sends everything again (the first half a second time, then the rest):
    # the fills seen before are recognised by their id
    total = _produce(url, venue)
    lines: list[str] = []
    t = threading.Thread(target=lambda: lines.extend(c.stderr), daemon=True)
    t.start()
    assert c.wait(timeout=600) == 0, "".join(lines[-20:])
    t.join(timeout=5)
    text = "".join(lines)
    assert "Traceback" not in text
    assert "is gone; creating it again" in text  # it saw the server come back empty
    con = connect(db)
    assert con.execute("SELECT count(*), count(DISTINCT fill_id) FROM fills").fetchone() == (
        total, total)
    latest, audit = batch_reference(con, venue, DECIDE_EVERY_S)
    assert_same_decisions(con, latest, audit)
    con.close()
    assert n < total


def test_a_server_that_stays_away_is_a_one_line_error():
    from helpers.redis_server import free_port
    from traderseg.errors import DataError

    src = RedisSource(f"redis://127.0.0.1:{free_port()}/{STREAM}", give_up_s=0.3)
    with pytest.raises(DataError, match="Redis unreachable"):
        src.resume(None)


def test_published_controls_are_the_last_decision_per_account(redis_url):
    import pandas as pd

    from traderseg.online.publish import RedisPublisher, read_published

    rows = pd.DataFrame({"account_id": ["a", "a", "b"], "max_leverage": [20.0, 10.0, 50.0],
                         "review_flag": [False, True, False], "review_reason": [None, "x", None]})
    pub = RedisPublisher(redis_url)
    pub(rows)
    pub(rows)  # the same decisions again leave the same hashes
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert read_published(client, "a") == {"account_id": "a", "max_leverage": "10.0",
                                           "review_flag": "true", "review_reason": "x"}
    assert read_published(client, "b")["review_reason"] == ""
    assert read_published(client, "c") == {}


def _consume_in_process(venue, db, url, **cfg):
    from helpers.stream import engine_for
    from traderseg.online.consumer import StreamConfig, StreamConsumer

    con = connect(db)
    src = RedisSource(f"{url}/{STREAM}")
    try:
        st = StreamConsumer(con, src, engine_for(con, venue),
                            StreamConfig(decide_every_s=DECIDE_EVERY_S, idle_stop_s=0.5,
                                         block_ms=50, **cfg),
                            source_label=f"{url}/{STREAM}").run()
    finally:
        src.close()
    return con, st


def test_packed_entries_give_the_decisions_of_the_batch(venue, tmp_path, redis_url):
    """Seven fills an entry, the last entry shorter: every fill in, the same decisions."""
    n = _produce(redis_url, venue, pack=7)
    client = redis.Redis.from_url(redis_url)
    assert client.xlen(STREAM) == -(-n // 7)
    con, st = _consume_in_process(venue, venue.store(tmp_path), redis_url, batch_size=40)
    assert (st.read, st.accepted, st.rejected) == (n, n, 0)
    assert client.xpending(STREAM, "traderseg")["pending"] == 0
    assert con.execute("SELECT count(*), count(DISTINCT fill_id) FROM fills").fetchone() == (n, n)
    latest, audit = batch_reference(con, venue, DECIDE_EVERY_S)
    assert_same_decisions(con, latest, audit)
    con.close()


def test_bad_lines_of_a_packed_entry_are_rejected_by_line(venue, tmp_path, redis_url):
    good = {"fill_id": "x1", "ts": "2024-01-02T10:00:00Z", "account_id": "acct-000001",
            "instrument": "BTC-PERP", "underlying": "BTC", "kind": "perp", "side": "buy",
            "qty": "1", "price": "40000", "notional_usd": "40000", "fee_usd": "2",
            "is_maker": "false"}
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    first = client.xadd(STREAM, {"fills": "\n".join([
        json.dumps(good), "{not json", json.dumps(dict(good, fill_id="x2", qty="-1")),
        json.dumps(dict(good, fill_id="x3", ts="2024-01-02T10:30:00Z"))])})
    # typed values and an entry of one fill beside packed ones still read as messages do
    client.xadd(STREAM, {"fills": json.dumps(dict(good, fill_id="x4", qty=2))})
    client.xadd(STREAM, dict(good, fill_id="x5", ts="2024-01-02T11:00:00Z"))
    client.xadd(STREAM, {"fills": json.dumps(dict(good, fill_id="x6", kind="swap")) + "\n"})
    con, st = _consume_in_process(venue, venue.store(tmp_path), redis_url)
    assert (st.read, st.accepted, st.rejected) == (7, 4, 3)
    rej = con.execute("SELECT source, line, field FROM rejects ORDER BY source, line").fetchall()
    last = client.xrevrange(STREAM, count=1)[0][0]
    assert sorted(rej) == sorted([(f"{STREAM}:{first}", 2, "*"), (f"{STREAM}:{first}", 3, "qty"),
                                  (f"{STREAM}:{last}", 1, "kind")])
    assert sorted(r[0] for r in con.execute("SELECT fill_id FROM fills").fetchall()) == [
        "x1", "x3", "x4", "x5"]
    assert con.execute("SELECT qty FROM fills WHERE fill_id = 'x4'").fetchone() == (2.0,)
    con.close()


def test_a_read_of_packed_entries_is_one_table_named_by_entry_and_line(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    a = client.xadd(STREAM, {"fills": '{"fill_id": "f1"}\n{"fill_id": "f2"}'})
    b = client.xadd(STREAM, {"fill_id": "f3"})
    c = client.xadd(STREAM, {"fills": '{"fill_id": "f4", "qty": "1.5"}'})
    src = RedisSource(f"{redis_url}/{STREAM}")
    src.resume(None)
    batch = src.read(10, 0)
    assert batch.table is not None and not batch.messages
    assert batch.table.column("fill_id").to_pylist() == ["f1", "f2", "f3", "f4"]
    assert batch.table.column("qty").to_pylist() == [None, None, None, "1.5"]
    assert batch.refs == [f"{STREAM}:{a}#1", f"{STREAM}:{a}#2", f"{STREAM}:{b}", f"{STREAM}:{c}#1"]
    assert batch.lines[1] == '{"fill_id": "f2"}'
    assert (batch.size, batch.ack, batch.position) == (4, [a, b, c], c)
    # one line that is not an object of texts: the read falls back to a message a line
    d = client.xadd(STREAM, {"fills": '{"fill_id": "f5"}\n[1]'})
    batch = src.read(10, 0)
    assert batch.table is None
    assert [m.ref for m in batch.messages] == [f"{STREAM}:{d}#1", f"{STREAM}:{d}#2"]
    assert batch.messages[0].fields == {"fill_id": "f5"}
    assert "__error__" in batch.messages[1].fields
    src.close()


def test_reads_count_packed_entries_at_the_fills_they_held(redis_url):
    from traderseg.online.sources import FIRST_READ

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    for e in range(FIRST_READ + 10):
        client.xadd(STREAM, {"fills": "\n".join(
            json.dumps({"fill_id": f"f{e}-{k}"}) for k in range(5))})
    src = RedisSource(f"{redis_url}/{STREAM}")
    src.resume(None)
    first = src.read(1_000, 0)  # nothing known yet: at most FIRST_READ entries
    assert (len(first.ack), first.size) == (FIRST_READ, 5 * FIRST_READ)
    second = src.read(12, 0)  # 5 fills an entry: 2 entries (12 / 5, rounded down)
    assert (len(second.ack), second.size) == (2, 10)
    third = src.read(4, 0)  # fewer fills asked than an entry holds: still one entry
    assert (len(third.ack), third.size) == (1, 5)
    src.close()


def test_a_dead_consumers_entries_are_all_claimed_before_newer_ones(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    old = [client.xadd(STREAM, {"fill_id": f"old{k}"}) for k in range(10)]
    dead = RedisSource(f"{redis_url}/{STREAM}", consumer="dead")
    dead.resume(None)
    assert dead.read(10, 0).ack == old  # read, never acknowledged: pending for "dead"
    new = [client.xadd(STREAM, {"fill_id": f"new{k}"}) for k in range(5)]
    src = RedisSource(f"{redis_url}/{STREAM}", consumer="live", claim_idle_ms=0)
    src.resume(None)
    order: list[str] = []
    while len(order) < 15:
        batch = src.read(3, 100)  # 3 an entry: a claim takes 3 of the 10 at a time
        assert batch.size, order
        order += batch.ack
    # every claimed entry, in id order, before any newer one; none twice
    assert order == old + new
    assert client.xpending(STREAM, "traderseg")["consumers"] == [
        {"name": "live", "pending": 15}]
    src.close()
    dead.close()


@pytest.mark.parametrize("pack", [1, 7])
def test_latencies_one_per_entry_and_one_per_interval_closed_by_a_fill(venue, tmp_path,
                                                                         redis_url, pack):
    n = _produce(redis_url, venue, pack=pack)
    con, st = _consume_in_process(venue, venue.store(tmp_path), redis_url, batch_size=300,
                                  record_latency=True)
    assert st.accepted == n
    assert len(st.latencies_ms) == -(-n // pack)  # XADD to commit: every entry
    # XADD of the closing fill to the decisions: every interval but the last, which the
    # idle stop closes
    assert len(st.decision_latencies_ms) == st.ticks - 1 >= 3
    assert all(0 <= x < 60_000 for x in st.decision_latencies_ms)
    con.close()


def test_xadd_times_are_read_from_entry_ids():
    from traderseg.online.consumer import _xadd_ms

    got = _xadd_ms(["fills:1700000000123-0", "a:b:1700000000124-5#3"])
    assert got.tolist() == [1700000000123.0, 1700000000124.0]

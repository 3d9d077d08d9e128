"""The Redis sink against a real redis-server: ids, order, resumption, a server that leaves."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
import redis

from traderseg.errors import SinkError
from traderseg.schema import FILLS
from traderseg.simulate.live import RedisSink, decode_fill, write_live

T = datetime(2024, 1, 1, tzinfo=UTC)  # epoch ms 1704067200000


def _fill(i: int, ts: datetime) -> dict:
    f = dict.fromkeys(FILLS.names)
    f.update(fill_id=f"f{i}", ts=ts, account_id="a", instrument="BTC-PERPETUAL",
             underlying="BTC", kind="perp", side="buy", qty=1.0, price=100.0,
             notional_usd=100.0, fee_usd=0.05, is_maker=False, leverage=20.0)
    return f


FILLS_3 = [_fill(0, T + timedelta(microseconds=500)), _fill(1, T + timedelta(microseconds=900)),
           _fill(2, T + timedelta(milliseconds=2))]


def test_entries_get_ids_from_the_fill_time_and_decode_back(redis_url):
    sink = RedisSink(f"{redis_url}/fills")
    res = write_live(FILLS_3, sink)
    assert res.written == 3
    entries = redis.Redis.from_url(redis_url).xrange("fills")
    # two fills in the same millisecond count 0, 1; the next millisecond starts at 0
    assert [e[0] for e in entries] == [b"1704067200000-0", b"1704067200000-1",
                                       b"1704067200002-0"]
    assert [decode_fill(e[1]) for e in entries] == FILLS_3
    assert entries[0][1][b"ts"] == b"2024-01-01T00:00:00.000500Z"
    assert b"strike" not in entries[0][1]  # nulls omitted


def test_packed_entries_take_the_id_of_their_last_fill(redis_url):
    import json

    from traderseg.simulate.fillcodec import packed_lines

    res = write_live(FILLS_3, RedisSink(f"{redis_url}/fills", pack=2))
    assert res.written == 3
    entries = redis.Redis.from_url(redis_url).xrange("fills")
    # fills 0 and 1 in one entry (the id of fill 1), fill 2 alone in the last
    assert [e[0] for e in entries] == [b"1704067200000-1", b"1704067200002-0"]
    assert [len(packed_lines(e[1])) for e in entries] == [2, 1]
    assert [decode_fill(json.loads(x)) for e in entries for x in packed_lines(e[1])] == FILLS_3
    sink = RedisSink(f"{redis_url}/fills", pack=2)
    assert sink.last_written() == (FILLS_3[2]["ts"], "f2")
    sink.write(FILLS_3)  # written already: nothing added
    assert redis.Redis.from_url(redis_url).xlen("fills") == 2


def test_a_pack_as_large_as_the_batch_is_one_entry(redis_url):
    write_live(FILLS_3, RedisSink(f"{redis_url}/fills", pack=3))
    assert [e[0] for e in redis.Redis.from_url(redis_url).xrange("fills")] == [
        b"1704067200002-0"]
    with pytest.raises(Exception, match="at least 1"):
        RedisSink(f"{redis_url}/fills", pack=0)


def test_a_new_run_goes_on_after_the_last_entry(redis_url):
    write_live(FILLS_3[:2], RedisSink(f"{redis_url}/fills"))
    sink = RedisSink(f"{redis_url}/fills")
    assert sink.last_written() == (FILLS_3[1]["ts"], "f1")
    res = write_live(FILLS_3, sink)
    assert (res.skipped, res.written) == (2, 1)
    assert redis.Redis.from_url(redis_url).xlen("fills") == 3
    # a batch written twice (a retry after a failure) adds nothing
    sink.write(FILLS_3)
    assert redis.Redis.from_url(redis_url).xlen("fills") == 3


def test_maxlen_trims_the_stream(redis_url):
    many = [_fill(i, T + timedelta(milliseconds=i)) for i in range(2_000)]
    write_live(many, RedisSink(f"{redis_url}/fills", maxlen=100))
    n = redis.Redis.from_url(redis_url).xlen("fills")
    assert 100 <= n < 2_000  # approximate trimming keeps about maxlen


def test_a_key_that_is_not_a_stream_is_a_clean_error(redis_url):
    redis.Redis.from_url(redis_url).set("fills", "x")
    with pytest.raises(SinkError, match="WRONGTYPE"):
        write_live(FILLS_3, RedisSink(f"{redis_url}/fills"))


def test_a_server_that_goes_away_and_comes_back(redis_server, caplog):
    sink = RedisSink(f"{redis_server.url}/fills", timeout=1.0)
    first = [_fill(i, T + timedelta(milliseconds=i)) for i in range(600)]
    sink.write(first[:500])
    redis_server.stop()
    clock = [0.0]

    def sleep(s):  # the server comes back 0.3 s into the outage, while the writer waits
        clock[0] += s
        if clock[0] >= 0.3 and redis_server.proc is None:
            redis_server.start()

    caplog.set_level(logging.WARNING)
    res = write_live(first[500:], sink, sleep=sleep, clock=lambda: clock[0])
    # tries at 0 s and 0.1 s fail; after doubling the wait to 0.2 s, the one at 0.3 s works
    assert res.written == 100 and res.retries == 2
    # a server without persistence comes back empty: the batch lands again, once
    entries = redis.Redis.from_url(redis_server.url).xrange("fills")
    assert [decode_fill(e[1])["fill_id"] for e in entries] == [f"f{i}" for i in range(500, 600)]
    msgs = [r.getMessage() for r in caplog.records]
    assert any("retrying with backoff" in m for m in msgs)
    assert any(m.endswith("is back after 0.3 s") for m in msgs)
    assert all("\n" not in m for m in msgs)


def test_a_server_that_stays_away_is_given_up_on(redis_server):
    sink = RedisSink(f"{redis_server.url}/fills", timeout=1.0)
    redis_server.stop()
    clock = [0.0]

    def sleep(s):
        clock[0] += s

    with pytest.raises(SinkError, match="gave up after 10 s"):
        write_live(FILLS_3, sink, max_outage=10.0, clock=lambda: clock[0], sleep=sleep)

"""The stream from a real Redis server: consumer groups, a dead consumer, a server restart."""

from __future__ import annotations

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
from traderseg.simulate.fillcodec import encode_fill
from traderseg.simulate.live import live_fills
from traderseg.store import connect

STREAM = "fills"


def _produce(url: str, venue, *, only=None) -> int:
    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    n = 0
    for k, f in enumerate(live_fills(venue.fills)):
        if only is not None and not only(k):
            continue
        pipe.xadd(STREAM, encode_fill(f))
        n += 1
        if n % 1000 == 0:
            pipe.execute()
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

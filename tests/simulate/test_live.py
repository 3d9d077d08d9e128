"""Live mode: the fill encoding, token-bucket pacing, ordering, sinks and resumption."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traderseg.errors import ConfigError, DataError, SinkError
from traderseg.schema import FILLS
from traderseg.simulate.live import (
    FillDecodeError,
    JsonlSink,
    TokenBucket,
    batch_size,
    decode_fill,
    encode_fill,
    live_fills,
    pacing_schedule,
    write_live,
)
from traderseg.simulate.sinks import open_sink, parse_redis_url

T = datetime(2024, 1, 10, 13, 5, 59, 1, tzinfo=UTC)
BASE = {"fill_id": "f1", "ts": T, "account_id": "a", "instrument": "BTC-PERPETUAL",
        "underlying": "BTC", "kind": "perp", "side": "buy", "qty": 0.1, "price": 42000.0,
        "notional_usd": 4200.0, "fee_usd": -2.1, "is_maker": True}


def _full(**kw):
    out = dict.fromkeys(FILLS.names)
    out.update(BASE)
    out.update(kw)
    return out


# -- encoding -------------------------------------------------------------------------

def test_encoding_by_hand():
    enc = encode_fill(_full(leverage=12.5, is_liquidation=False, strike=None,
                            iv=float("nan"), expiry=datetime(2024, 3, 29, 8, tzinfo=UTC),
                            source="ignored.parquet"))
    assert enc == {
        "fill_id": "f1", "ts": "2024-01-10T13:05:59.000001Z", "account_id": "a",
        "instrument": "BTC-PERPETUAL", "underlying": "BTC", "kind": "perp", "side": "buy",
        "qty": "0.1", "price": "42000.0", "notional_usd": "4200.0", "fee_usd": "-2.1",
        "is_maker": "true", "leverage": "12.5", "is_liquidation": "false",
        "expiry": "2024-03-29T08:00:00.000000Z",
    }
    assert list(enc) == [n for n in FILLS.names if n in enc]  # canonical order


def test_times_are_written_in_utc_whatever_their_zone():
    plus2 = datetime(2024, 1, 10, 15, 5, 59, 1, tzinfo=timezone(timedelta(hours=2)))
    assert encode_fill(_full(ts=plus2))["ts"] == "2024-01-10T13:05:59.000001Z"
    naive = datetime(2024, 1, 10, 13, 5, 59, 1)  # naive = UTC
    assert encode_fill(_full(ts=naive))["ts"] == "2024-01-10T13:05:59.000001Z"


_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
_float = st.floats(allow_nan=False)
_ts = st.datetimes(min_value=datetime(2009, 1, 3), max_value=datetime(2100, 1, 1),
                   timezones=st.just(UTC))


@st.composite
def fills(draw):
    f = {}
    for c in FILLS.columns:
        if pa.types.is_timestamp(c.type):
            value = draw(_ts)
        elif pa.types.is_floating(c.type):
            value = draw(_float)
        elif pa.types.is_boolean(c.type):
            value = draw(st.booleans())
        else:
            value = draw(_text)
        f[c.name] = value if c.required or draw(st.booleans()) else None
    return f


@settings(max_examples=200, deadline=None)
@given(fills())
def test_round_trip_through_fields_json_and_bytes(fill):
    enc = encode_fill(fill)
    assert all(isinstance(v, str) for v in enc.values())
    assert decode_fill(enc) == fill
    assert decode_fill(json.loads(json.dumps(enc))) == fill
    # a Redis client hands back bytes
    assert decode_fill({k.encode(): v.encode() for k, v in enc.items()}) == fill


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False))
def test_floats_read_back_to_the_same_bits(x):
    got = decode_fill(encode_fill(_full(qty=x)))["qty"]
    assert got == x and math.copysign(1.0, got) == math.copysign(1.0, x)


@pytest.mark.parametrize("field, value, reason", [
    ("is_maker", "True", "expected true or false"),
    ("is_maker", "1", "expected true or false"),
    ("ts", "2024-01-10T13:05:59", "expected an ISO-8601 time with offset"),
    ("ts", "yesterday", "expected an ISO-8601 time with offset"),
    ("qty", "0,1", "expected a number"),
    ("colour", "red", "not a canonical fill column"),
])
def test_bad_fields_are_named(field, value, reason):
    enc = encode_fill(_full())
    enc[field] = value
    with pytest.raises(FillDecodeError, match=reason) as err:
        decode_fill(enc)
    assert err.value.field == field
    assert "\n" not in str(err.value)


def test_a_missing_required_field_is_named():
    enc = encode_fill(_full())
    del enc["price"]
    with pytest.raises(FillDecodeError, match="required field missing") as err:
        decode_fill(enc)
    assert err.value.field == "price"


# -- pacing ---------------------------------------------------------------------------

def test_token_bucket_by_hand():
    b = TokenBucket(rate=10.0, capacity=5.0)
    assert b.take(5, now=0.0) == 0.0  # starts full: the first batch goes at once
    assert b.take(5, now=0.0) == 0.5  # empty: 5 tokens take 0.5 s
    assert b.take(5, now=0.5) == 0.5  # the debt is paid at 0.5 s, the next 5 by 1.0 s
    b = TokenBucket(rate=10.0, capacity=5.0)
    b.take(5, now=0.0)
    assert b.take(5, now=100.0) == 0.0  # refilled, but holds no more than its capacity
    assert b.take(1, now=100.0) == pytest.approx(0.1)
    assert pacing_schedule([5, 5, 5, 5], rate=10.0, capacity=5) == [0.0, 0.5, 1.0, 1.5]
    # by default the burst is one batch: at 10 fills/s batches of 1, 0.1 s apart
    assert pacing_schedule([1, 1, 1], rate=10.0) == pytest.approx([0.0, 0.1, 0.2])
    assert pacing_schedule([3, 3], rate=0) == [0.0, 0.0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 20), min_size=1, max_size=40), st.floats(0.5, 1e4),
       st.integers(1, 20))
def test_schedule_keeps_to_the_rate_and_loses_no_time(sizes, rate, capacity):
    times = pacing_schedule(sizes, rate, capacity)
    assert times == sorted(times)
    cum = 0
    for n, t in zip(sizes, times):
        cum += n
        # never more than the burst plus the rate allows, and never later than needed
        assert cum <= capacity + rate * t + 1e-6 * cum
        assert t == pytest.approx(max(0.0, (cum - capacity) / rate), rel=1e-9, abs=1e-9)


def test_batch_size():
    assert batch_size(0) == 500
    assert batch_size(40) == 2  # a twentieth of a second's worth
    assert batch_size(39.9) == 1
    assert batch_size(10_000) == 500
    with pytest.raises(ConfigError):
        batch_size(-1)


class ListSink:
    """An output kept in memory (the writer is what is under test)."""

    name = "list"

    def __init__(self, held=None):
        self.fills = list(held or [])

    def write(self, fills):
        self.fills.extend(fills)

    def last_written(self):
        return (self.fills[-1]["ts"], self.fills[-1]["fill_id"]) if self.fills else None

    def close(self):
        pass


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.now += s


def _stream(n, start=T):
    return [_full(fill_id=f"f{i:04d}", ts=start + timedelta(milliseconds=i)) for i in range(n)]


def test_write_live_paces_on_a_simulated_clock():
    clock, sink = FakeClock(), ListSink()
    res = write_live(_stream(100), sink, rate=40.0, clock=clock, sleep=clock.sleep)
    # batches of 2, the first at once: (100 - 2) / 40 = 2.45 s
    assert clock.now == pytest.approx(2.45)
    assert res.written == 100 and not res.stopped and res.skipped == 0
    assert [f["fill_id"] for f in sink.fills] == [f"f{i:04d}" for i in range(100)]


def test_stop_then_start_again_goes_on_after_the_last_fill(tmp_path):
    path = tmp_path / "fills-live.jsonl"
    fills = _stream(1_234)
    batches = []
    res = write_live(fills, JsonlSink(path), should_stop=lambda: len(batches) >= 2,
                     on_batch=batches.append)
    assert res.stopped and res.written == 1_000 == len(path.read_text().splitlines())
    res2 = write_live(fills, JsonlSink(path))
    assert (res2.skipped, res2.written, res2.stopped) == (1_000, 234, False)
    lines = [decode_fill(json.loads(x)) for x in path.read_text().splitlines()]
    assert [f["fill_id"] for f in lines] == [f["fill_id"] for f in fills]
    assert write_live(fills, JsonlSink(path)).written == 0  # idempotent


def test_a_half_written_last_line_is_cut(tmp_path, caplog):
    path = tmp_path / "fills.jsonl"
    fills = _stream(3)
    write_live(fills[:2], JsonlSink(path))
    with path.open("a") as f:
        f.write('{"fill_id":"f0002","ts":"2024-')
    sink = JsonlSink(path)
    assert sink.last_written() == (fills[1]["ts"], "f0001")
    assert "cut a partial last line" in caplog.text
    write_live(fills, sink)
    assert [json.loads(x)["fill_id"] for x in path.read_text().splitlines()] == \
        ["f0000", "f0001", "f0002"]


def test_a_file_that_is_not_a_live_file_is_refused(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text("not json\n")
    with pytest.raises(SinkError, match="not JSON"):
        JsonlSink(path).last_written()


def test_jsonl_from_the_live_mode_ingests_back_to_the_same_fills(tmp_path):
    from traderseg.ingest import ingest
    from traderseg.store import connect

    src = tmp_path / "fills.parquet"
    rows = [_full(fill_id="a", ts=T, leverage=10.0, is_liquidation=True,
                  position_effect="close", realized_pnl_usd=-3.25, underlying_price=41999.5),
            _full(fill_id="b", ts=T + timedelta(seconds=1), kind="option",
                  instrument="BTC-29MAR24-50000-C", option_type="call", strike=50000.0,
                  expiry=datetime(2024, 3, 29, 8, tzinfo=UTC), iv=0.55, delta=0.21,
                  underlying_price=42000.0)]
    pq.write_table(pa.Table.from_pylist(rows, schema=FILLS.arrow_schema()), src)
    live = tmp_path / "fills-live.jsonl"
    write_live(live_fills(src), JsonlSink(live))
    report = ingest([live], tmp_path / "s.duckdb")
    assert report.total("stored") == 2 and report.total("rejected") == 0
    con = connect(tmp_path / "s.duckdb")
    got = con.execute(f"select {', '.join(FILLS.names)} from fills order by fill_id").to_arrow_table()
    con.close()
    assert got.to_pylist() == list(live_fills(src))


def test_live_fills_in_time_then_id_order_within_bounds(tmp_path):
    t1 = T + timedelta(seconds=1)
    rows = [_full(fill_id=i, ts=ts) for i, ts in
            (("c", t1), ("b", T), ("a", t1), ("d", T + timedelta(seconds=2)), ("z", T))]
    part = tmp_path / "fills"
    part.mkdir()
    pq.write_table(pa.Table.from_pylist(rows[:3], schema=FILLS.arrow_schema()), part / "p0.parquet")
    pq.write_table(pa.Table.from_pylist(rows[3:], schema=FILLS.arrow_schema()), part / "p1.parquet")
    assert [f["fill_id"] for f in live_fills(tmp_path)] == ["b", "z", "a", "c", "d"]
    # since is inclusive, until exclusive
    got = live_fills(tmp_path, since=t1, until=T + timedelta(seconds=2))
    assert [f["fill_id"] for f in got] == ["a", "c"]
    with pytest.raises(DataError, match="no fills Parquet"):
        next(live_fills(tmp_path / "nothing"))


@pytest.mark.parametrize("target, match", [
    ("redis://host:port/s", "port is not a number"), ("redis://host:6379", "expected redis://"),
    ("http://x/y", "expected redis://"),
])
def test_bad_targets(target, match):
    with pytest.raises(ConfigError, match=match):
        open_sink(target)


def test_pack_and_maxlen_are_for_redis_only(tmp_path):
    with pytest.raises(ConfigError, match="--pack applies to a Redis stream only"):
        open_sink(str(tmp_path / "f.jsonl"), pack=5)
    with pytest.raises(ConfigError, match="--maxlen applies to a Redis stream only"):
        open_sink(str(tmp_path / "f.jsonl"), maxlen=5)


def test_redis_url_parts():
    assert parse_redis_url("redis://127.0.0.1:6390/fills") == ("127.0.0.1", 6390, "fills")

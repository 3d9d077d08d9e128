import numpy as np
import pandas as pd
import pytest

from helpers.cli import run_cli_text
from traderseg.cli import _load_commands, analyze_app
from traderseg.store import connect


def _store(path, start, days, crash_day=None):
    rng = np.random.default_rng(1)
    con = connect(path)
    ts = pd.date_range(start, periods=days, freq="D", tz="UTC")
    price = 20_000 * np.exp(np.cumsum(rng.normal(0, 0.01, days)))
    if crash_day is not None:
        price[crash_day:] *= 0.7
    market = pd.DataFrame({"ts": ts, "underlying": "BTC", "price": price, "high": price,
                           "low": price, "iv_index": 50.0, "event": None})
    con.register("m", market)
    con.execute("INSERT INTO market BY NAME SELECT * FROM m")
    n = 40 * days
    when = ts[0] + pd.to_timedelta(rng.integers(0, days * 86_400, n), unit="s")
    fills = pd.DataFrame({
        "fill_id": [f"f{i}" for i in range(n)], "ts": when.astype("datetime64[us, UTC]"),
        "account_id": rng.choice(["a", "b", "c", "d"], n), "instrument": "BTC-PERPETUAL",
        "underlying": "BTC", "kind": "perp", "side": rng.choice(["buy", "sell"], n),
        "qty": 1.0, "price": 20_000.0, "notional_usd": rng.uniform(1e3, 1e5, n),
        "fee_usd": 1.0, "is_maker": False,
    })
    con.register("f", fills)
    con.execute(f"INSERT INTO fills BY NAME SELECT {', '.join(fills.columns)} FROM f")
    con.close()


def _assignments(path):
    pd.DataFrame({"account_id": ["a", "b", "c", "d"],
                  "segment": ["makers", "makers", "punters", "punters"]}).to_parquet(path)


def test_events_command_lists_real_events_and_writes_them(tmp_path, capsys):
    out = tmp_path / "events.parquet"
    code, text = run_cli_text(["analyze", "events", "--real", "--underlying", "BTC", "--out", str(out)],
                             capsys)
    assert code == 0, text
    ev = pd.read_parquet(out)
    assert pd.Timestamp("2020-03-12", tz="UTC") in set(ev["ts"])
    assert "2020-03-12" in text


def test_events_command_reads_the_store_market(tmp_path, capsys):
    _store(tmp_path / "s.duckdb", "2024-01-01", 150, crash_day=100)
    code, text = run_cli_text(["analyze", "events", "--market-db", str(tmp_path / "s.duckdb")], capsys)
    assert code == 0, text
    assert "2024-04-10" in text and "crash" in text


def test_events_command_needs_exactly_one_source(tmp_path, capsys):
    code, text = run_cli_text(["analyze", "events"], capsys)
    assert code == 2 and "exactly one" in text
    code, text = run_cli_text(["analyze", "events", "--real", "--underlying", "DOGE"], capsys)
    assert code == 2 and "DOGE" in text


def test_event_study_command_from_the_store(tmp_path, capsys):
    db, assign, out = tmp_path / "s.duckdb", tmp_path / "a.parquet", tmp_path / "study.parquet"
    _store(db, "2024-01-01", 150, crash_day=100)
    _assignments(assign)
    code, text = run_cli_text(["analyze", "event-study", "--db", str(db), "--assignments", str(assign),
                              "--events-from", "store", "--window", "-3,3", "--out", str(out)], capsys)
    assert code == 0, text
    study = pd.read_parquet(out)
    assert set(study["segment"]) == {"makers", "punters"}
    assert sorted(study["rel_day"].unique()) == list(range(-3, 4))
    assert "CAR" in text


def test_event_study_command_with_real_events(tmp_path, capsys):
    db, assign, out = tmp_path / "s.duckdb", tmp_path / "a.parquet", tmp_path / "study.parquet"
    _store(db, "2022-08-01", 150)
    _assignments(assign)
    code, text = run_cli_text(["analyze", "event-study", "--db", str(db), "--assignments", str(assign),
                              "--events-from", "real", "--kinds", "crash", "--out", str(out)], capsys)
    assert code == 0, text
    assert (pd.read_parquet(out)["n_events"] >= 1).all()
    code, text = run_cli_text(["analyze", "event-study", "--db", str(db), "--assignments", str(assign),
                              "--window", "five", "--out", str(out)], capsys)
    assert code == 2 and "--window" in text


@pytest.mark.parametrize("name", ["events", "event-study"])
def test_commands_have_help(name):
    _load_commands()
    cmds = {c.name: c for c in analyze_app.registered_commands}
    assert cmds[name].callback.__doc__


def test_event_study_workflow_in_the_library(tmp_path):
    from traderseg.analysis.events import study_segment_events
    from traderseg.errors import DataError

    db = tmp_path / "s.duckdb"
    _store(db, "2024-01-01", 150, crash_day=100)
    assign = pd.DataFrame({"account_id": ["a", "b", "c", "d"],
                           "segment": ["makers", "makers", "punters", "punters"]})
    res = study_segment_events(db, assign, events_from="store", window=(-3, 3))
    assert pd.Timestamp("2024-04-10", tz="UTC") in set(res.used["ts"])
    assert set(res.study["segment"]) == {"makers", "punters"}
    assert res.study.attrs["n_events"] >= 1
    with pytest.raises(DataError, match="no detected BTC event"):  # implied vol is flat
        study_segment_events(db, assign, events_from="store", kinds=["vol_spike"])

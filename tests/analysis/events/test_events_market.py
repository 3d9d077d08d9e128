import csv

import numpy as np
import pandas as pd
import pytest

from traderseg.analysis.events import load_market, validate_market
from traderseg.errors import ConfigError, DataError, SchemaError
from traderseg.schema import MARKET
from traderseg.settings import get_settings
from traderseg.store import connect


def _raw_rows(name):
    with open(get_settings().market_data_dir / name, newline="") as fh:
        return list(csv.DictReader(fh))


def test_real_market_has_the_canonical_shape_and_values():
    m = load_market()
    assert list(m.columns) == MARKET.names
    assert str(m["ts"].dtype) == "datetime64[us, UTC]"
    assert set(m["underlying"]) == {"BTC", "ETH"}
    assert m["event"].isna().all()
    btc = m[m.underlying == "BTC"].set_index("ts")
    raw = _raw_rows("BTCUSDT_1d.csv")
    assert len(btc) == len(raw)
    for row in raw[::250]:
        bar = btc.loc[pd.Timestamp(row["timestamp"], tz="UTC")]
        assert bar["price"] == float(row["close"])
        assert bar["high"] == float(row["high"]) and bar["low"] == float(row["low"])


def test_implied_vol_is_joined_by_day_and_missing_days_stay_missing():
    btc = load_market(underlyings=["BTC"]).set_index("ts")
    dvol = {pd.Timestamp(r["date"], tz="UTC"): float(r["dvol"]) for r in _raw_rows("DVOL_BTC_1d.csv")}
    in_range = {d: v for d, v in dvol.items() if d in btc.index}
    assert btc["iv_index"].notna().sum() == len(in_range)
    for d, v in list(in_range.items())[::100]:
        assert btc.loc[d, "iv_index"] == v
    first = min(dvol)
    missing = [d for d in pd.date_range(first, btc.index.max()) if d not in dvol]
    assert missing, "the DVOL file has gaps"
    assert btc.loc[missing, "iv_index"].isna().all()
    assert btc.loc[btc.index < first, "iv_index"].isna().all()
    eth = load_market(underlyings=["ETH"])
    assert eth["iv_index"].isna().all()


def test_market_table_of_a_store_reads_back_the_same(tmp_path):
    m = load_market(underlyings=["BTC"]).iloc[:400]
    con = connect(tmp_path / "s.duckdb")
    con.register("m", m)
    con.execute("INSERT INTO market BY NAME SELECT * FROM m")
    back = load_market(con)
    pd.testing.assert_frame_equal(back, m.reset_index(drop=True))
    con.close()
    pd.testing.assert_frame_equal(load_market(tmp_path / "s.duckdb"), back)


def _write(folder, name, text):
    (folder / name).write_text(text)


def test_bad_files_name_the_line_and_field(tmp_path):
    head = "timestamp,open,high,low,close,volume\n"
    _write(tmp_path, "BTCUSDT_1d.csv", head + "2020-01-01,1,2,0.5,1.5,3\n2020-01-02,1,2,0.5,abc,3\n")
    with pytest.raises(SchemaError, match=r"line 3: field 'close'"):
        load_market(tmp_path)
    _write(tmp_path, "BTCUSDT_1d.csv", "timestamp,open,high,low,volume\n2020-01-01,1,2,0.5,3\n")
    with pytest.raises(SchemaError, match="close"):
        load_market(tmp_path)
    _write(tmp_path, "BTCUSDT_1d.csv", head + "2020-01-01,1,2,0.5,1.5,3\n2020-01-01,1,2,0.5,1,3\n")
    with pytest.raises(DataError, match="line 3.*repeats"):
        load_market(tmp_path)
    _write(tmp_path, "BTCUSDT_1d.csv", head + "2020-01-01,1,2,0.5,1.5,3\n2020-01-02,1,2,0.5,0,3\n")
    with pytest.raises(DataError, match="price"):
        load_market(tmp_path)
    _write(tmp_path, "BTCUSDT_1d.csv", head + "2020-01-01,1,2,0.5,1.5,3\n")
    _write(tmp_path, "DVOL_BTC_1d.csv", "date,dvol\n2020-01-01,x\n")
    with pytest.raises(SchemaError, match=r"DVOL_BTC_1d.csv line 2: field 'dvol'"):
        load_market(tmp_path)
    with pytest.raises(DataError, match="no price file for SOL"):
        load_market(tmp_path, underlyings=["SOL"])
    with pytest.raises(ConfigError):
        load_market(tmp_path / "BTCUSDT_1d.csv")
    with pytest.raises(DataError, match="does not exist"):
        load_market(tmp_path / "nope")


def test_validate_market_rejects_bad_frames():
    with pytest.raises(DataError, match="empty"):
        validate_market(pd.DataFrame(columns=["ts", "underlying", "price"]))
    with pytest.raises(SchemaError, match="price"):
        validate_market(pd.DataFrame({"ts": ["2020-01-01"], "underlying": ["BTC"]}))
    ok = pd.DataFrame({"ts": ["2020-01-01", "2020-01-02"], "underlying": "BTC", "price": [1.0, 2.0]})
    out = validate_market(ok)
    assert list(out.columns) == MARKET.names and out["iv_index"].isna().all()
    with pytest.raises(DataError, match="row 1: field 'price'"):
        validate_market(ok.assign(price=[1.0, -2.0]))
    with pytest.raises(DataError, match="row 1: field 'price'"):
        validate_market(ok.assign(price=[1.0, np.nan]))
    with pytest.raises(DataError, match="sharing"):
        validate_market(ok.assign(ts="2020-01-01"))
    with pytest.raises(SchemaError, match="not a number"):
        validate_market(ok.assign(iv_index=["x", 3]))

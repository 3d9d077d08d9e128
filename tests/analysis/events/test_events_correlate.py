import numpy as np
import pandas as pd
import pytest
from scipy import stats

from traderseg.analysis.events import activity_correlations, load_market
from traderseg.errors import ConfigError, SchemaError


@pytest.fixture(scope="module")
def btc():
    return load_market(underlyings=["BTC"])


def _activity(btc):
    full = btc.assign(ret=np.log(btc["price"]).diff(), ivc=btc["iv_index"].diff())
    m = full[(full.ts >= "2022-01-01") & (full.ts < "2023-01-01")].reset_index(drop=True)
    ret = m["ret"]
    rng = np.random.default_rng(5)
    busy = np.exp(12 + 25 * ret.abs().fillna(0) + rng.normal(0, 0.2, len(m)))
    noise = np.exp(12 + rng.normal(0, 0.2, len(m)))
    rows = [
        pd.DataFrame({"segment": "panics", "ts": m.ts, "notional_usd": busy,
                      "net_delta_usd": 1e6 * ret.fillna(0)}),
        pd.DataFrame({"segment": "steady", "ts": m.ts, "notional_usd": noise,
                      "net_delta_usd": rng.normal(0, 1, len(m))}),
    ]
    return pd.concat(rows, ignore_index=True), m


def test_correlations_match_an_independent_computation(btc):
    act, m = _activity(btc)
    out = activity_correlations(act, btc).set_index(["segment", "metric", "market_var"])
    ret, ivc = m["ret"], m["ivc"]
    for seg in ("panics", "steady"):
        a = act[act.segment == seg].reset_index(drop=True)
        for metric in ("notional_usd", "net_delta_usd"):
            for var, y in (("return", ret), ("abs_return", ret.abs()), ("iv_change", ivc)):
                ok = y.notna()
                exp = stats.spearmanr(a.loc[ok, metric], y[ok])
                row = out.loc[(seg, metric, var)]
                assert row["n"] == ok.sum()
                assert row["r"] == pytest.approx(exp.statistic)
                assert row["p_value"] == pytest.approx(exp.pvalue)
    assert out.loc[("panics", "notional_usd", "abs_return"), "r"] > 0.8
    assert out.loc[("panics", "net_delta_usd", "return"), "r"] == pytest.approx(1.0)
    # IV changes need two consecutive prints: fewer days than returns.
    assert out.loc[("panics", "notional_usd", "return"), "n"] == 365
    assert out.loc[("panics", "notional_usd", "iv_change"), "n"] < 365
    pear = activity_correlations(act, btc, method="pearson", metrics=["notional_usd"])
    row = pear[(pear.segment == "steady") & (pear.market_var == "return")].iloc[0]
    a = act[act.segment == "steady"].reset_index(drop=True)
    ok = ret.notna()
    assert row["r"] == pytest.approx(np.corrcoef(a.loc[ok, "notional_usd"], ret[ok])[0, 1])


def test_bad_inputs(btc):
    act, _ = _activity(btc)
    with pytest.raises(SchemaError, match="fills"):
        activity_correlations(act, btc, metrics=["fills"])
    with pytest.raises(ConfigError, match="underlying"):
        activity_correlations(act, load_market())
    with pytest.raises(ConfigError, match="method"):
        activity_correlations(act, btc, method="kendall")

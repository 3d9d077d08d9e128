"""Independent implementations of the feature catalogue, for tests and benchmarks.

- :func:`pandas_features`: a typical pandas ``groupby`` pipeline over the fills frame.
- :func:`duckdb_sql_features`: one hand-written DuckDB SQL query.

Both follow the semantics documented in ``traderseg.features.compute`` and are written
without reusing any of its code, so that agreement between the three is evidence.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

DAY = 86400.0


def _window_start(as_of: pd.Timestamp, window: str) -> pd.Timestamp | None:
    if window == "all":
        return None
    n, unit = int(window[:-1]), window[-1]
    return as_of - {"d": pd.Timedelta(days=n), "h": pd.Timedelta(hours=n), "w": pd.Timedelta(weeks=n)}[unit]


def pandas_features(
    fills: pd.DataFrame,
    as_of: datetime | str,
    windows: tuple[str, ...] = ("30d", "all"),
    event_days: set | None = None,
) -> pd.DataFrame:
    """Compute the catalogue with pandas; exact quantiles (linear interpolation)."""
    as_of = pd.Timestamp(as_of)
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    f = fills[fills["ts"] < as_of].copy()
    life = f.groupby("account_id")["ts"].agg(["min", "max"])
    out = pd.DataFrame(index=life.index.sort_values())
    out["recency_days__all"] = (as_of - life["max"]).dt.total_seconds() / DAY
    out["tenure_days__all"] = (as_of - life["min"]).dt.total_seconds() / DAY
    event_days = event_days or set()
    for w in windows:
        start = _window_start(as_of, w)
        g = f if start is None else f[f["ts"] >= start]
        out = out.join(_one_window(g, as_of, w, start, event_days), how="left")
    for w in windows:
        for c in ("fill_count", "active_days", "notional_total", "liquidation_count", "fees_usd",
                  "realized_pnl_usd", "pnl_std_usd", "underlying_count", "instrument_breadth"):
            out[f"{c}__{w}"] = out[f"{c}__{w}"].fillna(0.0)
    return out.astype("float64")


def _one_window(g, as_of, w, start, event_days):
    g = g.copy()
    g["day"] = g["ts"].dt.floor("D")
    is_opt = g["kind"] == "option"
    is_lev = g["kind"].isin(["perp", "future"])
    g["is_opt"] = is_opt
    g["is_buy"] = g["side"] == "buy"
    g["lev"] = np.where(is_lev, g["leverage"].fillna(1.0), np.nan)
    g["abs_delta"] = np.where(is_opt, g["delta"].abs(), np.nan)
    g["tenor"] = np.where(is_opt, (g["expiry"] - g["ts"]).dt.total_seconds() / DAY, np.nan)
    g["alm"] = np.where(is_opt, np.abs(np.log(g["strike"] / g["underlying_price"])), np.nan)
    g["ivo"] = np.where(is_opt, g["iv"], np.nan)
    g["opt_not"] = np.where(is_opt, g["notional_usd"], 0.0)
    g["opt_buy_not"] = np.where(is_opt & g["is_buy"], g["notional_usd"], 0.0)
    g["pnl0"] = g["realized_pnl_usd"].fillna(0.0)
    g["is_ev"] = g["day"].dt.date.isin(event_days) if event_days else False
    g["ev_not"] = np.where(g["is_ev"], g["notional_usd"], 0.0)
    # indicator columns, summed per account in one pass
    g["weekend"] = g["ts"].dt.day_of_week >= 5
    g["is_spot"] = g["kind"] == "spot"
    g["is_perp"] = g["kind"] == "perp"
    g["is_future"] = g["kind"] == "future"
    g["deep"] = g["abs_delta"] < 0.15
    g["short"] = g["tenor"] <= 3.0
    g["high"] = g["lev"] >= 20
    g["liq"] = g["is_liquidation"].fillna(False).astype(bool)
    g["close"] = g["position_effect"] == "close"
    g["win"] = g["realized_pnl_usd"] > 0
    g["call"] = is_opt & (g["option_type"] == "call")
    g["put_buy"] = is_opt & (g["option_type"] == "put") & g["is_buy"]
    gb = g.groupby("account_id")
    sums = gb[["weekend", "is_spot", "is_perp", "is_future", "is_opt", "opt_not", "opt_buy_not",
               "deep", "short", "high", "liq", "close", "fee_usd", "pnl0", "win", "is_maker",
               "is_buy", "is_ev", "ev_not", "notional_usd", "call", "put_buy"]].sum()
    means = gb[["notional_usd", "abs_delta", "tenor", "alm", "ivo", "lev"]].mean()
    r = pd.DataFrame(
        {
            "n": gb.size(),
            "active_days": gb["day"].nunique(),
            "first": gb["ts"].min(),
            "notional_total": sums["notional_usd"],
            "notional_mean": means["notional_usd"],
            "notional_median": gb["notional_usd"].quantile(0.5),
            "notional_p95": gb["notional_usd"].quantile(0.95),
            "notional_max": gb["notional_usd"].max(),
            "underlying_count": gb["underlying"].nunique(),
            "instrument_breadth": gb["instrument"].nunique(),
            "weekend": sums["weekend"],
            "n_spot": sums["is_spot"],
            "n_perp": sums["is_perp"],
            "n_future": sums["is_future"],
            "n_opt": sums["is_opt"],
            "n_call": sums["call"],
            "n_put_buy": sums["put_buy"],
            "opt_not": sums["opt_not"],
            "opt_buy_not": sums["opt_buy_not"],
            "mean_abs_delta": means["abs_delta"],
            "n_deep": sums["deep"],
            "mean_days_to_expiry": means["tenor"],
            "n_short": sums["short"],
            "mean_abs_log_moneyness": means["alm"],
            "mean_iv": means["ivo"],
            "leverage_mean": means["lev"],
            "leverage_max": gb["lev"].max(),
            "n_lev": gb["lev"].count(),
            "n_high": sums["high"],
            "liquidation_count": sums["liq"],
            "n_close": sums["close"],
            "fees_usd": sums["fee_usd"],
            "realized_pnl_usd": sums["pnl0"],
            "n_pnl": gb["realized_pnl_usd"].count(),
            "n_win": sums["win"],
            "n_maker": sums["is_maker"],
            "n_buy": sums["is_buy"],
            "ev_fills": sums["is_ev"],
            "ev_not": sums["ev_not"],
        }
    )
    opt = g[g["is_opt"]]
    legs = opt.groupby(["account_id", "day", "expiry", "strike", "side"]).agg(
        types=("option_type", "nunique"), legs=("option_type", "size")
    )
    strad = legs[legs["types"] >= 2].groupby("account_id")["legs"].sum()
    hours = g.groupby(["account_id", g["ts"].dt.hour]).size()
    c_ln_c = (hours * np.log(hours)).groupby(level=0).sum()
    top = g.groupby(["account_id", "instrument"])["notional_usd"].sum().groupby(level=0).max()
    pnl_std = g.groupby(["account_id", "day"])["pnl0"].sum().groupby(level=0).std()

    n = r["n"].astype(float)
    as_of_day = as_of.floor("D")
    span = ((as_of_day - r["first"].dt.floor("D")).dt.days).clip(lower=1).astype(float)
    if start is not None:
        span = span.clip(upper=math.ceil((as_of - start).total_seconds() / DAY))
    ev_days = pd.Series(0.0, index=r.index)
    if event_days:
        evd = np.array(sorted(np.datetime64(d, "ns") for d in event_days))
        first = r["first"].dt.floor("D").dt.tz_localize(None).to_numpy("datetime64[ns]")
        hi = np.searchsorted(evd, as_of_day.tz_localize(None).to_datetime64(), side="left")
        ev_days = pd.Series((hi - np.searchsorted(evd, first, side="left")).clip(min=0),
                            index=r.index, dtype=float)

    def share(a, b):
        b = b.astype(float)
        return (a.astype(float) / b).where(b > 0)

    calm = (span - ev_days).clip(lower=0)
    rate = n / span
    o = pd.DataFrame(index=r.index)
    o["fill_count"] = n
    o["active_days"] = r["active_days"]
    o["fills_per_active_day"] = n / r["active_days"]
    o["active_day_share"] = (r["active_days"] / span).clip(upper=1.0)
    o["mean_gap_days"] = span / r["active_days"]
    o["hour_entropy"] = np.where(n > 1, (np.log(n) - c_ln_c.reindex(r.index) / n) / math.log(24), 0.0)
    o["weekend_share"] = share(r["weekend"], n)
    for c in ("notional_total", "notional_mean", "notional_median", "notional_p95", "notional_max"):
        o[c] = r[c]
    o["top_instrument_share"] = share(top.reindex(r.index), r["notional_total"])
    o["underlying_count"] = r["underlying_count"]
    o["spot_share"] = share(r["n_spot"], n)
    o["perp_share"] = share(r["n_perp"], n)
    o["future_share"] = share(r["n_future"], n)
    o["option_share"] = share(r["n_opt"], n)
    o["instrument_breadth"] = r["instrument_breadth"]
    o["call_share"] = share(r["n_call"], r["n_opt"])
    o["long_premium_share"] = share(r["opt_buy_not"], r["opt_not"])
    o["mean_abs_delta"] = r["mean_abs_delta"]
    o["deep_otm_share"] = share(r["n_deep"], r["n_opt"])
    o["mean_days_to_expiry"] = r["mean_days_to_expiry"]
    o["short_dated_share"] = share(r["n_short"], r["n_opt"])
    o["mean_abs_log_moneyness"] = r["mean_abs_log_moneyness"]
    o["mean_iv"] = r["mean_iv"]
    o["straddle_share"] = share(strad.reindex(r.index).fillna(0), r["n_opt"])
    o["put_buy_share"] = share(r["n_put_buy"], r["n_opt"])
    o["leverage_mean"] = r["leverage_mean"].fillna(1.0)
    o["leverage_max"] = r["leverage_max"].fillna(1.0)
    o["high_leverage_share"] = (r["n_high"] / r["n_lev"].astype(float)).where(r["n_lev"] > 0, 0.0)
    o["liquidation_count"] = r["liquidation_count"]
    o["liquidation_share"] = share(r["liquidation_count"], n)
    o["close_share"] = share(r["n_close"], n)
    o["fees_usd"] = r["fees_usd"]
    o["fee_bps"] = share(r["fees_usd"] * 1e4, r["notional_total"])
    o["realized_pnl_usd"] = r["realized_pnl_usd"]
    o["win_rate"] = share(r["n_win"], r["n_pnl"])
    o["pnl_std_usd"] = pnl_std.reindex(r.index).fillna(0.0)
    o["maker_share"] = share(r["n_maker"], n)
    o["buy_share"] = share(r["n_buy"], n)
    evf = r["ev_fills"].astype(float)
    o["event_activity_ratio"] = ((evf + rate) / (ev_days + 1)) / ((n - evf + rate) / (calm + 1))
    o["event_notional_share"] = share(r["ev_not"], r["notional_total"])
    o.columns = [f"{c}__{w}" for c in o.columns]
    return o


def duckdb_sql_features(con, as_of: datetime, window: str = "all", exact: bool = False) -> str:
    """Hand-written DuckDB SQL computing the catalogue for one window (returns the SQL)."""
    q = "quantile_cont" if exact else "approx_quantile"
    as_of_lit = f"TIMESTAMPTZ '{pd.Timestamp(as_of).isoformat()}'"
    lo = ""
    cap = "1e18"
    if window != "all":
        start = pd.Timestamp(as_of) - pd.Timedelta(timedelta(days=int(window[:-1])))
        lo = f"AND ts >= TIMESTAMPTZ '{start.isoformat()}'"
        cap = str(int(window[:-1]))
    return f"""
WITH f AS (
  SELECT ts, account_id, instrument, underlying, kind, side, notional_usd, fee_usd, is_maker,
         position_effect, realized_pnl_usd, is_liquidation, option_type, strike, expiry,
         underlying_price, iv, delta, CAST(ts AS DATE) AS day, kind = 'option' AS is_opt,
         CASE WHEN kind IN ('perp','future') THEN coalesce(leverage, 1.0) END AS lev
  FROM fills WHERE ts < {as_of_lit} {lo}
),
ev AS (SELECT DISTINCT CAST(ts AS DATE) AS d FROM market
       WHERE event IS NOT NULL AND ts < {as_of_lit}),
base AS (
  SELECT account_id, count(*) AS n, min(ts) AS first_ts,
    sum(CASE WHEN isodow(ts) >= 6 THEN 1 ELSE 0 END) AS wk,
    sum(notional_usd) AS nt, avg(notional_usd) AS nm,
    {q}(notional_usd, 0.5) AS nmed, {q}(notional_usd, 0.95) AS np95, max(notional_usd) AS nmax,
    count(*) FILTER (kind = 'spot') AS n_spot, count(*) FILTER (kind = 'perp') AS n_perp,
    count(*) FILTER (kind = 'future') AS n_fut, count(*) FILTER (is_opt) AS n_opt,
    count(*) FILTER (is_opt AND option_type = 'call') AS n_call,
    count(*) FILTER (is_opt AND option_type = 'put' AND side = 'buy') AS n_pb,
    sum(notional_usd) FILTER (is_opt) AS opt_not,
    coalesce(sum(notional_usd) FILTER (is_opt AND side = 'buy'), 0) AS opt_buy,
    avg(abs(delta)) FILTER (is_opt) AS mad,
    count(*) FILTER (is_opt AND abs(delta) < 0.15) AS n_deep,
    avg((epoch(expiry) - epoch(ts)) / 86400.0) FILTER (is_opt) AS dte,
    count(*) FILTER (is_opt AND (epoch(expiry) - epoch(ts)) / 86400.0 <= 3) AS n_short,
    avg(abs(ln(strike / underlying_price))) FILTER (is_opt) AS alm,
    avg(iv) FILTER (is_opt) AS miv,
    avg(lev) AS lm, max(lev) AS lmax, count(lev) AS n_lev, count(*) FILTER (lev >= 20) AS n_hi,
    count(*) FILTER (coalesce(is_liquidation, false)) AS liq,
    count(*) FILTER (position_effect = 'close') AS n_close,
    sum(fee_usd) AS fees, sum(coalesce(realized_pnl_usd, 0)) AS pnl,
    count(realized_pnl_usd) AS n_pnl, count(*) FILTER (realized_pnl_usd > 0) AS n_win,
    count(*) FILTER (is_maker) AS n_mk, count(*) FILTER (side = 'buy') AS n_buy,
    count(*) FILTER (day IN (SELECT d FROM ev)) AS ev_fills,
    coalesce(sum(notional_usd) FILTER (day IN (SELECT d FROM ev)), 0) AS ev_not
  FROM f GROUP BY account_id
),
hours AS (SELECT account_id, sum(c * ln(c)) AS clc FROM
  (SELECT account_id, hour(ts) AS h, count(*)::DOUBLE AS c FROM f GROUP BY 1, 2) GROUP BY 1),
top AS (SELECT account_id, max(v) AS tv, count(*) AS ib, count(DISTINCT underlying) AS uc FROM
  (SELECT account_id, instrument, underlying, sum(notional_usd) AS v FROM f GROUP BY 1, 2, 3)
  GROUP BY 1),
strad AS (SELECT account_id, sum(CASE WHEN t >= 2 THEN l ELSE 0 END) AS ns FROM
  (SELECT account_id, count(DISTINCT option_type) AS t, count(*) AS l FROM f WHERE is_opt
   GROUP BY account_id, day, expiry, strike, side) GROUP BY 1),
pstd AS (SELECT account_id, stddev_samp(p) AS ps, count(*) AS ad FROM
  (SELECT account_id, day, sum(coalesce(realized_pnl_usd, 0)) AS p FROM f GROUP BY 1, 2) GROUP BY 1),
j AS (
  SELECT b.*, h.clc, t.tv, t.ib, t.uc, coalesce(s.ns, 0) AS ns, p.ps, p.ad,
    least(greatest(date_diff('day', CAST(b.first_ts AS DATE), CAST({as_of_lit} AS DATE)), 1), {cap})::DOUBLE AS span,
    (SELECT count(*) FROM ev WHERE ev.d >= CAST(b.first_ts AS DATE)
       AND ev.d < CAST({as_of_lit} AS DATE))::DOUBLE AS evd
  FROM base b LEFT JOIN hours h USING (account_id) LEFT JOIN top t USING (account_id)
  LEFT JOIN strad s USING (account_id) LEFT JOIN pstd p USING (account_id)
)
SELECT account_id,
  n AS fill_count, ad AS active_days, n / ad AS fills_per_active_day,
  least(ad / span, 1.0) AS active_day_share, span / ad AS mean_gap_days,
  CASE WHEN n > 1 THEN (ln(n) - clc / n) / ln(24) ELSE 0 END AS hour_entropy,
  wk / n AS weekend_share, nt AS notional_total, nm AS notional_mean, nmed AS notional_median,
  np95 AS notional_p95, nmax AS notional_max, tv / nullif(nt, 0) AS top_instrument_share,
  uc AS underlying_count, n_spot / n AS spot_share, n_perp / n AS perp_share,
  n_fut / n AS future_share, n_opt / n AS option_share, ib AS instrument_breadth,
  n_call / nullif(n_opt, 0) AS call_share, opt_buy / nullif(opt_not, 0) AS long_premium_share,
  mad AS mean_abs_delta, n_deep / nullif(n_opt, 0) AS deep_otm_share,
  dte AS mean_days_to_expiry, n_short / nullif(n_opt, 0) AS short_dated_share,
  alm AS mean_abs_log_moneyness, miv AS mean_iv, ns / nullif(n_opt, 0) AS straddle_share,
  n_pb / nullif(n_opt, 0) AS put_buy_share, coalesce(lm, 1) AS leverage_mean,
  coalesce(lmax, 1) AS leverage_max,
  CASE WHEN n_lev > 0 THEN n_hi / n_lev ELSE 0 END AS high_leverage_share,
  liq AS liquidation_count, liq / n AS liquidation_share, n_close / n AS close_share,
  fees AS fees_usd, fees * 1e4 / nullif(nt, 0) AS fee_bps, pnl AS realized_pnl_usd,
  n_win / nullif(n_pnl, 0) AS win_rate, coalesce(ps, 0) AS pnl_std_usd,
  n_mk / n AS maker_share, n_buy / n AS buy_share,
  ((ev_fills + n / span) / (evd + 1)) / ((n - ev_fills + n / span) / (greatest(span - evd, 0) + 1))
    AS event_activity_ratio,
  ev_not / nullif(nt, 0) AS event_notional_share
FROM j ORDER BY account_id
"""

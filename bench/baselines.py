"""Independent implementations of the feature catalogue, for tests and benchmarks.

- :func:`pandas_features`: a typical pandas ``groupby`` pipeline over the fills frame.
- :func:`duckdb_sql_features`: one hand-written DuckDB SQL query.

Both follow the semantics documented in ``traderseg.features.compute`` and are written
without reusing any of its code, so that agreement between the three is evidence.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pandas as pd

DAY = 86400.0


def _window_start(as_of: pd.Timestamp, window: str) -> pd.Timestamp | None:
    """Windows are whole UTC days: [start of the cutoff's day - N days, cutoff)."""
    if window == "all":
        return None
    n, unit = int(window[:-1]), window[-1]
    days = n * (7 if unit == "w" else 1)
    return as_of.floor("D") - pd.Timedelta(days=days)


def _us(s: pd.Series) -> pd.Series:
    return s.dt.as_unit("us").astype("int64")


def pandas_features(
    fills: pd.DataFrame,
    as_of: datetime | str,
    windows: tuple[str, ...] = ("30d", "all"),
    event_days: set | None = None,
) -> pd.DataFrame:
    """Compute the catalogue with pandas; exact quantiles (linear interpolation).

    ``event_days`` None means the store has no market events (event features NaN).
    """
    as_of = pd.Timestamp(as_of)
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    f = fills[fills["ts"] < as_of].copy()
    life = f.groupby("account_id")["ts"].agg(["min", "max"])
    out = pd.DataFrame(index=life.index.sort_values())
    out["recency_days__all"] = (as_of - life["max"]).dt.total_seconds() / DAY
    out["tenure_days__all"] = (as_of - life["min"]).dt.total_seconds() / DAY
    for w in windows:
        start = _window_start(as_of, w)
        g = f if start is None else f[f["ts"] >= start]
        out = out.join(_one_window(g, as_of, w, event_days), how="left")
    for w in windows:
        idle = out[f"fill_count__{w}"].isna()  # no fill in the window
        for c in ("fill_count", "active_days", "notional_total", "liquidation_count", "fees_usd",
                  "realized_pnl_usd", "pnl_std_usd", "underlying_count", "instrument_breadth"):
            out.loc[idle, f"{c}__{w}"] = 0.0
    return out.astype("float64")


def _one_window(g, as_of, w, event_days):
    g = g.copy()
    g["dn"] = _us(g["ts"]) // 86_400_000_000
    is_opt = g["kind"] == "option"
    is_lev = g["kind"].isin(["perp", "future"])
    g["is_opt"] = is_opt
    g["is_lev"] = is_lev
    g["is_buy"] = g["side"] == "buy"
    g["lev"] = np.where(is_lev, g["leverage"], np.nan)
    g["abs_delta"] = np.where(is_opt, g["delta"].abs(), np.nan)
    secs = (_us(g["expiry"].fillna(g["ts"])) // 1_000_000 - _us(g["ts"]) // 1_000_000)
    g["tenor"] = np.where(is_opt & g["expiry"].notna(), secs / DAY, np.nan)
    g["alm"] = np.where(is_opt, np.abs(np.log(g["strike"] / g["underlying_price"])), np.nan)
    g["ivo"] = np.where(is_opt, g["iv"], np.nan)
    g["opt_not"] = np.where(is_opt, g["notional_usd"], 0.0)
    g["opt_buy_not"] = np.where(is_opt & g["is_buy"], g["notional_usd"], 0.0)
    g["pnl0"] = g["realized_pnl_usd"].fillna(0.0)
    ev_nums = {(pd.Timestamp(d) - pd.Timestamp("1970-01-01")).days for d in (event_days or ())}
    g["is_ev"] = g["dn"].isin(ev_nums)
    g["ev_not"] = np.where(g["is_ev"], g["notional_usd"], 0.0)
    g["weekend"] = ((g["dn"] + 3) % 7) >= 5
    g["is_spot"] = g["kind"] == "spot"
    g["is_perp"] = g["kind"] == "perp"
    g["is_future"] = g["kind"] == "future"
    g["deep"] = g["abs_delta"] < 0.15
    g["short"] = g["tenor"] <= 3.0
    g["high"] = g["lev"] >= 20
    g["lev_known"] = g["lev"].notna()
    g["liq_known"] = g["is_liquidation"].notna()
    g["liq"] = g["is_liquidation"].eq(True)
    g["pe_known"] = g["position_effect"].notna()
    g["close"] = g["position_effect"] == "close"
    g["close_pnl"] = g["close"] & g["realized_pnl_usd"].notna()
    g["win"] = g["close"] & (g["realized_pnl_usd"] > 0)
    g["call"] = is_opt & (g["option_type"] == "call")
    g["put_buy"] = is_opt & (g["option_type"] == "put") & g["is_buy"]
    gb = g.groupby("account_id")
    sums = gb[["weekend", "is_spot", "is_perp", "is_future", "is_opt", "is_lev", "opt_not",
               "opt_buy_not", "deep", "short", "high", "lev_known", "liq_known", "liq",
               "pe_known", "close", "close_pnl", "fee_usd", "pnl0", "win", "is_maker", "is_buy",
               "is_ev", "ev_not", "notional_usd", "call", "put_buy"]].sum()
    means = gb[["notional_usd", "abs_delta", "tenor", "alm", "ivo", "lev"]].mean()
    r = pd.DataFrame(
        {
            "n": gb.size(),
            "active_days": gb["dn"].nunique(),
            "first_day": gb["dn"].min(),
            "last_day": gb["dn"].max(),
            "notional_total": sums["notional_usd"],
            "notional_mean": means["notional_usd"],
            "notional_median": gb["notional_usd"].quantile(0.5),
            "notional_p95": gb["notional_usd"].quantile(0.95),
            "notional_max": gb["notional_usd"].max(),
            "underlying_count": gb["underlying"].nunique(),
            "instrument_breadth": gb["instrument"].nunique(),
            "n_delta": gb["abs_delta"].count(),
            "n_tenor": gb["tenor"].count(),
            "leverage_max": gb["lev"].max(),
        }
    )
    opt = g[g["is_opt"]]
    legs = opt.groupby(["account_id", "dn", "expiry", "strike", "side"]).agg(
        types=("option_type", "nunique"), legs=("option_type", "size")
    )
    strad = legs[legs["types"] >= 2].groupby("account_id")["legs"].sum()
    hours = g.groupby(["account_id", (_us(g["ts"]) // 3_600_000_000) % 24]).size()
    c_ln_c = (hours * np.log(hours)).groupby(level=0).sum()
    top = g.groupby(["account_id", "instrument"])["notional_usd"].sum().groupby(level=0).max()
    pnl_std = g.groupby(["account_id", "dn"])["pnl0"].sum().groupby(level=0).std()

    n = r["n"].astype(float)
    cut_us = (as_of - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(microseconds=1)
    end_day = -(-cut_us // 86_400_000_000)  # ceil: the cutoff's day counts when partial
    span = (end_day - r["first_day"]).astype(float)
    evs = np.array(sorted(ev_nums))
    ev_days = pd.Series(
        [float(((evs >= fd) & (evs < end_day)).sum()) for fd in r["first_day"]], index=r.index)

    def share(a, b):
        b = b.astype(float)
        return (a.astype(float) / b).where(b > 0)

    calm = (span - ev_days).clip(lower=0)
    rate = n / span
    ad = r["active_days"].astype(float)
    o = pd.DataFrame(index=r.index)
    o["fill_count"] = n
    o["active_days"] = ad
    o["fills_per_active_day"] = n / ad
    o["active_day_share"] = ad / span
    o["mean_gap_days"] = ((r["last_day"] - r["first_day"]) / (ad - 1)).where(ad > 1)
    o["hour_entropy"] = np.where(n > 1, (np.log(n) - c_ln_c.reindex(r.index) / n) / math.log(24), 0.0)
    o["weekend_share"] = share(sums["weekend"], n)
    for c in ("notional_total", "notional_mean", "notional_median", "notional_p95", "notional_max"):
        o[c] = r[c]
    o["top_instrument_share"] = share(top.reindex(r.index), r["notional_total"])
    o["underlying_count"] = r["underlying_count"]
    o["spot_share"] = share(sums["is_spot"], n)
    o["perp_share"] = share(sums["is_perp"], n)
    o["future_share"] = share(sums["is_future"], n)
    o["option_share"] = share(sums["is_opt"], n)
    o["instrument_breadth"] = r["instrument_breadth"]
    o["call_share"] = share(sums["call"], sums["is_opt"])
    o["long_premium_share"] = share(sums["opt_buy_not"], sums["opt_not"])
    o["mean_abs_delta"] = means["abs_delta"]
    o["deep_otm_share"] = share(sums["deep"], r["n_delta"])
    o["mean_days_to_expiry"] = means["tenor"]
    o["short_dated_share"] = share(sums["short"], r["n_tenor"])
    o["mean_abs_log_moneyness"] = means["alm"]
    o["mean_iv"] = means["ivo"]
    o["straddle_share"] = share(strad.reindex(r.index).fillna(0), sums["is_opt"])
    o["put_buy_share"] = share(sums["put_buy"], sums["is_opt"])
    o["leverage_mean"] = means["lev"]
    o["leverage_max"] = r["leverage_max"]
    o["high_leverage_share"] = share(sums["high"], sums["lev_known"])
    o["leverage_known_share"] = share(sums["lev_known"], sums["is_lev"])
    o["liquidation_count"] = sums["liq"].astype(float).where(sums["liq_known"] > 0)
    o["liquidation_share"] = share(sums["liq"], sums["liq_known"])
    o["liquidation_known_share"] = share(sums["liq_known"], n)
    o["close_share"] = share(sums["close"], sums["pe_known"])
    o["fees_usd"] = sums["fee_usd"]
    o["fee_bps"] = share(sums["fee_usd"] * 1e4, r["notional_total"])
    o["realized_pnl_usd"] = sums["pnl0"]
    o["win_rate"] = share(sums["win"], sums["close_pnl"])
    o["pnl_std_usd"] = pnl_std.reindex(r.index).fillna(0.0)
    o["maker_share"] = share(sums["is_maker"], n)
    o["buy_share"] = share(sums["is_buy"], n)
    evf = sums["is_ev"].astype(float)
    if event_days is None:
        o["event_activity_ratio"] = np.nan
        o["event_notional_share"] = np.nan
    else:
        o["event_activity_ratio"] = ((evf + rate) / (ev_days + 1)) / ((n - evf + rate) / (calm + 1))
        o["event_notional_share"] = share(sums["ev_not"], r["notional_total"])
    o.columns = [f"{c}__{w}" for c in o.columns]
    return o


def duckdb_sql_features(con, as_of: datetime, window: str = "all", exact: bool = False) -> str:
    """Hand-written DuckDB SQL computing the catalogue for one window (returns the SQL).

    ``exact`` computes exact quantiles; otherwise DuckDB's approximate ones (not the
    catalogue's sketch, so only exact quantiles are comparable).
    """
    q = "quantile_cont" if exact else "approx_quantile"
    cut = pd.Timestamp(as_of)
    cut = cut.tz_localize("UTC") if cut.tzinfo is None else cut.tz_convert("UTC")
    as_of_lit = f"TIMESTAMPTZ '{cut.isoformat()}'"
    cut_us = (cut - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(microseconds=1)
    end_day = -(-cut_us // 86_400_000_000)
    lo = ""
    start = _window_start(cut, window)
    if start is not None:
        lo = f"AND ts >= TIMESTAMPTZ '{start.isoformat()}'"
    return f"""
WITH f AS (
  SELECT ts, account_id, instrument, underlying, kind, side, notional_usd, fee_usd, is_maker,
         position_effect, realized_pnl_usd, is_liquidation, option_type, strike, expiry,
         underlying_price, iv, delta, epoch_us(ts) // 86400000000 AS dn,
         kind = 'option' AS is_opt,
         CASE WHEN kind IN ('perp','future') THEN leverage END AS lev,
         CASE WHEN kind = 'option'
           THEN (epoch_us(expiry) // 1000000 - epoch_us(ts) // 1000000) / 86400.0 END AS tenor
  FROM fills WHERE ts < {as_of_lit} {lo}
),
ev AS (SELECT DISTINCT epoch_us(ts) // 86400000000 AS d FROM market
       WHERE event IS NOT NULL AND ts < {as_of_lit}),
has_ev AS (SELECT count(*) > 0 AS known FROM market WHERE event IS NOT NULL),
base AS (
  SELECT account_id, count(*) AS n, min(dn) AS first_day, max(dn) AS last_day,
    sum(CASE WHEN (dn + 3) % 7 >= 5 THEN 1 ELSE 0 END) AS wk,
    sum(notional_usd) AS nt, avg(notional_usd) AS nm,
    {q}(notional_usd, 0.5) AS nmed, {q}(notional_usd, 0.95) AS np95, max(notional_usd) AS nmax,
    count(*) FILTER (kind = 'spot') AS n_spot, count(*) FILTER (kind = 'perp') AS n_perp,
    count(*) FILTER (kind = 'future') AS n_fut, count(*) FILTER (is_opt) AS n_opt,
    count(*) FILTER (kind IN ('perp', 'future')) AS n_levk,
    count(*) FILTER (is_opt AND option_type = 'call') AS n_call,
    count(*) FILTER (is_opt AND option_type = 'put' AND side = 'buy') AS n_pb,
    sum(notional_usd) FILTER (is_opt) AS opt_not,
    coalesce(sum(notional_usd) FILTER (is_opt AND side = 'buy'), 0) AS opt_buy,
    avg(abs(delta)) FILTER (is_opt) AS mad, count(delta) FILTER (is_opt) AS n_delta,
    count(*) FILTER (is_opt AND abs(delta) < 0.15) AS n_deep,
    avg(tenor) AS dte, count(tenor) AS n_tenor, count(*) FILTER (tenor <= 3) AS n_short,
    avg(abs(ln(strike / underlying_price))) FILTER (is_opt) AS alm,
    avg(iv) FILTER (is_opt) AS miv,
    avg(lev) AS lm, max(lev) AS lmax, count(lev) AS n_lev, count(*) FILTER (lev >= 20) AS n_hi,
    count(is_liquidation) AS liq_known, count(*) FILTER (is_liquidation) AS liq,
    count(position_effect) AS pe_known, count(*) FILTER (position_effect = 'close') AS n_close,
    sum(fee_usd) AS fees, sum(coalesce(realized_pnl_usd, 0)) AS pnl,
    count(realized_pnl_usd) FILTER (position_effect = 'close') AS n_pnl,
    count(*) FILTER (position_effect = 'close' AND realized_pnl_usd > 0) AS n_win,
    count(*) FILTER (is_maker) AS n_mk, count(*) FILTER (side = 'buy') AS n_buy,
    count(*) FILTER (dn IN (SELECT d FROM ev)) AS ev_fills,
    coalesce(sum(notional_usd) FILTER (dn IN (SELECT d FROM ev)), 0) AS ev_not
  FROM f GROUP BY account_id
),
hours AS (SELECT account_id, sum(c * ln(c)) AS clc FROM
  (SELECT account_id, epoch_us(ts) // 3600000000 % 24 AS h, count(*)::DOUBLE AS c
   FROM f GROUP BY 1, 2) GROUP BY 1),
top AS (SELECT account_id, max(v) AS tv, count(*) AS ib, count(DISTINCT underlying) AS uc FROM
  (SELECT account_id, instrument, underlying, sum(notional_usd) AS v FROM f GROUP BY 1, 2, 3)
  GROUP BY 1),
strad AS (SELECT account_id, sum(CASE WHEN t >= 2 THEN l ELSE 0 END) AS ns FROM
  (SELECT account_id, count(DISTINCT option_type) AS t, count(*) AS l FROM f WHERE is_opt
   GROUP BY account_id, dn, expiry, strike, side) GROUP BY 1),
pstd AS (SELECT account_id, stddev_samp(p) AS ps, count(*) AS ad FROM
  (SELECT account_id, dn, sum(coalesce(realized_pnl_usd, 0)) AS p FROM f GROUP BY 1, 2)
  GROUP BY 1),
j AS (
  SELECT b.*, h.clc, t.tv, t.ib, t.uc, coalesce(s.ns, 0) AS ns, p.ps, p.ad,
    ({end_day} - b.first_day)::DOUBLE AS span,
    (SELECT count(*) FROM ev WHERE ev.d >= b.first_day AND ev.d < {end_day})::DOUBLE AS evd,
    (SELECT known FROM has_ev) AS evk
  FROM base b LEFT JOIN hours h USING (account_id) LEFT JOIN top t USING (account_id)
  LEFT JOIN strad s USING (account_id) LEFT JOIN pstd p USING (account_id)
)
SELECT account_id,
  n AS fill_count, ad AS active_days, n / ad AS fills_per_active_day,
  ad / span AS active_day_share,
  CASE WHEN ad > 1 THEN (last_day - first_day) / (ad - 1) END AS mean_gap_days,
  CASE WHEN n > 1 THEN (ln(n) - clc / n) / ln(24) ELSE 0 END AS hour_entropy,
  wk / n AS weekend_share, nt AS notional_total, nm AS notional_mean, nmed AS notional_median,
  np95 AS notional_p95, nmax AS notional_max, tv / nullif(nt, 0) AS top_instrument_share,
  uc AS underlying_count, n_spot / n AS spot_share, n_perp / n AS perp_share,
  n_fut / n AS future_share, n_opt / n AS option_share, ib AS instrument_breadth,
  n_call / nullif(n_opt, 0) AS call_share, opt_buy / nullif(opt_not, 0) AS long_premium_share,
  mad AS mean_abs_delta, n_deep / nullif(n_delta, 0) AS deep_otm_share,
  dte AS mean_days_to_expiry, n_short / nullif(n_tenor, 0) AS short_dated_share,
  alm AS mean_abs_log_moneyness, miv AS mean_iv, ns / nullif(n_opt, 0) AS straddle_share,
  n_pb / nullif(n_opt, 0) AS put_buy_share, lm AS leverage_mean, lmax AS leverage_max,
  n_hi / nullif(n_lev, 0) AS high_leverage_share,
  n_lev / nullif(n_levk, 0) AS leverage_known_share,
  CASE WHEN liq_known > 0 THEN liq END AS liquidation_count,
  liq / nullif(liq_known, 0) AS liquidation_share, liq_known / n AS liquidation_known_share,
  n_close / nullif(pe_known, 0) AS close_share,
  fees AS fees_usd, fees * 1e4 / nullif(nt, 0) AS fee_bps, pnl AS realized_pnl_usd,
  n_win / nullif(n_pnl, 0) AS win_rate, coalesce(ps, 0) AS pnl_std_usd,
  n_mk / n AS maker_share, n_buy / n AS buy_share,
  CASE WHEN evk THEN ((ev_fills + n / span) / (evd + 1))
    / ((n - ev_fills + n / span) / (greatest(span - evd, 0) + 1)) END AS event_activity_ratio,
  CASE WHEN evk THEN ev_not / nullif(nt, 0) END AS event_notional_share
FROM j ORDER BY account_id
"""

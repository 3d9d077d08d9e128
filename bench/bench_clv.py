"""Lifetime-value models at venue scale: 1M simulated accounts.

Draws account histories straight from the generative processes with numpy, in days:

* BG/NBD: lambda ~ Gamma(r, alpha), p ~ Beta(a, b); K ~ Poisson(lambda T) purchases would
  happen in (0, T] while alive, the account drops out after purchase J ~ Geometric(p), so
  x = min(J, K) and, given K, the x-th purchase time is T * Beta(x, K - x + 1);
* Pareto/NBD: mu ~ Gamma(s, beta), lifetime ~ Exp(mu), x ~ Poisson(lambda * min(lifetime, T)),
  t_x = min(lifetime, T) * Beta(x, 1);
* Gamma-Gamma: nu ~ Gamma(q, gamma); the mean of x repeat values is Gamma(p x, nu x).

Accounts join on a whole day (T in 1..365). "days" mode rounds the last purchase time to
the nearest whole day, like the venue's active-day summary (many accounts share a history,
so the fit runs on the distinct triplets; flooring instead would understate recency by half
a day on average and bias alpha and beta); "continuous" mode keeps exact times.

Usage: python bench/bench_clv.py [--n 1000000] [--runs 3] [--mode days|continuous|both]

Calibration on simulated venues (``--calibration``): for each difficulty and seed,
simulate a 3,000-account, 180-day venue, score ``venue_clv`` as of day 120 with a 60-day
horizon, and compare each account's predicted fee revenue over the next 60 days
(``expected_revenue``, undiscounted) with the fees it actually paid then, by decile of
the prediction (accounts active before the cutoff; net rebate earners included), beside
a supervised fee model (see :func:`calibration`)::

    python bench/bench_clv.py --calibration --difficulty realistic,hard --seeds 1,2,3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from traderseg.analysis.clv import (
    BGNBDModel,
    GammaGammaModel,
    ParetoNBDModel,
    annual_to_period_rate,
    expected_discounted_purchases,
)

BG_TRUTH = {"r": 0.8, "alpha": 20.0, "a": 0.8, "b": 6.0}
PARETO_TRUTH = {"r": 0.8, "alpha": 20.0, "s": 0.7, "beta": 150.0}
GG_TRUTH = {"p": 6.0, "q": 4.0, "gamma": 20.0}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def draw_bgnbd(n: int, rng: np.random.Generator, days: bool):
    r, alpha, a, b = BG_TRUTH.values()
    T = rng.integers(1, 366, n).astype(float)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    k = rng.poisson(lam * T)
    j = rng.geometric(p)
    x = np.minimum(j, k)
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(k - x + 1, 1)), 0.0)
    if days:
        t_x = np.round(t_x)
    return x.astype(float), t_x, T


def draw_pareto(n: int, rng: np.random.Generator, days: bool):
    r, alpha, s, beta = PARETO_TRUTH.values()
    T = rng.integers(1, 366, n).astype(float)
    lam = rng.gamma(r, 1 / alpha, n)
    mu = rng.gamma(s, 1 / beta, n)
    span = np.minimum(rng.exponential(1 / mu), T)
    x = rng.poisson(lam * span)
    t_x = np.where(x > 0, span * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    if days:
        t_x = np.round(t_x)
    return x.astype(float), t_x, T


def draw_values(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    p, q, gamma = GG_TRUTH.values()
    nu = rng.gamma(q, 1 / gamma, len(x))
    xs = np.maximum(x, 1)
    return np.where(x > 0, rng.gamma(p * xs, 1 / (nu * xs)), 0.0)


def timed(fn: Callable[[], Any], runs: int) -> tuple[Any, float, list[float]]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times), times


def recovery(model, truth: dict[str, float]) -> dict[str, dict[str, float]]:
    return {k: {"true": v, "fit": round(float(model.params_[k]), 4),
                "se": round(float(model.standard_errors_[k]), 4),
                "z": round(float((model.params_[k] - v) / model.standard_errors_[k]), 2)}
            for k, v in truth.items()}


def run(n: int, runs: int, days: bool, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"mode": "days" if days else "continuous", "accounts": n,
                           "load_avg_1m": round(os.getloadavg()[0], 2),
                           "cpus": os.cpu_count()}
    t0 = time.perf_counter()
    x, t_x, T = draw_bgnbd(n, rng, days)
    zbar = draw_values(x, rng)
    px, pt, pT = draw_pareto(n, rng, days)
    out["simulate_s"] = round(time.perf_counter() - t0, 2)

    bg, med, all_t = timed(lambda: BGNBDModel().fit(x, t_x, T), runs)
    out["bgnbd"] = {"fit_s_median": round(med, 2), "fit_s_runs": [round(v, 2) for v in all_t],
                    "unique_rows": bg.n_unique_, "converged": bg.converged_,
                    "recovery": recovery(bg, BG_TRUTH), "peak_rss_mb": round(peak_rss_mb())}
    pr, med, all_t = timed(lambda: ParetoNBDModel().fit(px, pt, pT), runs if days else 1)
    out["paretonbd"] = {"fit_s_median": round(med, 2), "fit_s_runs": [round(v, 2) for v in all_t],
                        "unique_rows": pr.n_unique_, "converged": pr.converged_,
                        "recovery": recovery(pr, PARETO_TRUTH),
                        "peak_rss_mb": round(peak_rss_mb())}
    gg, med, all_t = timed(lambda: GammaGammaModel().fit(x, zbar), runs)
    out["gammagamma"] = {"fit_s_median": round(med, 2), "fit_s_runs": [round(v, 2) for v in all_t],
                         "customers": gg.n_customers_, "excluded_x0": gg.n_excluded_,
                         "recovery": recovery(gg, GG_TRUTH), "peak_rss_mb": round(peak_rss_mb())}

    rate = annual_to_period_rate(0.10, 1.0)

    def score() -> np.ndarray:
        purchases = expected_discounted_purchases(bg, x, t_x, T, horizon=90, discount_rate=rate,
                                                  step=1.0 if days else 7.0)
        alive = bg.conditional_probability_alive(x, t_x, T)
        value = gg.conditional_expected_average_profit(x, zbar)
        return np.column_stack([alive, purchases.expected, purchases.discounted * value])

    scores, med, all_t = timed(score, runs if days else 1)
    out["score_clv_90d"] = {"s_median": round(med, 2), "s_runs": [round(v, 2) for v in all_t],
                            "step_days": 1.0 if days else 7.0,
                            "total_clv": round(float(scores[:, 2].sum())),
                            "mean_p_alive": round(float(scores[:, 0].mean()), 4),
                            "peak_rss_mb": round(peak_rss_mb())}
    out["peak_rss_mb"] = round(peak_rss_mb())
    return out


FEE_MODEL_CUTOFFS = (30, 45, 60)
"""Training cutoffs (days) of the fee model: their 60-day labels end by day 120."""


def decile_table(pred: pd.Series, realised: pd.Series, movers: pd.Index) -> pd.DataFrame:
    """Mean predicted and realised fees by decile of the prediction, and in all.

    ``moved_share``: share of the decile's realised fees paid by ``movers`` (accounts whose
    archetype changes inside the horizon, which nothing before the cutoff shows).
    """
    acc = pred.to_frame("expected_revenue").join(realised.rename("realised"))
    acc["realised"] = acc["realised"].fillna(0.0)
    acc["moved"] = acc["realised"].where(acc.index.isin(movers), 0.0)
    acc["decile"] = pd.qcut(acc["expected_revenue"].rank(method="first"), 10,
                            labels=False) + 1
    g = acc.groupby("decile")
    table = pd.DataFrame({"accounts": g.size(), "predicted": g["expected_revenue"].mean(),
                          "realised": g["realised"].mean()})
    table["ratio"] = table["predicted"] / table["realised"]
    table["moved_share"] = g["moved"].sum() / g["realised"].sum()
    table.loc["all"] = [len(acc), acc["expected_revenue"].mean(), acc["realised"].mean(),
                        acc["expected_revenue"].sum() / acc["realised"].sum(),
                        acc["moved"].sum() / acc["realised"].sum()]
    return table


def calibration(difficulty: str, seed: int, work: str) -> pd.DataFrame:
    """Predicted vs realised fees over the 60 days after the cutoff, by decile.

    Two valuations: the lifetime-value model (``venue_clv``, or BG/NBD active days times
    the account's own mean revenue per active day when its Gamma-Gamma fit is refused),
    and ``fee_model``: gradient-boosted trees (squared error, so a mean per leaf) of the
    fees of the next 60 days on the catalogue features, trained on the cutoffs
    :data:`FEE_MODEL_CUTOFFS` (whose labels end before the scoring cutoff).
    """
    from datetime import date, timedelta
    from pathlib import Path

    from sklearn.ensemble import HistGradientBoostingRegressor

    from traderseg.analysis.clv import BGNBDModel, venue_clv
    from traderseg.analysis.clv.venue import account_day_summary
    from traderseg.errors import DataError
    from traderseg.features.compute import compute_features
    from traderseg.simulate import simulate_venue
    from traderseg.store import connect

    start, days, fit_day, horizon = date(2024, 1, 1), 180, 120, 60
    sim = Path(work) / f"clv-{difficulty}-{seed}"
    simulate_venue(sim, accounts=3000, days=days, seed=seed, start=start, difficulty=difficulty)
    con = connect(":memory:")
    con.execute(f"INSERT INTO fills BY NAME SELECT * FROM read_parquet('{sim}/fills/*.parquet')")

    def at(day: int) -> pd.Timestamp:
        return pd.Timestamp(start + timedelta(days=day), tz="UTC")

    def fees(day: int) -> pd.Series:
        return con.execute(
            "SELECT account_id, SUM(fee_usd) AS realised FROM fills WHERE ts >= $a AND ts < $b "
            "GROUP BY 1", {"a": at(day).to_pydatetime(),
                           "b": (at(day) + pd.Timedelta(days=horizon)).to_pydatetime()}
        ).df().set_index("account_id")["realised"]

    as_of = at(fit_day)
    try:
        pred = venue_clv(con, as_of, horizon_days=horizon,
                         discount_rate_annual=0.0).accounts["expected_revenue"]
        valuation = "venue_clv"
    except DataError as exc:
        # the Gamma-Gamma fit fails on this venue: value an active day at the account's
        # own mean revenue per active day so far, times BG/NBD expected active days
        print(f"  venue_clv failed ({exc}); BG/NBD x own mean revenue per active day")
        summ = account_day_summary(con, as_of)
        x, t_x, big_t = summ["frequency"], summ["recency"], summ["T"]
        bg = BGNBDModel(compute_se=False).fit(x, t_x, big_t)
        days_ahead = bg.conditional_expected_number_of_purchases_up_to_time(
            float(horizon), x.to_numpy(), t_x.to_numpy(), big_t.to_numpy())
        pred = pd.Series(days_ahead * summ["revenue_to_date"].to_numpy() / (x.to_numpy() + 1),
                         index=summ.index, name="expected_revenue")
        valuation = "bgnbd_own_mean"
    windows = ("7d", "30d", "90d", "all")
    parts = [(compute_features(con, at(d).to_pydatetime(), windows), fees(d))
             for d in FEE_MODEL_CUTOFFS]
    X = pd.concat([f for f, _ in parts])
    y = pd.concat([r.reindex(f.index).fillna(0.0) for f, r in parts])
    # numeric columns with values (the event features are empty: no market in this store)
    cols = [c for c in X.columns if X[c].dtype.kind in "fi" and X[c].notna().sum() >= 10]
    trees = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05,
                                          min_samples_leaf=40, random_state=seed)
    trees.fit(X[cols], y)
    now = compute_features(con, as_of.to_pydatetime(), windows).reindex(pred.index)
    fee_pred = pd.Series(trees.predict(now[cols]), index=pred.index)
    realised = fees(fit_day)
    con.close()
    truth = pd.read_parquet(sim / "truth.parquet")
    moved = truth["migrated_at"].between(as_of, as_of + pd.Timedelta(days=horizon),
                                         inclusive="left")
    movers = pd.Index(truth.loc[moved, "account_id"])
    return pd.concat([
        decile_table(pred, realised, movers).assign(valuation=valuation),
        decile_table(fee_pred, realised, movers).assign(valuation="fee_model"),
    ]).assign(difficulty=difficulty, seed=seed)


def run_calibration(levels: list[str], seeds: list[int]) -> None:
    import tempfile

    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for level in levels:
            for seed in seeds:
                t0 = time.perf_counter()
                table = calibration(level, seed, tmp)
                print(f"{level} seed {seed} ({time.perf_counter() - t0:.0f}s)")
                print(table.drop(columns=["difficulty", "seed"]).to_string(
                    float_format=lambda v: f"{v:,.3f}"), flush=True)
                parts.append(table.reset_index())
    df = pd.concat(parts)
    df["within_20pct"] = (df["ratio"] - 1).abs() <= 0.2
    dec = df[df["decile"] != "all"]
    summary = dec.groupby(["difficulty", "valuation"]).agg(
        deciles_within_20pct=("within_20pct", "sum"), deciles=("within_20pct", "size"),
        median_ratio=("ratio", "median"), min_ratio=("ratio", "min"), max_ratio=("ratio", "max"))
    print("\nper-decile ratio predicted / realised, all seeds")
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    print(dec.pivot_table(index=["difficulty", "decile"], columns=["valuation", "seed"],
                          values="ratio").to_string(float_format=lambda v: f"{v:.3f}"))
    print("\nshare of realised fees paid by accounts changing style inside the horizon")
    print(dec[dec["valuation"] != "fee_model"].pivot_table(
        index=["difficulty", "decile"], columns="seed", values="moved_share").to_string(
        float_format=lambda v: f"{v:.3f}"))
    tot = df[df["decile"] == "all"].set_index(["difficulty", "valuation", "seed"])["ratio"]
    print("\ntotal predicted / realised")
    print(tot.to_string(float_format=lambda v: f"{v:.3f}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mode", choices=("days", "continuous", "both"), default="both")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--calibration", action="store_true",
                        help="calibration of predicted fees on simulated venues instead")
    parser.add_argument("--difficulty", default="realistic,hard")
    parser.add_argument("--seeds", default="1,2,3")
    args = parser.parse_args()
    if args.calibration:
        run_calibration(args.difficulty.split(","), [int(s) for s in args.seeds.split(",")])
        return
    modes = ("days", "continuous") if args.mode == "both" else (args.mode,)
    for mode in modes:
        result = run(args.n, args.runs, mode == "days", args.seed)
        print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}))
        for key, value in result.items():
            if isinstance(value, dict):
                print(f"  {key}: {json.dumps(value)}", flush=True)


if __name__ == "__main__":
    main()

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mode", choices=("days", "continuous", "both"), default="both")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    modes = ("days", "continuous") if args.mode == "both" else (args.mode,)
    for mode in modes:
        result = run(args.n, args.runs, mode == "days", args.seed)
        print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}))
        for key, value in result.items():
            if isinstance(value, dict):
                print(f"  {key}: {json.dumps(value)}", flush=True)


if __name__ == "__main__":
    main()

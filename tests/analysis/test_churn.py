import numpy as np
import pandas as pd
import pytest

from helpers.cli import run_cli
from helpers.store import fills_store
from traderseg.analysis.churn import (
    ChurnClassifier,
    calibration_table,
    churn_backtest,
    churn_dataset,
    top_decile_lift,
)
from traderseg.analysis.churn.backtest import check_cutoffs
from traderseg.errors import DataError, NotFittedError

T0 = pd.Timestamp("2024-01-01", tz="UTC")
DAYS = 240


def churn_venue(n_accounts=500, seed=11):
    """Accounts whose churn hazard depends on their leverage; truth records the churn time."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 150, n_accounts)
    risky = rng.random(n_accounts) < 0.5
    lev = np.where(risky, rng.choice([25, 50, 100], n_accounts), rng.choice([1, 2, 3], n_accounts))
    hazard = np.where(risky, 1 / 60, 1 / 1000)  # per day
    life = rng.exponential(1 / hazard)
    churn = start + life
    p_day = rng.uniform(0.3, 0.9, n_accounts)
    acct, day = np.meshgrid(np.arange(n_accounts), np.arange(DAYS), indexing="ij")
    acct, day = acct.ravel(), day.ravel()
    on = (day >= np.floor(start[acct])) & (day + 1 <= churn[acct]) & (rng.random(acct.size) < p_day[acct])
    acct, day = acct[on], day[on]
    k = rng.integers(1, 4, acct.size)
    acct, day = np.repeat(acct, k), np.repeat(day, k)
    n = acct.size
    ts = T0 + pd.to_timedelta(day * 86400 + rng.uniform(0, 86399, n), unit="s")
    notional = np.exp(rng.normal(8 + 0.02 * lev[acct], 1.0, n))
    fills = pd.DataFrame({
        "fill_id": [f"f{i}" for i in range(n)], "ts": ts,
        "account_id": [f"a{a:04d}" for a in acct], "instrument": "BTC-PERPETUAL",
        "underlying": "BTC", "kind": "perp", "side": rng.choice(["buy", "sell"], n),
        "qty": 1.0, "price": notional, "notional_usd": notional, "fee_usd": notional * 5e-4,
        "is_maker": rng.random(n) < 0.3, "leverage": lev[acct].astype(float),
    })
    ids = [f"a{a:04d}" for a in range(n_accounts)]
    churned_at = [T0 + pd.Timedelta(days=float(c)) if c < DAYS else pd.NaT for c in churn]
    truth = pd.DataFrame({"account_id": ids, "archetype": np.where(risky, "gambler", "steady"),
                          "created_at": [T0 + pd.Timedelta(days=float(s)) for s in start],
                          "churned_at": pd.to_datetime(churned_at, utc=True)})
    # drop accounts that never traded (churned before their first day)
    truth = truth[truth["account_id"].isin(set(fills["account_id"]))]
    return fills, truth


@pytest.fixture(scope="module")
def venue():
    fills, truth = churn_venue()
    return fills, truth, fills_store(fills, truth=truth)


CUTOFFS = ["2024-04-10", "2024-05-10", "2024-06-09", "2024-07-09"]


def test_labels_match_an_independent_computation(venue):
    fills, truth, con = venue
    cut = pd.Timestamp("2024-05-10", tz="UTC")
    ds = churn_dataset(con, cut, 30)
    recent = fills[(fills.ts >= cut - pd.Timedelta(days=90)) & (fills.ts < cut)]
    after = fills[(fills.ts >= cut) & (fills.ts < cut + pd.Timedelta(days=30))]
    before = fills[(fills.ts >= cut - pd.Timedelta(days=30)) & (fills.ts < cut)]
    population = sorted(recent["account_id"].unique())
    assert list(ds.labels.index) == population
    exp_churn = ~pd.Index(population).isin(after["account_id"].unique())
    np.testing.assert_array_equal(ds.labels["churned"].to_numpy(), exp_churn)
    nxt = after.groupby("account_id")["notional_usd"].sum().reindex(population).fillna(0)
    prev = before.groupby("account_id")["notional_usd"].sum().reindex(population).fillna(0)
    np.testing.assert_allclose(ds.labels["next_notional"], nxt, rtol=1e-9)
    np.testing.assert_allclose(ds.labels["prev_notional"], prev, rtol=1e-9)
    tr = truth.set_index("account_id")["churned_at"].reindex(population)
    exp_true = (tr.notna() & (tr < cut + pd.Timedelta(days=30))).to_numpy()
    np.testing.assert_array_equal(ds.labels["true_churned"].to_numpy(), exp_true)
    exp_in = (tr.notna() & (tr >= cut) & (tr < cut + pd.Timedelta(days=30))).to_numpy()
    np.testing.assert_array_equal(ds.labels["true_churned_in_horizon"].to_numpy(), exp_in)
    assert exp_in.sum() > 0
    exp_alive = (tr.isna() | (tr >= cut)).to_numpy()
    np.testing.assert_array_equal(ds.labels["true_alive"].to_numpy(), exp_alive)
    # features never see the future: the last fill before the cutoff defines recency
    last = recent.groupby("account_id")["ts"].max()
    rec = (cut - last).dt.total_seconds() / 86400
    np.testing.assert_allclose(ds.features["recency_days__all"], rec.loc[population], rtol=1e-6)


def test_backtest_beats_chance_and_reports_the_baselines(venue):
    _, _, con = venue
    bt = churn_backtest(con, CUTOFFS, horizon_days=30, n_threads=1)
    m = bt.metrics
    assert list(m.index) == ["model", "bgnbd", "recency"]
    assert m.loc["model", "auc"] > 0.75
    assert m.loc["model", "auc_truth"] > 0.75
    # among accounts truly alive at the cutoff, who quits next: harder, still informative
    # (leverage tells; activity history cannot, as these accounts have all been trading)
    assert m.loc["model", "auc_truth_alive"] > 0.55
    assert m.loc["model", "auc_truth_alive"] > max(m.loc["bgnbd", "auc_truth_alive"],
                                                   m.loc["recency", "auc_truth_alive"]) + 0.05
    for scorer in ("bgnbd", "recency"):
        assert 0.5 < m.loc[scorer, "auc"] < 1  # rule baselines are computed and informative
    assert np.isnan(m.loc["recency", "brier"]) and 0 < m.loc["model", "brier"] < 0.25
    assert m.loc["model", "top_decile_lift"] > 1.5
    # leverage drives the true churn hazard: the model, which sees it, ranks true churn
    # better than recency or BG/NBD, which only see activity
    assert m.loc["model", "auc_truth"] > max(m.loc["recency", "auc_truth"], m.loc["bgnbd", "auc_truth"])
    # the calibrated model's probabilities track the observed rate
    cal = bt.calibration[bt.calibration["scorer"] == "model"]
    assert cal["n"].sum() == len(bt.predictions)
    assert abs(bt.predictions["p_churn"].mean() - bt.base_rate) < 0.08
    assert cal["observed_rate"].iloc[-1] > cal["observed_rate"].iloc[0]
    # the metrics are those of the published predictions
    from sklearn.metrics import roc_auc_score
    p = bt.predictions
    assert roc_auc_score(p["churned"], p["p_churn"]) == pytest.approx(m.loc["model", "auc"])
    assert roc_auc_score(p["churned"], p["recency_days"]) == pytest.approx(m.loc["recency", "auc"])
    assert set(bt.volume.index) == {"model", "same_as_last_period"}
    assert bt.volume.loc["model", "r2"] > 0.3
    assert bt.test_cutoff == pd.Timestamp(CUTOFFS[-1], tz="UTC") and len(bt.train_cutoffs) == 3


def test_time_ordering_is_enforced():
    with pytest.raises(DataError, match="cutoffs must increase"):
        check_cutoffs(["2024-06-01", "2024-05-01"], 30)
    with pytest.raises(DataError, match="reaches past the test cutoff"):
        check_cutoffs(["2024-05-01", "2024-05-20"], 30)
    with pytest.raises(DataError, match="at least two cutoffs"):
        check_cutoffs(["2024-05-01"], 30)
    assert len(check_cutoffs(["2024-04-01", "2024-05-01"], 30)) == 2


def test_cutoffs_outside_the_data(venue):
    _, _, con = venue
    with pytest.raises(DataError, match="cutoff outside the data"):
        churn_dataset(con, pd.Timestamp("2024-08-15", tz="UTC"), 30)
    with pytest.raises(DataError, match="cutoff outside the data"):
        churn_dataset(con, pd.Timestamp("2023-06-01", tz="UTC"), 30)
    with pytest.raises(DataError, match="cutoff outside the data"):
        churn_backtest(con, ["2024-06-01", "2024-08-01"], horizon_days=30)


def test_calibration_table_and_lift_by_hand():
    y = np.array([0, 0, 1, 0, 1, 1, 0, 1, 1, 1])
    p = np.arange(10) / 10
    cal = calibration_table(y, p, n_bins=5)
    np.testing.assert_allclose(cal["mean_predicted"], [0.05, 0.25, 0.45, 0.65, 0.85])
    np.testing.assert_allclose(cal["observed_rate"], [0, 0.5, 1.0, 0.5, 1.0])
    assert top_decile_lift(y, p) == pytest.approx(1 / 0.6)  # the top row churned
    assert top_decile_lift(y, p, share=0.3) == pytest.approx(1 / 0.6)
    assert top_decile_lift(1 - y, p, share=0.5) == pytest.approx(0.2 / 0.4)


def test_classifier_contract():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": np.where(rng.random(300) < 0.2, np.nan, 1.0)})
    y = (X["a"] > 0).astype(int)
    clf = ChurnClassifier(max_iter=30, n_threads=1, random_state=0)
    assert clf.get_params()["max_iter"] == 30 and not hasattr(clf, "calibrated_")
    with pytest.raises(NotFittedError):
        clf.predict_proba(X)
    assert clf.fit(X, y) is clf and clf.calibration_method_ == "sigmoid"
    p = clf.predict_proba(X)[:, 1]
    assert ((p > 0.5) == (X["a"] > 0)).mean() > 0.9
    with pytest.raises(DataError, match="feature columns differ"):
        clf.predict_proba(X.rename(columns={"b": "c"}))
    with pytest.raises(DataError, match="one class"):
        ChurnClassifier(n_threads=1).fit(X, np.zeros(300))


@pytest.mark.parametrize("positives, cv, ok", [(2, 3, False), (3, 3, True), (4, 5, False),
                                                (5, 5, True)])
def test_calibration_needs_as_many_rows_of_each_class_as_folds(positives, cv, ok):
    X = pd.DataFrame({"a": np.arange(40.0)})
    y = np.zeros(40, dtype=int)
    y[:positives] = 1
    clf = ChurnClassifier(max_iter=5, n_threads=1, random_state=0, cv=cv)
    if ok:
        assert clf.fit(X, y) is clf
    else:
        with pytest.raises(DataError, match=f"the rarer class has {positives} row\\(s\\) of 40; "
                           f"a calibration over {cv} folds needs at least {cv} of each class"):
            clf.fit(X, y)


def test_cli_backtest_writes_predictions_and_refuses_bad_order(tmp_path, capsys):
    fills, truth = churn_venue(n_accounts=250, seed=3)
    db = tmp_path / "s.duckdb"
    fills_store(fills, truth=truth).execute(f"ATTACH '{db}' AS f; COPY FROM DATABASE memory TO f; DETACH f")
    out = tmp_path / "c.parquet"
    code, text, err = run_cli(["churn", "--db", str(db), "--cutoffs", ",".join(CUTOFFS[1:]),
                               "--threads", "1", "--out", str(out)], capsys)
    assert code == 0, err
    assert "bgnbd" in text and "recency" in text and "same_as_last_period" in text
    pred = pd.read_parquet(out)
    assert {"account_id", "churned", "p_churn", "bgnbd_p_churn", "true_churned"} <= set(pred.columns)
    code, _, err = run_cli(["churn", "--db", str(db), "--cutoffs", "2024-06-01,2024-05-01"], capsys)
    assert code == 2 and "cutoffs must increase" in err


def test_estimators_follow_the_sklearn_contract():
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    from traderseg.analysis.churn import VolumeRegressor
    for est in (ChurnClassifier(max_iter=10, min_samples_leaf=5, n_threads=1, random_state=0),
                VolumeRegressor(max_iter=10, min_samples_leaf=5, n_threads=1, random_state=0)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = check_estimator(est, on_fail=None)
        failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
        assert not failed, failed


def test_grace_label_means_stopped_within_the_horizon():
    """Cutoff c, horizon 10 days, grace 5: 'stopped' = no fill in [c + 10d, c + 15d)."""
    c = pd.Timestamp("2024-03-01", tz="UTC")
    day = pd.Timedelta(days=1)
    rows = [
        ("a_stops", c - day), ("a_stops", c + 3 * day),  # trades in the horizon, then stops
        ("b_dormant", c - day), ("b_dormant", c + 12 * day),  # silent horizon, back in grace
        ("c_edge_in", c - day), ("c_edge_in", c + 10 * day),  # a fill exactly at c + h
        ("d_edge_out", c - day), ("d_edge_out", c + 15 * day),  # exactly at c + h + g
        ("e_keeps", c - day), ("e_keeps", c + 11 * day),
    ]
    n = len(rows)
    fills = pd.DataFrame({
        "fill_id": [f"g{i}" for i in range(n)], "ts": [r[1] for r in rows],
        "account_id": [r[0] for r in rows], "instrument": "BTC-PERPETUAL",
        "underlying": "BTC", "kind": "perp", "side": "buy", "qty": 1.0, "price": 100.0,
        "notional_usd": 100.0, "fee_usd": 0.05, "is_maker": False,
    })
    con = fills_store(fills)
    stopped = churn_dataset(con, c, 10, activity_days=30, windows=("7d",),
                            grace_days=5).labels["churned"]
    assert stopped.to_dict() == {"a_stops": True, "b_dormant": False, "c_edge_in": False,
                                 "d_edge_out": True, "e_keeps": False}
    inactive = churn_dataset(con, c, 10, activity_days=30, windows=("7d",)).labels["churned"]
    assert inactive.to_dict() == {"a_stops": False, "b_dormant": True, "c_edge_in": True,
                                  "d_edge_out": True, "e_keeps": True}
    with pytest.raises(DataError, match="grace_days must be >= 0"):
        churn_dataset(con, c, 10, grace_days=-1)
    # the store must cover the grace period too: its last day with fills is c + 15 days,
    # so a period ending at c + 16 days (exclusive) is covered, c + 17 days is not
    churn_dataset(con, c, 10, activity_days=30, windows=("7d",), grace_days=6)
    with pytest.raises(DataError, match="runs past"):
        churn_dataset(con, c, 10, activity_days=30, windows=("7d",), grace_days=7)
    # a training cutoff's label period is horizon + grace long
    with pytest.raises(DataError, match="reaches past the test cutoff"):
        churn_backtest(con, ["2024-02-10", "2024-03-01"], 10, grace_days=15)

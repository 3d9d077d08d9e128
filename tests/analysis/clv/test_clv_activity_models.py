"""Behaviour of the BG/NBD and Pareto/NBD models beyond the published numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln, logsumexp
from sklearn.base import clone

from traderseg.analysis.clv import BGNBDModel, ParetoNBDModel
from traderseg.analysis.clv._hypergeom import log_hyp2f1_shifted
from traderseg.errors import DataError, NotFittedError, SchemaError


@pytest.mark.parametrize("fixture", ["bgnbd", "paretonbd"])
def test_p_alive_falls_as_the_last_purchase_gets_older(fixture, request):
    model = request.getfixturevalue(fixture)
    t_x = np.linspace(38.0, 1.0, 20)
    alive = model.conditional_probability_alive(np.full(20, 4), t_x, np.full(20, 39.0))
    assert (np.diff(alive) < 0).all()
    assert ((alive > 0) & (alive <= 1)).all()


def test_bgnbd_p_alive_is_one_without_repeat_purchases(bgnbd):
    alive = bgnbd.conditional_probability_alive([0, 0, 0], [0.0, 0.0, 0.0], [1.0, 20.0, 80.0])
    np.testing.assert_array_equal(alive, 1.0)


def test_paretonbd_p_alive_falls_with_silence(paretonbd):
    alive = paretonbd.conditional_probability_alive([0, 0, 0], [0.0] * 3, [0.0, 20.0, 80.0])
    assert alive[0] == pytest.approx(1.0)
    assert alive[0] > alive[1] > alive[2]


def test_bgnbd_recovers_simulated_parameters(simulate):
    rng = np.random.default_rng(11)
    n = 20_000
    truth = {"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 3.0}
    T = rng.uniform(20, 60, n)
    x, t_x = simulate(n, *truth.values(), T, rng)
    model = BGNBDModel().fit(x, t_x, T)
    for name, value in truth.items():
        assert abs(model.params_[name] - value) < 4 * model.standard_errors_[name], name


def test_paretonbd_recovers_simulated_parameters():
    rng = np.random.default_rng(5)
    n = 20_000
    truth = {"r": 0.6, "alpha": 8.0, "s": 0.8, "beta": 10.0}
    lam = rng.gamma(truth["r"], 1 / truth["alpha"], n)
    mu = rng.gamma(truth["s"], 1 / truth["beta"], n)
    T = rng.uniform(20, 60, n)
    span = np.minimum(rng.exponential(1 / mu), T)
    x = rng.poisson(lam * span).astype(float)
    t_x = np.where(x > 0, span * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    model = ParetoNBDModel().fit(x, t_x, T)
    for name, value in truth.items():
        assert abs(model.params_[name] - value) < 4 * model.standard_errors_[name], name


def test_population_expectation_matches_simulation(simulate):
    rng = np.random.default_rng(3)
    n = 200_000
    r, alpha, a, b = 0.4, 5.0, 0.8, 2.5
    model = BGNBDModel()
    model.params_ = pd.Series([r, alpha, a, b], index=["r", "alpha", "a", "b"])
    x, _ = simulate(n, r, alpha, a, b, np.full(n, 30.0), rng)
    expected = model.expected_number_of_purchases_up_to_time(30.0)[0]
    assert abs(x.mean() - expected) < 4 * x.std() / np.sqrt(n)


def test_weights_equal_duplicated_rows():
    x = np.array([0, 1, 3, 2, 0, 5])
    t_x = np.array([0.0, 4.0, 20.0, 11.0, 0.0, 30.0])
    T = np.array([30.0, 25.0, 32.0, 40.0, 12.0, 35.0])
    w = np.array([3, 1, 2, 4, 1, 2])
    weighted = BGNBDModel(compute_se=False).fit(x, t_x, T, weights=w)
    repeated = BGNBDModel(compute_se=False).fit(np.repeat(x, w), np.repeat(t_x, w), np.repeat(T, w))
    np.testing.assert_allclose(weighted.params_, repeated.params_, rtol=1e-4)
    assert weighted.n_customers_ == w.sum() and repeated.n_unique_ == len(x)


def test_log_hyp2f1_matches_series_where_scipy_fails():
    # direct log-space series sum_k (b)_k/k! z^k A/(A+k), independent of both code paths
    cases = [(479.378, 4.5935, 0.98934642), (480.0, 480.0, 0.98), (1000.5, 1000.2, 0.7),
             (2000.0, 2.5, 0.999), (1.16, 1.6, 0.5), (30.0, 200.0, 0.2)]
    for big_a, b, z in cases:
        k = np.arange(400_000)
        terms = (gammaln(b + k) - gammaln(b) - gammaln(k + 1) + k * np.log(z)
                 + np.log(big_a) - np.log(big_a + k))
        ours = log_hyp2f1_shifted(np.array([big_a]), np.array([b]), np.array([z]))[0]
        assert ours == pytest.approx(logsumexp(terms), rel=1e-7), (big_a, b, z)


def test_paretonbd_handles_hundreds_of_purchases():
    rng = np.random.default_rng(2)
    n = 800
    lam = rng.gamma(3.0, 1 / 0.5, n)  # heavy users: several purchases per day
    T = rng.uniform(100, 365, n).round()
    span = np.minimum(rng.exponential(400, n), T)
    x = rng.poisson(lam * span).astype(float)
    t_x = np.where(x > 0, np.ceil(span * rng.beta(np.maximum(x, 1), 1.0)), 0.0)
    t_x = np.minimum(t_x, T)
    model = ParetoNBDModel(compute_se=False).fit(x, t_x, T)
    assert x.max() > 1000
    assert np.isfinite(model.log_likelihood_)
    alive = model.conditional_probability_alive(x, t_x, T)
    assert np.isfinite(alive).all()


@pytest.mark.parametrize("cls", [BGNBDModel, ParetoNBDModel])
def test_bad_histories_are_refused(cls):
    model = cls(compute_se=False)
    with pytest.raises(DataError, match="empty"):
        model.fit([], [], [])
    with pytest.raises(DataError, match="greater than T"):
        model.fit([1, 2], [5.0, 12.0], [10.0, 11.0])
    with pytest.raises(DataError, match="NaN"):
        model.fit([1, 2], [5.0, np.nan], [10.0, 11.0])
    with pytest.raises(DataError, match="whole number"):
        model.fit([1.5, 2], [5.0, 6.0], [10.0, 11.0])
    with pytest.raises(DataError, match="negative"):
        model.fit([-1, 2], [0.0, 6.0], [10.0, 11.0])
    with pytest.raises(DataError, match="frequency is 0"):
        model.fit([0, 2], [3.0, 6.0], [10.0, 11.0])
    with pytest.raises(SchemaError, match="recency"):
        model.fit(pd.DataFrame({"frequency": [1], "T": [3.0]}))


@pytest.mark.parametrize("cls", [BGNBDModel, ParetoNBDModel])
def test_estimator_contract(cls):
    model = cls(penalizer=0.01, maxiter=50)
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.conditional_probability_alive([1], [2.0], [3.0])
    fitted = model.fit([0, 2, 5, 1], [0.0, 20.0, 30.0, 5.0], [39.0, 39.0, 38.0, 30.0])
    assert fitted is model and not hasattr(clone(model), "params_")


def test_penalizer_shrinks_log_parameters(cdnow, bgnbd):
    shrunk = BGNBDModel(penalizer=0.05, compute_se=False).fit(cdnow)
    assert np.linalg.norm(np.log(shrunk.params_)) < np.linalg.norm(np.log(bgnbd.params_))
    assert shrunk.log_likelihood_ < bgnbd.log_likelihood_

"""Choosing the number of segments, keeping the evidence.

For every candidate ``k`` three criteria are computed on a random subsample of the
preprocessed matrix (at most ``search_sample`` rows, so the search costs the same on
100k or 10M accounts):

* ``silhouette``: mean silhouette of the reference fit's labels on a further subsample of
  at most ``silhouette_sample`` rows (higher is better);
* ``bic``: Bayesian information criterion, lower is better. For ``gmm`` the mixture's own
  BIC. For ``kmeans`` the BIC of the hard-assignment spherical Gaussian model k-means
  implies (shared variance ``inertia / (n d)``, mixing weights from the cluster sizes,
  ``k d + k`` free parameters), as in X-means;
* ``stability``: mean adjusted Rand index between every pair of ``n_bootstrap`` fits on
  bootstrap resamples of the search sample, each predicting the same evaluation sample
  (1 = the partition is reproducible; spurious splits score low).

Every fit of the search is single-threaded (the sample is small), a reference fit has
20 restarts and a bootstrap fit 10 for ``kmeans`` (3 and 2 for ``gmm``), and mixtures
start from k-means++ seeds rather than a full k-means run.

The rule (:func:`choose_k`): keep the candidates whose stability is at least
``stability_floor`` (all of them if none is); score each as
``0.4 * silhouette' + 0.4 * stability + 0.2 * bic'`` where ``silhouette'`` and ``bic'``
are min-max rescaled to ``[0, 1]`` over the candidates (``bic'`` reversed so lower BIC
scores higher); choose the best score, the smaller ``k`` on a tie.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

logger = logging.getLogger(__name__)

SCORE_WEIGHTS: dict[str, float] = {"silhouette": 0.4, "stability": 0.4, "bic": 0.2}
"""Weights of the rescaled criteria in the k-selection score."""


def fit_partition(
    Z: np.ndarray,
    k: int,
    *,
    method: str,
    seed: int,
    n_init: int = 1,
    covariance_type: str = "diag",
    init: np.ndarray | None = None,
) -> KMeans | GaussianMixture:
    """Fit one k-means or Gaussian-mixture partition (the building block of the search).

    Parameters
    ----------
    Z : ndarray
        Preprocessed matrix.
    k : int
        Number of clusters.
    method : {"kmeans", "gmm"}
        Model family.
    seed : int
        Random seed.
    n_init : int
        Restarts.
    covariance_type : str
        Covariance of the mixture components.
    init : ndarray, optional
        Initial centres.

    Returns
    -------
    KMeans or GaussianMixture
        The fitted model.
    """
    if method == "gmm":
        gm = GaussianMixture(
            n_components=k, covariance_type=covariance_type, random_state=seed,
            n_init=n_init, means_init=init, reg_covar=1e-4, init_params="k-means++",
        )
        return gm.fit(Z)
    km = KMeans(
        n_clusters=k, init="k-means++" if init is None else init,
        n_init=n_init if init is None else 1, random_state=seed,
    )
    return km.fit(Z)


def kmeans_bic(Z: np.ndarray, labels: np.ndarray, inertia: float, k: int) -> float:
    """BIC of the spherical Gaussian model implied by a k-means partition.

    Parameters
    ----------
    Z : ndarray of shape (n, d)
        Data the partition was fitted on.
    labels : ndarray of shape (n,)
        Cluster of each row.
    inertia : float
        Sum of squared distances to the assigned centres.
    k : int
        Number of clusters.

    Returns
    -------
    float
        ``-2 log L + p log n`` (lower is better).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Z = np.r_[rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))]
    >>> one = kmeans_bic(Z, np.zeros(200, int), float(((Z - Z.mean(0)) ** 2).sum()), 1)
    >>> lab = (Z[:, 0] > 4).astype(int)
    >>> inert = sum(float(((Z[lab == c] - Z[lab == c].mean(0)) ** 2).sum()) for c in (0, 1))
    >>> kmeans_bic(Z, lab, inert, 2) < one
    True
    """
    n, d = Z.shape
    var = max(inertia / (n * d), 1e-12)
    sizes = np.bincount(labels, minlength=k).astype(float)
    sizes = sizes[sizes > 0]
    loglik = -0.5 * n * d * (np.log(2 * np.pi * var) + 1) + float(np.sum(sizes * np.log(sizes / n)))
    n_params = k * d + k
    return float(-2 * loglik + n_params * np.log(n))


def evaluate_k_range(
    Z: np.ndarray,
    k_values: Sequence[int],
    *,
    method: str = "kmeans",
    random_state: int | None = None,
    search_sample: int = 10_000,
    silhouette_sample: int = 3_000,
    n_bootstrap: int = 5,
    covariance_type: str = "diag",
    boot_init: int | None = None,
    ref_init: int | None = None,
) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """Compute silhouette, BIC and bootstrap stability for each candidate ``k``.

    Parameters
    ----------
    Z : ndarray of shape (n, d)
        Preprocessed matrix.
    k_values : sequence of int
        Candidates (each at least 2 and below the sample size).
    method : {"kmeans", "gmm"}
        Model family.
    random_state : int, optional
        Seed of the subsamples and fits.
    search_sample, silhouette_sample, n_bootstrap : int
        Sizes of the search sample, the silhouette sample, and the number of bootstrap
        fits.
    covariance_type : str
        Mixture covariance (``gmm`` only).
    boot_init : int, optional
        Restarts of each bootstrap fit (default 10 for ``kmeans``, 2 for ``gmm``): a
        bootstrap fit stuck in a poor local optimum would count as instability.
    ref_init : int, optional
        Restarts of the reference fit per k (default 20 for ``kmeans``, 3 for ``gmm``):
        a reference stuck in a poor local optimum would misreport its k.

    Fits on the search sample are small, so they run single-threaded: on a busy
    machine OpenMP threads spinning over a few thousand rows cost far more than they
    save.

    Returns
    -------
    table : pandas.DataFrame
        One row per k: ``k, silhouette, bic, stability, n_sample``.
    centers : dict
        Reference centres per k (fitted on the whole search sample), reusable as a
        warm start for the final fit.
    """
    with threadpool_limits(limits=1, user_api="openmp"):
        return _evaluate(Z, k_values, method, random_state, search_sample, silhouette_sample,
                         n_bootstrap, covariance_type, boot_init, ref_init)


def _evaluate(
    Z: np.ndarray, k_values: Sequence[int], method: str, random_state: int | None,
    search_sample: int, silhouette_sample: int, n_bootstrap: int, covariance_type: str,
    boot_init: int | None, ref_init: int | None,
) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    if ref_init is None:
        ref_init = 20 if method == "kmeans" else 3
    if boot_init is None:
        boot_init = 10 if method == "kmeans" else 2
    rng = np.random.default_rng(random_state)
    n = Z.shape[0]
    sample = Z if n <= search_sample else Z[np.sort(rng.choice(n, search_sample, replace=False))]
    m = sample.shape[0]
    eval_idx = np.sort(rng.choice(m, min(m, silhouette_sample), replace=False))
    evaluation = sample[eval_idx]
    rows = []
    centers: dict[int, np.ndarray] = {}
    for k in k_values:
        seed = int(rng.integers(2**31 - 1))
        ref = fit_partition(sample, k, method=method, seed=seed, n_init=ref_init,
                            covariance_type=covariance_type)
        labels = ref.predict(sample)
        if method == "gmm":
            bic = float(ref.bic(sample))
            centers[k] = ref.means_
        else:
            bic = kmeans_bic(sample, labels, float(ref.inertia_), k)
            centers[k] = ref.cluster_centers_
        ev_labels = labels[eval_idx]
        n_lab = np.unique(ev_labels).size
        sil = (
            float(silhouette_score(evaluation, ev_labels))
            if 2 <= n_lab <= evaluation.shape[0] - 1 else float("nan")
        )
        boots = []
        for _ in range(n_bootstrap):
            idx = rng.integers(0, m, size=m)
            fit = fit_partition(sample[idx], k, method=method,
                                seed=int(rng.integers(2**31 - 1)), n_init=boot_init,
                                covariance_type=covariance_type)
            boots.append(fit.predict(evaluation))
        pairs = [adjusted_rand_score(a, b) for a, b in combinations(boots, 2)]
        stab = float(np.mean(pairs)) if pairs else float("nan")
        rows.append({"k": k, "silhouette": sil, "bic": bic, "stability": stab, "n_sample": m})
        logger.info("k=%d silhouette=%.3f bic=%.1f stability=%.3f", k, sil, bic, stab)
    return pd.DataFrame(rows), centers


def _rescale(values: pd.Series, *, reverse: bool = False) -> pd.Series:
    lo, hi = values.min(), values.max()
    if not np.isfinite(lo) or not np.isfinite(hi) or hi - lo <= 0:
        return pd.Series(1.0, index=values.index)
    out = (values - lo) / (hi - lo)
    return (1 - out if reverse else out).fillna(0.0)


def choose_k(table: pd.DataFrame, *, stability_floor: float = 0.75) -> tuple[int, pd.DataFrame]:
    """Apply the documented rule to an evidence table.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`evaluate_k_range`.
    stability_floor : float
        Minimum stability for a candidate to be eligible.

    Returns
    -------
    k : int
        Chosen number of segments.
    table : pandas.DataFrame
        The evidence with ``eligible``, ``score`` and ``chosen`` columns added.

    Examples
    --------
    >>> t = pd.DataFrame({"k": [2, 3, 4], "silhouette": [0.3, 0.6, 0.4],
    ...                   "bic": [300.0, 200.0, 190.0], "stability": [0.9, 0.95, 0.6]})
    >>> choose_k(t)[0]
    3
    """
    out = table.copy()
    stab = out["stability"].fillna(0.0)
    eligible = stab >= stability_floor
    if not eligible.any():
        eligible[:] = True
    out["eligible"] = eligible
    cand = out[eligible]
    score = (
        SCORE_WEIGHTS["silhouette"] * _rescale(cand["silhouette"])
        + SCORE_WEIGHTS["stability"] * cand["stability"].fillna(0.0)
        + SCORE_WEIGHTS["bic"] * _rescale(cand["bic"], reverse=True)
    )
    out["score"] = score.reindex(out.index)
    best = cand.assign(score=score).sort_values(["score", "k"], ascending=[False, True])
    k = int(best["k"].iloc[0])
    out["chosen"] = out["k"] == k
    return k, out

"""Fairness audit: segments, controls and targeting across region and KYC tier.

For each attribute (:data:`ATTRIBUTES`) and each *outcome* an account receives, the
audit reports two things.

**Rates and disparity.** The outcome's rate in every group of the attribute, with a
bootstrap interval, and the disparity ratio ``lowest rate / highest rate`` over the groups
with at least :data:`MIN_GROUP` accounts, with its bootstrap interval (resampling
accounts within each group, :data:`N_BOOTSTRAP` times). For a yes/no outcome resampling
the ``n`` accounts of a group is drawing ``Binomial(n, rate) / n``, which is how it is
done. Where the outcome is a prediction (churn targeting) the group rates come from
fairlearn's ``MetricFrame`` (selection rate, and with observed churn also the true and
false positive rates). ``disparity_flag``: the ratio's upper bound is below the
four-fifths rule (:data:`FOUR_FIFTHS`), i.e. even the most favourable resample fails it.

**The conditional question.** Does the attribute still predict the outcome once
behaviour is accounted for? A behaviour model (gradient-boosted trees on the behavioural
decision inputs :data:`BEHAVIOUR_COLUMNS`, never the attribute) predicts the outcome out
of fold; if the attribute carries no information beyond behaviour, the residuals
``outcome - prediction`` have the same mean in every group. The statistic is
``T = sum_g n_g * mean_g(residual)^2``; its null distribution comes from permuting the
attribute within segments (:data:`N_PERMUTATIONS` times), ``p = (1 + #{T_perm >= T}) /
(1 + N)``. P-values are Holm-adjusted over all (attribute, outcome) pairs of the audit.
``conditional_effect`` is the gap between the highest and lowest group mean residual.
An outcome is **flagged** when the adjusted ``p < ALPHA`` *and* the effect is at least
:data:`MIN_EFFECT` (five percentage points): a rule keyed on the attribute, directly or
through a proxy that is not behaviour. Segment membership is behaviour itself, so it gets
rates and disparity only.

Outcomes (:func:`audit_outcomes`): membership of each segment; for each control of
:data:`traderseg.policy.controls.CONTROLS` whether it is *restricted* for the account,
its restrictive side derived from how the control combines (a cap below the most
permissive value given, a multiplier above the lowest, fewer products than the widest
set, a permission withdrawn, a flag raised); churn targeting (``churn_probability >=``
:data:`CHURN_TARGET`) and value targeting (value tier platinum or gold).

Groups: accounts without a value of the attribute form ``(missing)``; an attribute with
fewer than two groups large enough cannot be compared (noted, never flagged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from traderseg.errors import DataError
from traderseg.policy.controls import CONTROLS, parse_products

logger = logging.getLogger(__name__)

ATTRIBUTES = ("region", "kyc_tier")
MISSING_GROUP = "(missing)"
MIN_GROUP = 30
FOUR_FIFTHS = 0.8
ALPHA = 0.05
MIN_EFFECT = 0.05
CHURN_TARGET = 0.5
TOP_TIERS = ("platinum", "gold")
N_BOOTSTRAP = 400
N_PERMUTATIONS = 999
N_FOLDS = 5
LEVEL = 0.95
BEHAVIOUR_COLUMNS = ("segment_id", "membership", "lifecycle_stage", "value_tier",
                     "risk_score", "churn_probability", "liquidation_risk")
"""Decision inputs that describe behaviour (all of them but the attributes)."""
_CATEGORICAL = ("segment_id", "lifecycle_stage", "value_tier")


@dataclass(frozen=True)
class AuditOutcome:
    """Something an account receives, as a yes/no per account.

    Attributes
    ----------
    name : str
        Short name.
    kind : str
        ``segment``, ``control`` or ``targeting``.
    description : str
        What a yes means.
    rule : callable
        Inputs frame -> float array (1 yes, 0 no, NaN unknown).
    prediction : bool
        Whether the outcome is a model's prediction (rates through ``MetricFrame``).
    conditional : bool
        Whether the conditional test applies.
    """

    name: str
    kind: str
    description: str
    rule: Callable[[pd.DataFrame], np.ndarray]
    prediction: bool = False
    conditional: bool = True


def _known(col: pd.Series, yes: np.ndarray) -> np.ndarray:
    return np.where(col.isna().to_numpy(), np.nan, yes.astype(float))


def _restricted(name: str, how: str) -> Callable[[pd.DataFrame], np.ndarray]:
    def rule(f: pd.DataFrame) -> np.ndarray:
        col = f[name]
        if how in ("min", "max"):
            v = pd.to_numeric(col, errors="coerce").to_numpy(float)
            if np.isnan(v).all():
                return v
            ref = np.nanmax(v) if how == "min" else np.nanmin(v)
            return _known(col, v < ref if how == "min" else v > ref)
        if how == "intersect":
            size = col.map(lambda x: np.nan if x is None or x != x else len(parse_products(x)))
            s = size.to_numpy(float)
            return s if np.isnan(s).all() else _known(col, s < np.nanmax(s))
        flag = col.map(lambda x: bool(x) if x is not None and x == x else False).to_numpy()
        return _known(col, ~flag if how == "all" else flag)
    return rule


def _restrictive_side(how: str) -> str:
    return {"min": "below the most permissive value given", "max": "above the lowest value",
            "intersect": "fewer products than the widest set", "all": "withdrawn",
            "any": "raised"}[how]


CONTROL_OUTCOMES: tuple[AuditOutcome, ...] = tuple(
    AuditOutcome(f"{c.name}_restricted", "control",
                 f"{c.name} {_restrictive_side(c.combine)}", _restricted(c.name, c.combine))
    for c in CONTROLS
)
TARGETING_OUTCOMES: tuple[AuditOutcome, ...] = (
    AuditOutcome("churn_targeted", "targeting",
                 f"churn probability {CHURN_TARGET:g} or more (retention campaigns)",
                 lambda f: _known(f["churn_probability"],
                                  pd.to_numeric(f["churn_probability"]).to_numpy(float)
                                  >= CHURN_TARGET), prediction=True),
    AuditOutcome("value_targeted", "targeting",
                 f"value tier {' or '.join(TOP_TIERS)} (offers to valuable accounts)",
                 lambda f: _known(f["value_tier"],
                                  f["value_tier"].astype(str).isin(TOP_TIERS).to_numpy())),
)


def _member(sid: object) -> Callable[[pd.DataFrame], np.ndarray]:
    def rule(f: pd.DataFrame) -> np.ndarray:
        return (f["segment_id"] == sid).to_numpy(float)
    return rule


def segment_outcomes(frame: pd.DataFrame) -> tuple[AuditOutcome, ...]:
    """One membership outcome per segment present in ``frame``."""
    names = frame.groupby("segment_id")["segment_name"].first()
    return tuple(
        AuditOutcome(f"segment:{sid}", "segment", f"member of segment {sid} {name}",
                     _member(sid), conditional=False)
        for sid, name in names.items())


def audit_outcomes(frame: pd.DataFrame) -> tuple[AuditOutcome, ...]:
    """Every outcome the audit checks on ``frame`` (segments, controls, targeting)."""
    return (*segment_outcomes(frame), *CONTROL_OUTCOMES, *TARGETING_OUTCOMES)


@dataclass(frozen=True)
class FairnessAudit:
    """Result of :func:`fairness_audit`.

    Attributes
    ----------
    rates : pandas.DataFrame
        Per attribute, outcome and group: ``accounts``, ``tested``, ``rate``,
        ``ci_low``, ``ci_high`` (and ``true_positive_rate``, ``false_positive_rate`` for
        a prediction with observed labels).
    disparity : pandas.DataFrame
        Per attribute and outcome: ``kind``, ``groups`` tested, lowest and highest group
        and rate, ``difference``, ``ratio`` with ``ratio_ci_low``/``ratio_ci_high``,
        ``disparity_flag``, ``conditional_effect``, ``conditional_p``,
        ``conditional_p_holm``, ``flagged`` and ``note``.
    """

    rates: pd.DataFrame
    disparity: pd.DataFrame

    @property
    def flagged(self) -> pd.DataFrame:
        """The flagged (attribute, outcome) rows."""
        return self.disparity[self.disparity["flagged"]]


def _groups(frame: pd.DataFrame, attribute: str) -> np.ndarray:
    col = frame[attribute]
    text = col.astype("object").where(col.notna(), MISSING_GROUP)
    return np.array([str(v) for v in text], dtype=object)


def _design(frame: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in BEHAVIOUR_COLUMNS if c in frame.columns]
    X = frame[cols].copy()
    for c in _CATEGORICAL:
        if c in X.columns:
            X[c] = X[c].astype(str).astype("category").cat.codes.astype(float)
    X = X.apply(pd.to_numeric, errors="coerce").astype(float)
    # an input nobody has (no predictions yet) carries no behaviour
    return X.loc[:, X.notna().any(axis=0).to_numpy()]


def behaviour_prediction(X: pd.DataFrame, y: np.ndarray, *, random_state: int = 0
                         ) -> np.ndarray:
    """Out-of-fold probability of ``y`` from behaviour alone (constant ``y``: itself)."""
    if len(np.unique(y)) < 2:
        return y.astype(float)
    folds = min(N_FOLDS, int(min((y == 1).sum(), (y == 0).sum())))
    if folds < 2:
        return np.full(len(y), y.mean())
    cat = [i for i, c in enumerate(X.columns) if c in _CATEGORICAL]
    out = np.empty(len(y))
    split = StratifiedKFold(folds, shuffle=True, random_state=random_state)
    with threadpool_limits(1):
        for train, test in split.split(X, y):
            m = HistGradientBoostingClassifier(max_iter=60, learning_rate=0.15,
                                               categorical_features=cat or None,
                                               random_state=random_state)
            m.fit(X.iloc[train], y[train])
            out[test] = m.predict_proba(X.iloc[test])[:, 1]
    return out


def residual_statistic(residual: np.ndarray, codes: np.ndarray, n_groups: int) -> float:
    """``sum_g n_g * mean_g(residual)^2`` over group codes ``0..n_groups-1``."""
    n = np.bincount(codes, minlength=n_groups).astype(float)
    s = np.bincount(codes, weights=residual, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.nansum(np.where(n > 0, s * s / n, 0.0)))


def permutation_pvalue(residual: np.ndarray, codes: np.ndarray, strata: np.ndarray,
                       rng: np.random.Generator, n_permutations: int = N_PERMUTATIONS
                       ) -> float:
    """P-value of the residual statistic against permutations of groups within strata."""
    k = int(codes.max()) + 1
    t = residual_statistic(residual, codes, k)
    order = np.argsort(strata, kind="stable")
    bounds = np.flatnonzero(np.diff(strata[order])) + 1
    blocks = np.split(order, bounds)
    hits = 0
    perm = codes.copy()
    for _ in range(n_permutations):
        for b in blocks:
            perm[b] = codes[b][rng.permutation(len(b))]
        hits += residual_statistic(residual, perm, k) >= t - 1e-12
    return (1 + hits) / (1 + n_permutations)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN kept as NaN).

    Examples
    --------
    >>> holm(np.array([0.01, 0.04, 0.03])).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if not len(ok):
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    adj = np.maximum.accumulate([(m - i) * p[j] for i, j in enumerate(order)])
    out[order] = np.minimum(adj, 1.0)
    return out


def _metric_frame_rates(y: np.ndarray, groups: np.ndarray,
                        truth: np.ndarray | None) -> pd.DataFrame:
    from fairlearn.metrics import (
        MetricFrame,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    metrics: dict[str, Callable[..., float]] = {"rate": selection_rate}
    y_true = y
    if truth is not None:
        metrics.update(true_positive_rate=true_positive_rate,
                       false_positive_rate=false_positive_rate)
        y_true = truth
    mf = MetricFrame(metrics=metrics, y_true=y_true.astype(int), y_pred=y.astype(int),
                     sensitive_features=pd.Series(groups, name="group"))
    return mf.by_group


def fairness_audit(
    frame: pd.DataFrame,
    *,
    attributes: Sequence[str] = ATTRIBUTES,
    outcomes: Sequence[AuditOutcome] | None = None,
    churn_truth: pd.Series | None = None,
    min_group: int = MIN_GROUP,
    n_permutations: int = N_PERMUTATIONS,
    random_state: int = 0,
) -> FairnessAudit:
    """Audit segments, controls and targeting across attributes.

    Parameters
    ----------
    frame : pandas.DataFrame
        Decision inputs with controls (:func:`traderseg.growth.inputs.decision_inputs`).
    attributes : sequence of str
        Attribute columns to audit.
    outcomes : sequence of AuditOutcome, optional
        Default :func:`audit_outcomes` of the frame.
    churn_truth : pandas.Series, optional
        Account id -> observed churn (0/1) for the churn-targeting error rates.
    min_group : int
        Smallest group that enters ratios and tests.
    n_permutations : int
        Permutations of the conditional test.
    random_state : int
        Seed of the bootstrap, the folds and the permutations.

    Returns
    -------
    FairnessAudit
    """
    missing = [a for a in attributes if a not in frame.columns]
    if missing:
        raise DataError(f"fairness audit: attribute column(s) {missing} missing; present: "
                        f"{list(frame.columns)}")
    if frame.empty:
        raise DataError("fairness audit: no accounts")
    outcomes = tuple(outcomes) if outcomes is not None else audit_outcomes(frame)
    rng = np.random.default_rng(random_state)
    X = _design(frame)
    strata = frame["segment_id"].astype(str).astype("category").cat.codes.to_numpy()
    q = ((1 - LEVEL) / 2 * 100, (1 + LEVEL) / 2 * 100)
    rate_rows: list[dict[str, object]] = []
    disp_rows: list[dict[str, object]] = []
    for outcome in outcomes:
        y_all = np.asarray(outcome.rule(frame), dtype=float)
        known = ~np.isnan(y_all)
        resid = None
        for attribute in attributes:
            g_all = _groups(frame, attribute)
            y, g = y_all[known], g_all[known]
            labels, counts = np.unique(g, return_counts=True)
            tested = labels[counts >= min_group]
            truth = None
            if outcome.prediction and churn_truth is not None:
                t = frame["account_id"].astype(str).map(churn_truth).to_numpy(float)[known]
                truth = None if np.isnan(t).any() else t
            by = (_metric_frame_rates(y, g, truth) if outcome.prediction and len(y)
                  else None)
            boot: dict[str, np.ndarray] = {}
            for lab, n in zip(labels, counts, strict=True):
                rate = float(by.loc[lab, "rate"]) if by is not None else float(y[g == lab].mean())
                draws = rng.binomial(int(n), rate, N_BOOTSTRAP) / n
                boot[str(lab)] = draws
                row: dict[str, object] = {
                    "attribute": attribute, "outcome": outcome.name, "group": str(lab),
                    "accounts": int(n), "tested": bool(n >= min_group), "rate": rate,
                    "ci_low": float(np.percentile(draws, q[0])),
                    "ci_high": float(np.percentile(draws, q[1]))}
                if by is not None and truth is not None:
                    row["true_positive_rate"] = float(by.loc[lab, "true_positive_rate"])
                    row["false_positive_rate"] = float(by.loc[lab, "false_positive_rate"])
                rate_rows.append(row)
            disp_rows.append(_disparity(outcome, attribute, y, g, tested, boot, q, min_group))
            if outcome.conditional and len(tested) >= 2 and len(np.unique(y)) == 2:
                if resid is None:
                    resid = y - behaviour_prediction(X[known], y.astype(int),
                                                     random_state=random_state)
                keep = np.isin(g, tested)
                codes = pd.Categorical(g[keep], categories=tested).codes
                means = [float(resid[keep][codes == i].mean()) for i in range(len(tested))]
                p = permutation_pvalue(resid[keep], codes, strata[known][keep], rng,
                                       n_permutations)
                disp_rows[-1].update(conditional_effect=max(means) - min(means),
                                     conditional_p=p)
    disparity = pd.DataFrame(disp_rows)
    disparity["conditional_p_holm"] = holm(disparity["conditional_p"].to_numpy(float))
    disparity["flagged"] = ((disparity["conditional_p_holm"] < ALPHA)
                            & (disparity["conditional_effect"] >= MIN_EFFECT)).astype(bool)
    return FairnessAudit(pd.DataFrame(rate_rows), disparity)


def _disparity(outcome: AuditOutcome, attribute: str, y: np.ndarray, g: np.ndarray,
               tested: np.ndarray, boot: dict[str, np.ndarray],
               q: tuple[float, float], min_group: int) -> dict[str, object]:
    row: dict[str, object] = {
        "attribute": attribute, "outcome": outcome.name, "kind": outcome.kind,
        "description": outcome.description, "accounts": int(len(y)), "groups": len(tested),
        "lowest_group": None, "lowest_rate": np.nan, "highest_group": None,
        "highest_rate": np.nan, "difference": np.nan, "ratio": np.nan,
        "ratio_ci_low": np.nan, "ratio_ci_high": np.nan, "disparity_flag": False,
        "conditional_effect": np.nan, "conditional_p": np.nan, "note": ""}
    if len(y) == 0:
        row["note"] = "no account has a known value (predictions missing from the inputs?)"
        return row
    if len(tested) < 2:
        row["note"] = (f"single level: fewer than two groups of {min_group}+ accounts with "
                       "a known outcome; nothing to compare")
        return row
    rates = {str(t): float(y[g == t].mean()) for t in tested}
    lo = min(rates, key=lambda k: (rates[k], k))
    hi = max(rates, key=lambda k: (rates[k], k))
    draws = np.vstack([boot[str(t)] for t in tested])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio_b = np.where(draws.max(axis=0) > 0, draws.min(axis=0) / draws.max(axis=0), 1.0)
        ratio = rates[lo] / rates[hi] if rates[hi] > 0 else 1.0
    ci_hi = float(np.percentile(ratio_b, q[1]))
    row.update(lowest_group=lo, lowest_rate=rates[lo], highest_group=hi,
               highest_rate=rates[hi], difference=rates[hi] - rates[lo], ratio=ratio,
               ratio_ci_low=float(np.percentile(ratio_b, q[0])), ratio_ci_high=ci_hi,
               disparity_flag=bool(ci_hi < FOUR_FIFTHS))
    if len(np.unique(y)) < 2:
        row["note"] = "the outcome is the same for every account"
    return row

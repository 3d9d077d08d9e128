"""From features to decisions: segment with hysteresis, risk profile, predictions, controls.

:class:`DecisionEngine` holds the exported segment model, the policy and (optionally) the
prediction models, and turns a frame of features of some accounts at one cutoff into rows
of the ``controls`` table. The stream and the batch reference (:mod:`traderseg.online.batch`)
call the same :meth:`DecisionEngine.decide`, so they can only differ in the features they
pass, and the tests prove those equal.

Hysteresis keeps accounts from flapping between segments: an account leaves its segment
only when the model's proposal beats the current segment's membership by at least
``margin`` at every evaluation over at least ``dwell`` of data time (both inclusive: a lead
of exactly ``margin`` counts, a switch happens at the first evaluation ``dwell`` or more
after the lead began). A lead that lapses starts over. ``Hysteresis(0, 0)`` follows the
model's assignment exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from traderseg.errors import ConfigError
from traderseg.online.tables import CONTROLS_TABLE
from traderseg.segment.overlays import overlay_arrays

US_PER_DAY = 86_400_000_000
NO_SEGMENT = -2  # assignment state of an account never assigned (-1 is the outlier segment)


@dataclass(frozen=True)
class Hysteresis:
    """Margin and minimum dwell for a segment change.

    Parameters
    ----------
    margin : float
        Membership lead the proposed segment needs over the current one (>= 0).
    dwell_days : float
        Data time the lead must last before the account moves (>= 0).
    """

    margin: float = 0.10
    dwell_days: float = 1.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.margin <= 1.0):
            raise ConfigError(f"hysteresis margin must be in [0, 1], got {self.margin:g}")
        if self.dwell_days < 0:
            raise ConfigError(f"hysteresis dwell must be >= 0 days, got {self.dwell_days:g}")

    @property
    def dwell_us(self) -> int:
        """Dwell in microseconds."""
        return int(round(self.dwell_days * US_PER_DAY))


def step_assignment(h: Hysteresis, current: np.ndarray, candidate: np.ndarray,
                    since: np.ndarray, proposal: np.ndarray, lead: np.ndarray,
                    at_us: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Advance the assignment state of accounts evaluated at ``at_us``.

    Parameters
    ----------
    h : Hysteresis
        Margin and dwell.
    current, candidate, since : ndarray of int64
        Current segment id (:data:`NO_SEGMENT` if none), the segment leading (or
        :data:`NO_SEGMENT`) and when its lead began (microseconds; ignored without one).
    proposal : ndarray of int64
        The model's segment id for each account now.
    lead : ndarray of float
        Membership of the proposal minus membership of the current segment.
    at_us : int
        Data time of the evaluation.

    Returns
    -------
    tuple of ndarray
        New ``(current, candidate, since)``.
    """
    current = current.copy()
    candidate = candidate.copy()
    since = since.copy()
    fresh = current == NO_SEGMENT
    same = proposal == current
    leads = ~fresh & ~same & (lead >= h.margin)
    # a lead by a segment other than the one already leading starts the dwell over
    restart = leads & (candidate != proposal)
    candidate[restart] = proposal[restart]
    since[restart] = at_us
    move = leads & (at_us - since >= h.dwell_us)
    current[fresh] = proposal[fresh]
    current[move] = proposal[move]
    settled = fresh | same | move | (~leads)
    candidate[settled] = NO_SEGMENT
    since[settled] = 0
    return current, candidate, since


class PolicyLike(Protocol):
    """What the engine needs of a policy (see :mod:`traderseg.policy`)."""

    @property
    def version(self) -> str:
        """Return the policy's version."""
        ...

    def evaluate(self, inputs: pd.DataFrame) -> pd.DataFrame:
        """Return the controls of each input row."""
        ...


class PredictorsLike(Protocol):
    """What the engine needs of the prediction models."""

    @property
    def feature_columns(self) -> list[str]:
        """Feature columns :meth:`score` reads."""
        ...

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """Return ``churn_probability`` and ``liquidation_risk`` per account."""
        ...


@dataclass
class Decisions:
    """Decisions of one evaluation and the new assignment states."""

    rows: pd.DataFrame  # layout of the controls table (without updated_at)
    state: pd.DataFrame  # index account_id: segment, candidate, since


ASSIGNMENT_COLUMNS = ("segment", "candidate", "since")


def empty_assignments() -> pd.DataFrame:
    """Return an assignment-state frame with no account."""
    return pd.DataFrame({c: pd.Series(dtype="int64") for c in ASSIGNMENT_COLUMNS},
                        index=pd.Index([], name="account_id", dtype=object))


class DecisionEngine:
    """The exported model, the policy and the predictions, applied to features.

    Parameters
    ----------
    model_dir : str or Path
        Saved segment model (or a registry, once registries resolve to their champion).
    policy : PolicyLike
        The policy deciding controls.
    predictors : PredictorsLike, optional
        Churn and liquidation-risk models; without them the predictions are NaN and rules
        on them never match.
    hysteresis : Hysteresis
        Segment-change margin and dwell.
    accounts : pandas.DataFrame, optional
        ``kyc_tier`` and ``region`` indexed by account (the store's ``accounts`` table).
    """

    def __init__(self, model_dir: str | Path, policy: PolicyLike, *,
                 predictors: PredictorsLike | None = None,
                 hysteresis: Hysteresis | None = None,
                 accounts: pd.DataFrame | None = None) -> None:
        from traderseg.segment.persist import load_model, model_version

        self.model, self.meta = load_model(model_dir)
        self.model_version = model_version(self.meta)
        self.names = {int(s["id"]): str(s["name"]) for s in self.meta.get("segments", [])}
        self.windows = tuple(self.meta.get("windows") or ("30d", "all"))
        self.columns = [str(c) for c in self.model.feature_names_in_]
        self.policy = policy
        self.predictors = predictors
        self.hysteresis = hysteresis or Hysteresis()
        acc = accounts if accounts is not None else pd.DataFrame(
            {"kyc_tier": pd.Series(dtype="float64"), "region": pd.Series(dtype=object)})
        self.accounts = acc.reindex(columns=["kyc_tier", "region"])
        # per account, for the decisions' inputs (a dict lookup per row, no reindex)
        ids = self.accounts.index.astype(str).tolist()
        tiers = pd.to_numeric(self.accounts["kyc_tier"], errors="coerce").to_numpy(
            dtype=float, na_value=np.nan).tolist()
        # whole tiers as integers (the controls' column and the published text), else None
        self._kyc = {a: None if t != t else int(t) if t.is_integer() else t
                     for a, t in zip(ids, tiers, strict=True)}
        self._region = {a: None if pd.isna(r) else r
                        for a, r in zip(ids, self.accounts["region"].tolist(), strict=True)}
        self.seg_ids = np.asarray(self.model.segment_ids_, dtype=np.int64)
        self._col_of = {int(s): i for i, s in enumerate(self.seg_ids)}

    @property
    def feature_columns(self) -> list[str]:
        """Feature columns the decisions read: the model's, the overlays', the predictors'."""
        from traderseg.segment.overlays import overlay_columns

        cols = [*self.columns, *overlay_columns()]
        if self.predictors is not None:
            cols += list(self.predictors.feature_columns)
        return list(dict.fromkeys(cols))

    def segment_name(self, seg: int) -> str:
        """Name of a stable segment id."""
        if seg == -1:
            return "outliers"
        return self.names.get(int(seg), f"segment {seg}")

    def decide(self, features: pd.DataFrame, previous: pd.DataFrame, at: pd.Timestamp,
               fill_ids: Mapping[str, str] | None = None) -> Decisions:
        """Decide for the accounts of ``features`` at cutoff ``at``.

        Parameters
        ----------
        features : pandas.DataFrame
            Features as of ``at``, indexed by account.
        previous : pandas.DataFrame
            Assignment state (:func:`empty_assignments` layout) of accounts decided before.
        at : pandas.Timestamp
            The cutoff (data time of the decision).
        fill_ids : mapping, optional
            Account -> the last fill before ``at`` (recorded as the trigger).

        Returns
        -------
        Decisions
        """
        return self.decide_many([(at, features, dict(fill_ids or {}))], previous)

    def decide_many(self, intervals: Sequence[tuple[pd.Timestamp, pd.DataFrame,
                                                    Mapping[str, str]]],
                    previous: pd.DataFrame) -> Decisions:
        """Decide several successive cutoffs at once (as :meth:`decide` one after another).

        The model, the overlays, the predictions and the policy run once over every row;
        only the hysteresis steps through the cutoffs in order, so the result equals
        deciding each cutoff in turn.

        Parameters
        ----------
        intervals : sequence of (cutoff, features, fill_ids)
            In increasing cutoff order; an account appears at most once per cutoff.
        previous : pandas.DataFrame
            Assignment state before the first cutoff.
        """
        if not intervals:
            return Decisions(pd.DataFrame(columns=list(CONTROLS_TABLE.names)),
                             empty_assignments())
        return self.decide_stacked([at for at, _, _ in intervals],
                                   pd.concat([f for _, f, _ in intervals]),
                                   [len(f) for _, f, _ in intervals],
                                   [ids for _, _, ids in intervals], previous)

    def decide_stacked(self, cutoffs: Sequence[Any], feats: pd.DataFrame, sizes: Sequence[int],
                       fill_ids: Sequence[Mapping[str, str]],
                       previous: pd.DataFrame) -> Decisions:
        """:meth:`decide_many` with the cutoffs' features stacked in one frame.

        ``feats`` holds ``sizes[k]`` rows for ``cutoffs[k]``, in order; ``fill_ids[k]`` maps
        its accounts to their trigger fills.
        """
        if not len(feats):
            return Decisions(pd.DataFrame(columns=list(CONTROLS_TABLE.names)),
                             empty_assignments())
        ats = [_utc(at) for at in cutoffs]
        accts = np.asarray(feats.index.astype(str), dtype=object)
        at_us = np.repeat([int(a.value // 1000) for a in ats], sizes)
        X = feats[self.columns]
        labels, proba = self.model.predict_with_proba(X)
        proposal = self.model.segment_ids(labels).astype(np.int64)
        seg = np.empty(len(feats), dtype=np.int64)
        # Python ints (tolist) from the start: the state is read and written per account
        state = dict(zip(previous.index.astype(str).tolist(), map(tuple, previous[
            list(ASSIGNMENT_COLUMNS)].to_numpy(np.int64).tolist()), strict=True))
        start = 0
        for n, at in zip(sizes, ats, strict=True):
            sl = slice(start, start + n)
            rows = accts[sl]
            prev = np.array([state.get(a, (NO_SEGMENT, NO_SEGMENT, 0)) for a in rows],
                            dtype=np.int64).reshape(n, 3)
            lead = (self._membership(proba[sl], proposal[sl])
                    - self._membership(proba[sl], prev[:, 0]))
            cur, cand, since = step_assignment(self.hysteresis, prev[:, 0], prev[:, 1],
                                               prev[:, 2], proposal[sl], lead,
                                               int(at.value // 1000))
            seg[sl] = cur
            for a, c, d, t in zip(rows, cur, cand, since, strict=True):
                state[a] = (int(c), int(d), int(t))
            start += n
        # the value tier ranks the accounts decided at the same cutoff
        ov = overlay_arrays(feats, by=np.repeat(np.arange(len(sizes)), sizes))
        kyc, region = self._kyc, self._region
        base: dict[str, Any] = {
            "account_id": accts,
            "segment_id": seg,
            "segment_name": [self.segment_name(int(s)) for s in seg],
            "membership": self._membership(proba, seg),
            "lifecycle_stage": ov["lifecycle_stage"],
            "value_tier": ov["value_tier"],
            "risk_score": ov["risk_score"],
            "kyc_tier": np.array([kyc.get(a) for a in accts], dtype=object),
            "region": np.array([region.get(a) for a in accts], dtype=object),
        }
        if self.predictors is not None:
            pred = self.predictors.score(feats)
            base["churn_probability"] = pred["churn_probability"].to_numpy(float)
            base["liquidation_risk"] = pred["liquidation_risk"].to_numpy(float)
        else:
            base["churn_probability"] = np.full(len(accts), np.nan)
            base["liquidation_risk"] = np.full(len(accts), np.nan)
        controls = self.policy.evaluate(pd.DataFrame(base))
        out = dict(base)
        for c in controls.columns:
            if c not in out:
                out[c] = controls[c].to_numpy()
        out["model_version"] = np.full(len(accts), self.model_version, dtype=object)
        out["as_of"] = pd.DatetimeIndex(at_us.astype("datetime64[us]"), tz="UTC")
        tick = np.repeat(np.arange(len(sizes)), sizes).tolist()
        out["fill_id"] = [fill_ids[k].get(a) for k, a in zip(tick, accts, strict=True)]
        out["updated_at"] = pd.NaT
        touched = list(dict.fromkeys(accts))
        new_state = pd.DataFrame([state[a] for a in touched], columns=list(ASSIGNMENT_COLUMNS),
                                 index=pd.Index(touched, name="account_id"), dtype=np.int64)
        return Decisions(pd.DataFrame({c: out[c] for c in CONTROLS_TABLE.names}), new_state)

    def _membership(self, proba: np.ndarray, seg: np.ndarray) -> np.ndarray:
        cols = np.array([self._col_of.get(int(s), -1) for s in seg], dtype=np.int64)
        out = np.zeros(len(seg), dtype=float)
        ok = cols >= 0
        out[ok] = proba[np.flatnonzero(ok), cols[ok]]
        return out


def _utc(at: Any) -> pd.Timestamp:
    t = pd.Timestamp(at)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def accounts_frame(con: Any) -> pd.DataFrame:
    """``kyc_tier`` and ``region`` of the store's accounts, indexed by account."""
    df = con.execute("SELECT account_id, kyc_tier, region FROM accounts").df()
    return df.set_index("account_id")


__all__ = ["ASSIGNMENT_COLUMNS", "DecisionEngine", "Decisions", "Hysteresis", "NO_SEGMENT",
           "accounts_frame", "empty_assignments", "step_assignment"]

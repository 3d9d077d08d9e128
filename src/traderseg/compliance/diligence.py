"""Due diligence: customer risk profiling into standard and enhanced tiers, and a queue.

An account needs **enhanced** due diligence when any rule of :data:`RULES` fires, else
**standard**. The rules, each with its threshold declared once here (the descriptions
are rendered from them):

* ``high_risk``: risk score of :data:`RISK_MIN` or more (the risk profile's own
  high-risk threshold);
* ``unverified_volume``: KYC tier 0 or unknown and a traded notional over the last 30
  days of :data:`UNVERIFIED_NOTIONAL_USD` or more;
* ``rapid_cycles``: :data:`CYCLES_MIN` or more deposits in the last
  :data:`CYCLE_LOOKBACK_DAYS` days each followed within :data:`CYCLE_HOURS` hours by a
  withdrawal of at least :data:`CYCLE_SHARE` of its amount (money passing through);
* ``liquidation_prone``: :data:`LIQUIDATIONS_MIN` or more liquidations over 30 days, or a
  predicted liquidation risk of :data:`LIQUIDATION_RISK_MIN` or more;
* ``large_option_writing``: written option notional over 30 days (``notional * option
  share * (1 - long premium share)``) of :data:`WRITTEN_NOTIONAL_USD` or more.

Every bound is inclusive (``>=``). The review queue (:func:`review_queue`) lists the
enhanced accounts and those whose policy raised the review flag, most reasons first,
then by risk score, then by account id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from traderseg.analysis.migration import RISK_THRESHOLD

TIERS = ("standard", "enhanced")
RISK_MIN = float(RISK_THRESHOLD)
UNVERIFIED_NOTIONAL_USD = 250_000.0
CYCLES_MIN = 2
CYCLE_LOOKBACK_DAYS = 90
CYCLE_HOURS = 48
CYCLE_SHARE = 0.8
LIQUIDATIONS_MIN = 2
LIQUIDATION_RISK_MIN = 0.3
WRITTEN_NOTIONAL_USD = 1_000_000.0
FEATURE_COLUMNS = ("notional_total__30d", "option_share__30d", "long_premium_share__30d",
                   "liquidation_count__30d")
"""Feature columns the rules read (window 30d)."""


@dataclass(frozen=True)
class DiligenceRule:
    """One rule that puts an account in enhanced due diligence."""

    name: str
    description: str


RULES: tuple[DiligenceRule, ...] = (
    DiligenceRule("high_risk", f"risk score {RISK_MIN:g} or more"),
    DiligenceRule("unverified_volume", f"KYC tier 0 or unknown with {UNVERIFIED_NOTIONAL_USD:,.0f}"
                  " USD or more traded over 30 days"),
    DiligenceRule("rapid_cycles", f"{CYCLES_MIN} or more deposits in {CYCLE_LOOKBACK_DAYS} days "
                  f"withdrawn ({CYCLE_SHARE:.0%} or more) within {CYCLE_HOURS} hours"),
    DiligenceRule("liquidation_prone", f"{LIQUIDATIONS_MIN} or more liquidations over 30 days, "
                  f"or a predicted liquidation risk of {LIQUIDATION_RISK_MIN:g} or more"),
    DiligenceRule("large_option_writing", f"{WRITTEN_NOTIONAL_USD:,.0f} USD or more of option "
                  "notional written over 30 days"),
)

_CYCLES_SQL = f"""
SELECT d.account_id, count(DISTINCT d.transfer_id) AS cycles
FROM transfers d
JOIN transfers w ON w.account_id = d.account_id AND w.direction = 'withdrawal'
 AND w.ts > d.ts AND w.ts <= d.ts + INTERVAL {CYCLE_HOURS} HOUR
 AND w.amount_usd >= {CYCLE_SHARE} * d.amount_usd AND w.ts < $as_of
WHERE d.direction = 'deposit' AND d.ts >= $start AND d.ts < $as_of
GROUP BY d.account_id
"""


def deposit_cycles(con: duckdb.DuckDBPyConnection, as_of: pd.Timestamp) -> pd.Series:
    """Deposits withdrawn quickly, per account, in the look-back before ``as_of``."""
    start = as_of - pd.Timedelta(days=CYCLE_LOOKBACK_DAYS)
    df = con.execute(_CYCLES_SQL, {"as_of": as_of.to_pydatetime(),
                                   "start": start.to_pydatetime()}).df()
    return df.set_index(df["account_id"].astype(str))["cycles"].astype(int)


def _num(frame: pd.DataFrame, col: str) -> np.ndarray:
    if col not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(float)


def rule_flags(inputs: pd.DataFrame, features: pd.DataFrame,
               cycles: pd.Series) -> pd.DataFrame:
    """Whether each rule fires for each account (unknown values never fire).

    Parameters
    ----------
    inputs : pandas.DataFrame
        Decision inputs (``account_id``, ``risk_score``, ``kyc_tier``,
        ``liquidation_risk``).
    features : pandas.DataFrame
        Features indexed by account with :data:`FEATURE_COLUMNS`.
    cycles : pandas.Series
        Account id -> rapid deposit-withdraw cycles.

    Returns
    -------
    pandas.DataFrame
        One boolean column per rule, in the order of ``inputs``.
    """
    ids = inputs["account_id"].astype(str)
    f = features.reindex(ids.to_numpy())
    with np.errstate(invalid="ignore"):
        notional = _num(f, "notional_total__30d")
        written = notional * _num(f, "option_share__30d") * (1 - _num(f, "long_premium_share__30d"))
        kyc = _num(inputs, "kyc_tier")
        out = pd.DataFrame({
            "high_risk": _num(inputs, "risk_score") >= RISK_MIN,
            "unverified_volume": (np.isnan(kyc) | (kyc == 0))
            & (notional >= UNVERIFIED_NOTIONAL_USD),
            "rapid_cycles": ids.map(cycles).fillna(0).to_numpy(int) >= CYCLES_MIN,
            "liquidation_prone": (_num(f, "liquidation_count__30d") >= LIQUIDATIONS_MIN)
            | (_num(inputs, "liquidation_risk") >= LIQUIDATION_RISK_MIN),
            "large_option_writing": written >= WRITTEN_NOTIONAL_USD,
        })
    return out[[r.name for r in RULES]]


def diligence_tiers(inputs: pd.DataFrame, features: pd.DataFrame,
                    cycles: pd.Series) -> pd.DataFrame:
    """Tier and reasons of every account.

    Returns
    -------
    pandas.DataFrame
        ``account_id, tier, reasons`` (rule names joined by ``;``), the rule columns and
        ``rapid_cycles_count``.
    """
    flags = rule_flags(inputs, features, cycles)
    names = np.array([r.name for r in RULES])
    arr = flags.to_numpy(bool)
    out = pd.DataFrame({"account_id": inputs["account_id"].astype(str).to_numpy(),
                        "tier": np.where(arr.any(axis=1), TIERS[1], TIERS[0]),
                        "reasons": [";".join(names[row]) for row in arr]})
    out = pd.concat([out, flags.reset_index(drop=True)], axis=1)
    out["rapid_cycles_count"] = out["account_id"].map(cycles).fillna(0).astype(int)
    return out


def review_queue(tiers: pd.DataFrame, inputs: pd.DataFrame) -> pd.DataFrame:
    """Accounts to review: enhanced tier or a policy review flag, most reasons first."""
    keep = ["account_id", "segment_name", "risk_score", "kyc_tier", "region",
            *(c for c in ("review_flag", "review_reason") if c in inputs.columns)]
    q = tiers.merge(inputs[keep].astype({"account_id": str}), on="account_id", how="left")
    flag = q["review_flag"].fillna(False).astype(bool) if "review_flag" in q else False
    q = q[(q["tier"] == TIERS[1]) | flag].copy()
    q["n_reasons"] = q["reasons"].map(lambda s: len(s.split(";")) if s else 0) + np.asarray(
        flag if isinstance(flag, bool) else flag.loc[q.index], dtype=int)
    q = q.sort_values(["n_reasons", "risk_score", "account_id"], ascending=[False, False, True])
    return q.reset_index(drop=True)


def diligence_report(con: duckdb.DuckDBPyConnection, inputs: pd.DataFrame,
                     as_of: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tiers of every account and the review queue, from the store as of ``as_of``."""
    from traderseg.features.compute import compute_features

    feats = compute_features(con, as_of.to_pydatetime(), ("30d",))
    tiers = diligence_tiers(inputs, feats, deposit_cycles(con, as_of))
    return tiers, review_queue(tiers, inputs)


def rules_table() -> list[dict[str, Any]]:
    """Return the rules with their rendered descriptions (for docs and the CLI)."""
    return [{"rule": r.name, "enhanced when": r.description} for r in RULES]

"""Champion/challenger refits: train on current data, compare, promote only through gates.

:func:`refit` trains a challenger on the store as of a cutoff with the champion's method,
parameters and windows, its segments matched to the champion's stable ids and names
(:func:`traderseg.segment.identity.match_segments`). Both models then assign the same
accounts (every account with fills before the cutoff) and :func:`compare_models` measures

* ``id_retention``: share of the champion's segments the challenger matched (kept ids);
* ``agreement``: share of accounts whose stable segment id is the same under both;
* ``ari``: adjusted Rand index of the two assignments (agreement up to relabelling);
* ``silhouette_drop``: champion silhouette minus challenger silhouette, each in its own
  preprocessed space, on the same sample of accounts;
* ``membership_drop``: champion mean membership (top probability) minus the challenger's;
* ``share_shift``: the largest change of one segment's share of accounts, the champion's
  training shares against the challenger's (a segment that vanished or appeared counts
  with its whole share): the refit must describe the same population.

Each :data:`GATES` entry holds a limit; a ``min`` gate passes when the value is at least
its limit, a ``max`` gate when the value is at most its limit: **a value exactly at a limit
passes**. A missing value (NaN: a silhouette of a single segment) fails. The challenger is
promoted only when every gate passes; otherwise the champion stays. Either way the
challenger is registered (so an admin can still promote it by hand) and the decision
(metrics, gates, verdict, versions, time) is recorded in the registry and appended to the
store's ``model_decisions`` table (:data:`MODEL_DECISIONS`).

A registry without a champion is given one: the first fit is promoted as is. Running the
same refit again (same cutoff, same gates, on the champion it left) returns the recorded
decision and changes nothing.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.metrics import adjusted_rand_score, silhouette_score

from traderseg.errors import ConfigError, DataError
from traderseg.features.compute import parse_as_of
from traderseg.schema import TS, Column, Table
from traderseg.segment.estimator import TraderSegmenter
from traderseg.segment.identity import IdentityMatch, match_segments
from traderseg.segment.monitor import (
    SHARE_ALERT,
    default_as_of,
    existing_store,
    largest_share_change,
    segment_shares,
)
from traderseg.segment.persist import load_model
from traderseg.segment.registry import VERDICTS, Decision, ModelRegistry, ModelVersion
from traderseg.segment.workflow import fit_segments

logger = logging.getLogger(__name__)

SILHOUETTE_SAMPLE = 2_000
"""Accounts the silhouettes are computed on (the same sample for both models)."""


@dataclass(frozen=True)
class Gate:
    """One promotion gate.

    Attributes
    ----------
    name : str
        Gate and metric name.
    kind : {"min", "max"}
        ``min``: passes when the value is >= the limit; ``max``: when it is <= the limit.
    default : float
        Default limit.
    description : str
        What the metric measures.
    """

    name: str
    kind: Literal["min", "max"]
    default: float
    description: str
    low: float = 0.0  # the range the gated value can take: a limit outside it is refused
    high: float = 1.0

    def passes(self, value: float, limit: float) -> bool:
        """Whether ``value`` passes ``limit`` (a value at the limit passes; NaN fails).

        Examples
        --------
        >>> Gate("agreement", "min", 0.8, "").passes(0.8, 0.8)
        True
        >>> Gate("membership_drop", "max", 0.05, "").passes(0.0501, 0.05)
        False
        """
        if value is None or not math.isfinite(value):
            return False
        return value >= limit if self.kind == "min" else value <= limit


GATES: tuple[Gate, ...] = (
    Gate("id_retention", "min", 0.8,
         "share of the champion's segments the challenger keeps (identity matching)"),
    Gate("agreement", "min", 0.8,
         "share of accounts whose stable segment id is the same under both models"),
    Gate("ari", "min", 0.7, "adjusted Rand index between the two assignments", -1.0),
    Gate("silhouette_drop", "max", 0.05,
         "champion silhouette minus challenger silhouette on the same accounts", -2.0, 2.0),
    Gate("membership_drop", "max", 0.05,
         "champion mean membership minus challenger mean membership", -1.0),
    Gate("share_shift", "max", SHARE_ALERT,
         "largest change of one segment's share of accounts, champion's training shares "
         "against the challenger's (the drift monitor's share alert)"),
)
"""The promotion gates, with their default limits (one declaration; CLI and docs read it)."""

GATE_NAMES = tuple(g.name for g in GATES)

MODEL_DECISIONS = Table(
    name="model_decisions",
    key=("registry_id", "decision_id"),
    description="Append-only champion/challenger decisions of the model registries.",
    columns=(
        Column("registry_id", pa.string(), True, "Registry the decision belongs to."),
        Column("decision_id", pa.int64(), True, "Number of the decision within its registry."),
        Column("decided_at", TS, True, "Wall-clock time of the decision.", "UTC"),
        Column("as_of", TS, False, "Data cutoff of the comparison.", "UTC"),
        Column("champion", pa.string(), False, "Champion version before the decision."),
        Column("challenger", pa.string(), True, "Version decided on."),
        Column("verdict", pa.string(), True, "Outcome.", allowed=VERDICTS),
        Column("failed_gates", pa.string(), True, "Comma-separated gates that failed."),
        Column("metrics", pa.string(), True, "JSON object of the compared figures."),
        Column("gates", pa.string(), True, "JSON object: gate -> limit, value, passed."),
        Column("reason", pa.string(), True, "Why, in one sentence."),
        Column("actor", pa.string(), True, "Who decided (refit, admin, key:<id>)."),
    ),
)


def gate_limits(overrides: dict[str, float] | None = None) -> dict[str, float]:
    """Limits of every gate: the defaults of :data:`GATES` with ``overrides`` applied.

    Examples
    --------
    >>> gate_limits({"ari": 0.5})["ari"], gate_limits()["agreement"]
    (0.5, 0.8)
    """
    limits = {g.name: g.default for g in GATES}
    for name, value in (overrides or {}).items():
        if name not in limits:
            raise ConfigError(f"unknown gate {name!r}; gates: {', '.join(GATE_NAMES)}")
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise ConfigError(f"gate {name}: the limit must be a number, got {value!r}")
        gate = GATES[GATE_NAMES.index(name)]
        if not gate.low <= value <= gate.high:
            raise ConfigError(f"gate {name}: the limit must be within [{gate.low:g}, "
                              f"{gate.high:g}], the range of its value; got {value:g}")
        limits[name] = float(value)
    return limits


def evaluate_gates(metrics: dict[str, Any], limits: dict[str, float]) -> dict[str, Any]:
    """Check each gate's metric against its limit.

    Returns
    -------
    dict
        Gate name -> ``{"kind", "limit", "value", "passed"}``.

    Examples
    --------
    >>> m = {"id_retention": 1.0, "agreement": 0.8, "ari": 0.69, "silhouette_drop": 0.0,
    ...      "membership_drop": 0.05}
    >>> out = evaluate_gates(m, gate_limits())
    >>> [n for n, g in out.items() if not g["passed"]]
    ['ari']
    """
    out: dict[str, Any] = {}
    for gate in GATES:
        value = metrics.get(gate.name)
        value = float(value) if value is not None else float("nan")
        limit = limits[gate.name]
        out[gate.name] = {"kind": gate.kind, "limit": limit,
                          "value": value if math.isfinite(value) else None,
                          "passed": gate.passes(value, limit)}
    return out


def silhouette(model: TraderSegmenter, X: pd.DataFrame, rows: np.ndarray) -> float:
    """Silhouette of ``model``'s segments of ``X.iloc[rows]`` in its preprocessed space.

    Outliers (label -1) are left out; NaN when fewer than two segments remain.
    """
    Z = model.preprocessor_.transform(X.iloc[rows])
    labels = model.predict(X.iloc[rows])
    inside = labels >= 0
    n_labels = np.unique(labels[inside]).size
    if n_labels < 2 or n_labels >= int(inside.sum()):
        return float("nan")
    return float(silhouette_score(Z[inside], labels[inside]))


def compare_models(
    champion: TraderSegmenter,
    challenger: TraderSegmenter,
    features: pd.DataFrame,
    identity: IdentityMatch | None = None,
    *,
    reference_shares: dict[int, float] | None = None,
    random_state: int = 0,
) -> dict[str, Any]:
    """Compare two segmenters on the same accounts.

    Parameters
    ----------
    champion, challenger : TraderSegmenter
        Fitted models; the challenger's ``segment_ids_`` already matched to the
        champion's (see :func:`~traderseg.segment.identity.apply_identity`).
    features : pandas.DataFrame
        The accounts, with both models' columns.
    identity : IdentityMatch, optional
        The match that gave the challenger its ids (computed here when omitted).
    reference_shares : dict, optional
        Stable id -> share of accounts the challenger's shares are compared with (the
        champion's training shares); default the champion's shares of these accounts.
    random_state : int
        Seed of the silhouette sample.

    Returns
    -------
    dict
        The gate metrics (see the module docstring) and ``accounts``,
        ``champion_segments``, ``challenger_segments``, ``new_ids``, ``gone_ids``,
        ``champion_silhouette``, ``challenger_silhouette``, ``champion_membership``,
        ``challenger_membership``.
    """
    if features.empty:
        raise DataError("cannot compare models on an empty feature frame")
    Xc = features[[str(c) for c in champion.feature_names_in_]]
    Xn = features[[str(c) for c in challenger.feature_names_in_]]
    if identity is None:
        identity = match_segments(champion, challenger, Xc)
    old = champion.segment_ids(champion.predict(Xc))
    new = challenger.segment_ids(challenger.predict(Xn))
    rng = np.random.default_rng(random_state)
    n = len(features)
    rows = np.sort(rng.choice(n, SILHOUETTE_SAMPLE, replace=False)) if n > SILHOUETTE_SAMPLE \
        else np.arange(n)
    sil_old, sil_new = silhouette(champion, Xc, rows), silhouette(challenger, Xn, rows)
    mem_old = float(champion.predict_proba(Xc).max(axis=1).mean())
    mem_new = float(challenger.predict_proba(Xn).max(axis=1).mean())
    metrics: dict[str, Any] = {
        "accounts": int(n),
        "champion_segments": int(champion.n_segments_),
        "challenger_segments": int(challenger.n_segments_),
        "id_retention": len(identity.matched) / max(int(champion.n_segments_), 1),
        "new_ids": [int(i) for i in identity.new_ids],
        "gone_ids": [int(i) for i in identity.gone_ids],
        "agreement": float(np.mean(old == new)),
        "ari": float(adjusted_rand_score(old, new)),
        "champion_silhouette": sil_old,
        "challenger_silhouette": sil_new,
        "silhouette_drop": sil_old - sil_new,
        "champion_membership": mem_old,
        "challenger_membership": mem_new,
        "membership_drop": mem_old - mem_new,
        "share_shift": largest_share_change(
            reference_shares if reference_shares is not None
            else segment_shares(pd.Series(old)), segment_shares(pd.Series(new))),
    }
    # a missing figure (the silhouette of one segment) is null, not NaN, in JSON
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in metrics.items()}


@dataclass(frozen=True)
class RefitResult:
    """What :func:`refit` did.

    Attributes
    ----------
    decision : Decision
        The recorded decision (verdict, metrics, gates).
    champion : ModelVersion
        The champion after the decision.
    challenger : ModelVersion
        The version decided on.
    reused : bool
        The same refit had been decided before; nothing changed.
    """

    decision: Decision
    champion: ModelVersion
    challenger: ModelVersion
    reused: bool = False

    @property
    def failed_gates(self) -> list[str]:
        """Names of the gates that failed."""
        return [n for n, g in self.decision.gates.items() if not g["passed"]]


def refit(
    source: str | Path | duckdb.DuckDBPyConnection,
    registry: str | Path | ModelRegistry,
    *,
    as_of: str | datetime | None = None,
    gates: dict[str, float] | None = None,
    n_segments: int | str = "auto",
    method: str | None = None,
    random_state: int | None = 0,
    actor: str = "refit",
) -> RefitResult:
    """Train a challenger on current data, gate it against the champion, record the decision.

    Parameters
    ----------
    source : str, Path or duckdb connection
        The store (written: ``model_decisions``).
    registry : str, Path or ModelRegistry
        The model registry (created when missing).
    as_of : str or datetime, optional
        Cutoff of the training features; default midnight after the last fill day.
    gates : dict, optional
        Gate name -> limit, overriding the defaults of :data:`GATES`.
    n_segments, method, random_state
        Used only for the first fit of a registry without a champion; a refit takes the
        champion's parameters.
    actor : str
        Who asked (recorded with the decision).

    Returns
    -------
    RefitResult
        The decision and the versions.
    """
    reg = registry if isinstance(registry, ModelRegistry) else ModelRegistry(registry)
    limits = gate_limits(gates)
    con, owned = ((source, False) if isinstance(source, duckdb.DuckDBPyConnection)
                  else (existing_store(source, read_only=False), True))
    try:
        cutoff = parse_as_of(as_of) if as_of is not None else default_as_of(con)
        result = _refit(con, reg, cutoff, limits, n_segments=n_segments, method=method,
                        random_state=random_state, actor=actor)
        append_decision(con, reg.registry_id(), result.decision)
    finally:
        if owned:
            con.close()
    return result


def _refit(con: duckdb.DuckDBPyConnection, reg: ModelRegistry, cutoff: datetime,
           limits: dict[str, float], *, n_segments: int | str, method: str | None,
           random_state: int | None, actor: str) -> RefitResult:
    champion = reg.champion()
    stamp = cutoff.isoformat()
    data = data_fingerprint(con, cutoff)
    if champion is not None:
        done = _decided(reg, champion, stamp, data, limits)
        if done is not None:
            logger.info("refit as of %s already decided (decision %d)", stamp,
                        done.decision_id)
            return RefitResult(done, champion, reg.version(done.challenger), reused=True)
    if not reg.root.exists() and not reg.root.parent.is_dir():
        raise DataError(f"{reg.root}: folder {reg.root.parent} does not exist")
    reg.root.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=reg.root) as staging:
        out = Path(staging) / "challenger"
        if champion is None:
            fit = fit_segments(con, cutoff, out, n_segments=n_segments, method=method,
                               random_state=random_state)
            version = reg.register(fit, note="first fit")
            metrics = {"accounts": len(fit.features),
                       "challenger_segments": int(fit.model.n_segments_),
                       "challenger_membership": float(fit.assignments["membership"].mean())}
            decision = reg.promote(version.version, Decision(
                challenger=version.version, verdict="promoted", as_of=stamp, metrics=metrics,
                reason="first model of the registry: nothing to compare with", actor=actor,
                data=data))
            return RefitResult(decision, version, version)
        champ_model, champ_meta = load_model(champion.directory)
        fit = fit_segments(con, cutoff, out, windows=tuple(champ_meta["windows"]),
                           params=champ_meta.get("params") or {},
                           previous=champion.directory)
        shares = {int(x["id"]): float(x.get("size_share") or 0.0)
                  for x in champ_meta.get("segments", [])}
        metrics = compare_models(champ_model, fit.model, fit.features, fit.identity,
                                 reference_shares=shares)
        verdicts = evaluate_gates(metrics, limits)
        failed = [n for n, g in verdicts.items() if not g["passed"]]
        version = reg.register(fit, note="refit", parent=champion.version)
    decision = Decision(
        challenger=version.version, verdict="rejected" if failed else "promoted",
        champion=champion.version, as_of=stamp, metrics=metrics, gates=verdicts,
        reason=(f"failed gate(s): {', '.join(failed)}" if failed
                else "every gate passed"), actor=actor, data=data)
    if failed:
        recorded = reg.record(decision)
        logger.warning("challenger %s not promoted: %s", version.version, recorded.reason)
        return RefitResult(recorded, champion, version)
    recorded = reg.promote(version.version, decision)
    return RefitResult(recorded, version, version)


def data_fingerprint(con: duckdb.DuckDBPyConnection, cutoff: datetime) -> str:
    """Fingerprint of the fills before ``cutoff``: their count and an order-free hash of ids.

    Examples
    --------
    >>> import duckdb
    >>> from datetime import datetime, timezone
    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE fills (fill_id VARCHAR, ts TIMESTAMPTZ)")
    >>> _ = con.execute("INSERT INTO fills VALUES ('a', '2024-01-01'), ('b', '2024-01-02')")
    >>> data_fingerprint(con, datetime(2024, 1, 2, tzinfo=timezone.utc)).startswith("1:")
    True
    """
    row = con.execute("SELECT count(*), coalesce(bit_xor(hash(fill_id)), 0) FROM fills "
                      "WHERE ts < ?", [cutoff]).fetchone()
    n, h = (row if row else (0, 0))
    return f"{int(n)}:{int(h):x}"


def _decided(reg: ModelRegistry, champion: ModelVersion, stamp: str, data: str,
             limits: dict[str, float]) -> Decision | None:
    """Return the decision a re-run of this refit would repeat, if it was already made."""
    for d in reversed(reg.decisions()):
        if d.as_of != stamp or d.data != data:
            continue
        if d.promoted and d.challenger == champion.version:
            return d
        same_gates = {n: g["limit"] for n, g in d.gates.items()} == limits
        if not d.promoted and d.champion == champion.version and same_gates:
            return d
    return None


def append_decision(con: duckdb.DuckDBPyConnection, registry_id: str,
                    decision: Decision) -> int:
    """Append ``decision`` to ``model_decisions`` unless it is there; return rows added."""
    con.execute(MODEL_DECISIONS.duckdb_ddl())
    row = con.execute("SELECT count(*) FROM model_decisions WHERE registry_id = ? AND "
                      "decision_id = ?", [registry_id, decision.decision_id]).fetchone()
    if row and row[0]:
        return 0
    failed = [n for n, g in decision.gates.items() if not g["passed"]]
    as_of = pd.Timestamp(decision.as_of).to_pydatetime() if decision.as_of else None
    values = [registry_id, decision.decision_id, pd.Timestamp(decision.decided_at).to_pydatetime(),
              as_of, decision.champion, decision.challenger, decision.verdict,
              ",".join(failed), json.dumps(decision.metrics, default=_json_default),
              json.dumps(decision.gates), decision.reason, decision.actor]
    marks = ", ".join("?" for _ in MODEL_DECISIONS.names)
    con.execute(f"INSERT INTO model_decisions ({', '.join(MODEL_DECISIONS.names)}) "
                f"VALUES ({marks})", values)
    return 1


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


def read_decisions(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every recorded decision of the store, oldest first (empty when there is none)."""
    try:
        return con.execute("SELECT * FROM model_decisions ORDER BY decided_at, "
                           "decision_id").df()
    except duckdb.CatalogException:
        return pd.DataFrame(columns=MODEL_DECISIONS.names)

"""Assign accounts inside Spark: features and scoring on the executors, nothing collected.

:func:`assign_spark` runs the catalogue on Spark (:mod:`traderseg.features.spark`, the same
declarations as DuckDB), then scores the saved model where the features are: the model's
skops file is broadcast as bytes, checked against the types the library trusts and loaded
once per Python worker, and each partition goes through :func:`segment_frame` and the
row-wise overlays (lifecycle stage, risk profile) in ``mapInPandas``. The value tier ranks
accounts against each other, so it is a Spark window over all accounts with the rank bounds
of :func:`~traderseg.segment.overlays.tier_bounds`. The result is a Spark DataFrame with
the columns and values of :func:`~traderseg.segment.workflow.assign_accounts`; write it
with Spark, or collect it (:func:`assign_spark_pandas`) for small stores and tests.

Not computed on Spark: the population-shift warning of ``assign_accounts`` (it needs the
feature distribution on the driver).
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from traderseg.errors import DataError
from traderseg.features.compute import feature_columns, parse_as_of
from traderseg.features.spark import _backend, features_spark, spark_session
from traderseg.segment.overlays import RISK_WEIGHTS, lifecycle_stage, risk_profile, tier_bounds
from traderseg.segment.persist import (
    MODEL_FILE,
    load_model,
    loads_model,
    read_metadata,
    trained_as_of,
)
from traderseg.segment.registry import resolve_model
from traderseg.segment.workflow import DEFAULT_WINDOWS, segment_frame

REVENUE = "fees_usd__all"
"""The column the value tier ranks (as :func:`~traderseg.segment.overlays.value_tier`)."""
_RISK = (*RISK_WEIGHTS, "risk_score")
_SCORED = (
    "account_id string, segment int, segment_name string, membership double, "
    "runner_up int, runner_up_name string, runner_up_membership double, "
    "lifecycle_stage string, "
    + ", ".join(f"{c} double" for c in _RISK)
    + ", _revenue double"
)
_MODELS: dict[str, Any] = {}  # per Python worker: model sha256 -> loaded model


def _worker_model(blob: bytes) -> Any:
    key = hashlib.sha256(blob).hexdigest()
    model = _MODELS.get(key)
    if model is None:
        model = _MODELS[key] = loads_model(blob, "broadcast model")
    return model


def _scorer(blob: Any, names: dict[int, str], columns: list[str]) -> Any:
    """Build the ``mapInPandas`` function: a partition's feature rows to scored rows."""

    def score(parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = _worker_model(blob.value)
        for part in parts:
            if part.empty:
                continue
            feats = part.set_index("account_id")[columns].astype("float64")
            seg = segment_frame(model, feats, names)
            stage = lifecycle_stage(feats).astype(str).reset_index(drop=True)
            risk = risk_profile(feats).reset_index(drop=True)
            out = pd.concat([seg, stage, risk], axis=1)
            out["_revenue"] = feats[REVENUE].to_numpy()
            yield out

    return score


def assign_spark(source: str | Path, model_dir: str | Path,
                 as_of: str | datetime | None = None, *, session: Any = None,
                 workdir: str | Path | None = None) -> Any:
    """Assign every account with a saved model, on Spark; a lazy Spark DataFrame.

    The scored rows behind it stay cached in the session (the value tier's bounds need
    their count); :func:`assign_spark_pandas` and :func:`write_assignments_spark` release
    them after their action.

    Parameters
    ----------
    source : str or Path
        A DuckDB store, a folder with ``fills.parquet`` (and ``market.parquet``), or a
        Parquet file of fills (as :func:`~traderseg.features.spark.compute_features_spark`).
    model_dir : str or Path
        Saved model directory or registry (its champion).
    as_of : str or datetime, optional
        Cutoff of the features; defaults to the model's training cutoff.
    session : pyspark.sql.SparkSession, optional
        Default: :func:`~traderseg.features.spark.spark_session`.
    workdir : str or Path
        Where a DuckDB store is exported to Parquet for Spark; it must outlive the
        DataFrame's actions (:func:`assign_spark_pandas` and :func:`write_assignments_spark`
        manage one).

    Returns
    -------
    pyspark.sql.DataFrame
        The columns of :func:`~traderseg.segment.workflow.assign_accounts`, ``as_of`` last.
    """
    return _assigned(source, model_dir, as_of, session, workdir)[0]


def _assigned(source: str | Path, model_dir: str | Path, as_of: str | datetime | None,
              session: Any, workdir: str | Path | None) -> tuple[Any, Any]:
    """Build the assignments and return them with the cached scored rows they read."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if workdir is None:
        raise DataError("assign_spark needs a workdir that outlives the result")
    model, meta = load_model(model_dir)
    blob = (resolve_model(model_dir) / MODEL_FILE).read_bytes()
    del model  # checked on the driver; the executors load the same bytes
    cutoff = _cutoff(meta, as_of)
    windows = tuple(meta.get("windows") or DEFAULT_WINDOWS)
    names = {int(s["id"]): str(s["name"]) for s in meta.get("segments", [])}
    session = session or spark_session()
    backend = _backend(source, session, Path(workdir))
    expr = features_spark(backend, cutoff, windows)
    columns = feature_columns(windows)
    feats = backend.raw_sql(backend.compile(expr)).select(
        F.col("account_id").cast("string").alias("account_id"),
        *(F.col(c).cast("double").alias(c) for c in columns))
    # cached: counted here for the tier bounds, then read again by the caller's action
    scored = feats.mapInPandas(_scorer(session.sparkContext.broadcast(blob), names, columns),
                               schema=_SCORED).cache()
    # the value tier: rank by revenue from the top, ties by account id, as value_tier
    n = scored.count()
    if n == 0:
        scored.unpersist()
        raise DataError(f"no fills before {cutoff.isoformat()}")
    rank = F.row_number().over(Window.orderBy(F.desc("_revenue"), F.asc("account_id"))) - 1
    tier = F.lit("bronze")
    for name, lower, upper in reversed(tier_bounds(n)):
        tier = F.when((F.col("_rank") >= int(lower)) & (F.col("_rank") < int(upper)),
                      F.lit(name)).otherwise(tier)
    tier = F.when(F.col("_revenue") <= 0, F.lit("bronze")).otherwise(tier)
    head = ["account_id", "segment", "segment_name", "membership", "runner_up",
            "runner_up_name", "runner_up_membership", "lifecycle_stage"]
    out = (scored.withColumn("_rank", rank)
           .select(*head, tier.alias("value_tier"), *_RISK,
                   F.lit(pd.Timestamp(cutoff).to_pydatetime()).alias("as_of")))
    return out, scored


def _cutoff(meta: dict[str, Any], as_of: str | datetime | None) -> datetime:
    return parse_as_of(as_of if as_of is not None else trained_as_of(meta))


@contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="traderseg-spark-") as tmp:
        yield Path(tmp)


def assign_spark_pandas(source: str | Path, model_dir: str | Path,
                        as_of: str | datetime | None = None, *,
                        session: Any = None) -> pd.DataFrame:
    """:func:`assign_spark` collected to pandas, ordered by account (small stores, tests)."""
    with _workdir() as tmp, _spark_errors():
        df, scored = _assigned(source, model_dir, as_of, session, tmp)
        try:
            df = df.drop("as_of").toPandas()
        finally:
            scored.unpersist()
    # Spark hands timestamps back in its session time zone: the cutoff is set here instead
    df["as_of"] = pd.Timestamp(_cutoff(read_metadata(resolve_model(model_dir)), as_of))
    return df.sort_values("account_id", kind="stable").reset_index(drop=True)


def write_assignments_spark(source: str | Path, model_dir: str | Path, out: str | Path,
                            as_of: str | datetime | None = None, *,
                            session: Any = None) -> pd.DataFrame:
    """Assign on Spark and write Parquet from the executors; returns the segment counts.

    Only the accounts per segment come back to the driver (counted from the cached scores).
    """
    with _workdir() as tmp, _spark_errors():
        df, scored = _assigned(source, model_dir, as_of, session, tmp)
        try:
            df.write.mode("errorifexists").parquet(str(out))
            counts = (scored.groupBy("segment", "segment_name").count()
                      .withColumnRenamed("count", "accounts").orderBy("segment").toPandas())
        finally:
            scored.unpersist()
    return counts


@contextmanager
def _spark_errors() -> Iterator[None]:
    """Turn a failure inside Spark (a Python worker's traceback) into one-line DataError."""
    from pyspark.errors import PySparkException

    try:
        yield
    except PySparkException as exc:
        raise DataError(f"Spark: {spark_error_line(str(exc))}") from None


def spark_error_line(text: str) -> str:
    """Pick the line that says what went wrong from a Spark error's text.

    A worker's failure arrives as the Python traceback; its last ``SomeError: message``
    line is the cause. Otherwise the first non-empty line.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    causes = [line for line in lines if _CAUSE.match(line)]
    return causes[-1] if causes else (lines[0] if lines else "failed")


_CAUSE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception): ")

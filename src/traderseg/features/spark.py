"""The catalogue on Spark: the same Ibis expressions on the PySpark backend.

Nothing here re-declares a feature: :func:`features_spark` builds the expression of
:func:`traderseg.features.compute.features_expr` over Spark tables, so DuckDB and Spark run
one definition. Day, hour and weekday buckets come from epoch microseconds
(``unix_micros``), so they are UTC whatever ``spark.sql.session.timeZone`` says.

The results stay in Spark (:func:`features_spark` returns a lazy Ibis table;
:func:`write_features_spark` writes Parquet from the executors); :func:`compute_features_spark`
collects them to pandas for the command line and for tests.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from traderseg.errors import ConfigError, DataError
from traderseg.features.compute import feature_columns, features_expr, parse_as_of

logger = logging.getLogger(__name__)


def spark_session(master: str = "local[2]", *, time_zone: str | None = None,
                  shuffle_partitions: int = 4, python: str | None = None) -> Any:
    """Start a Spark session for the catalogue (local; the UI off, bound to loopback).

    Parameters
    ----------
    master : str
        Spark master URL.
    time_zone : str, optional
        ``spark.sql.session.timeZone``; the features do not depend on it.
    shuffle_partitions : int
        ``spark.sql.shuffle.partitions``: a handful suits a local session.
    python : str, optional
        ``spark.pyspark.python``, the interpreter of the Python workers (model scoring runs
        there). Default for a ``local`` master: this interpreter, which has traderseg.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - pyspark is an optional extra
        raise ConfigError("the Spark engine needs pyspark: pip install 'traderseg[spark]'") from exc
    builder = (
        SparkSession.builder.master(master)
        .appName("traderseg")
        .config("spark.ui.enabled", "false")
        # no stage progress bars on the terminal: a command's output, and its one-line
        # error, stay readable
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    )
    if time_zone:
        builder = builder.config("spark.sql.session.timeZone", time_zone)
    if python is None and master.startswith("local"):
        python = sys.executable
    if python:
        builder = builder.config("spark.pyspark.python", python)
    session = builder.getOrCreate()
    if python:
        # PySpark starts the workers of Python functions with the context's interpreter,
        # which it takes from PYSPARK_PYTHON or else a bare "python3" off the PATH
        session.sparkContext.pythonExec = python
    return session


def export_store(db: str | Path, folder: str | Path) -> dict[str, Path]:
    """Write the store's ``fills`` and ``market`` tables to Parquet files in ``folder``."""
    from traderseg.store import connect

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    con = connect(db, read_only=True)
    out = {}
    try:
        for table, sql in (("fills", "SELECT * EXCLUDE (source) FROM fills"),
                           ("market", "SELECT * FROM market")):
            path = folder / f"{table}.parquet"
            con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
            out[table] = path
    finally:
        con.close()
    return out


def features_spark(backend: Any, as_of: str | datetime, windows: Sequence[str] = ("30d", "all"),
                   *, fills: str = "fills", market: str | None = "market",
                   exact_quantiles: bool = False) -> ir.Table:
    """Build the catalogue as a lazy Ibis table over the Spark tables ``fills``, ``market``."""
    tables = set(backend.list_tables())
    if fills not in tables:
        raise DataError(f"the Spark session has no table {fills!r}")
    m = backend.table(market) if market and market in tables else None
    return features_expr(backend.table(fills), parse_as_of(as_of), windows, market=m,
                         exact_quantiles=exact_quantiles)


def _backend(source: str | Path, session: Any, workdir: Path) -> Any:
    """Open an Ibis PySpark backend with ``fills``/``market`` registered from ``source``."""
    backend = ibis.pyspark.connect(session)
    path = Path(source)
    if path.suffix == ".duckdb" or (path.is_file() and path.suffix not in (".parquet",)):
        files = export_store(path, workdir)
    elif path.is_dir():
        files = {t: path / f"{t}.parquet" for t in ("fills", "market")
                 if (path / f"{t}.parquet").exists()}
    else:
        files = {"fills": path}
    if "fills" not in files:
        raise DataError(f"{source}: no fills to read")
    for table, file in files.items():
        backend.read_parquet(str(file), table_name=table)
    return backend


def compute_features_spark(source: str | Path, as_of: str | datetime,
                           windows: Sequence[str] = ("30d", "all"), *, session: Any = None,
                           exact_quantiles: bool = False) -> pd.DataFrame:
    """Compute the catalogue on Spark and collect it (same frame as ``compute_features``).

    ``source`` is a DuckDB store, a folder holding ``fills.parquet`` (and
    ``market.parquet``) or a Parquet file of fills.
    """
    session = session or spark_session()
    with tempfile.TemporaryDirectory(prefix="traderseg-spark-") as tmp:
        backend = _backend(source, session, Path(tmp))
        expr = features_spark(backend, as_of, windows, exact_quantiles=exact_quantiles)
        df = expr.to_pandas()
    if df.empty:
        raise DataError(f"no fills before {parse_as_of(as_of).isoformat()}")
    return df.set_index("account_id")[feature_columns(windows)].astype("float64").sort_index()


def write_features_spark(source: str | Path, as_of: str | datetime, out: str | Path,
                         windows: Sequence[str] = ("30d", "all"), *,
                         session: Any = None) -> Path:
    """Compute the catalogue on Spark and write it as Parquet from Spark (no collect)."""
    session = session or spark_session()
    with tempfile.TemporaryDirectory(prefix="traderseg-spark-") as tmp:
        backend = _backend(source, session, Path(tmp))
        expr = features_spark(backend, as_of, windows)
        backend.to_parquet(expr, str(out))
    return Path(out)

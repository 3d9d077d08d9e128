"""The predictor bundle the policy's rules read: churn probability and liquidation risk.

:func:`train_predictors` trains both classifiers on what is known at a time ``T`` (the
``--as-of``): labelled rows at earlier cutoffs whose label periods end by ``T``
(churn: cutoffs ``T - 30d``, ``T - 45d``, ``T - 60d``; liquidation: ``T - 7d``, ``T - 14d``,
... ``T - 28d``; cutoffs before the data are left out and said so in the log), on the
features of :func:`traderseg.features.compute.compute_features`. The bundle is a folder:

* ``churn.skops`` and ``liquidation.skops``: the fitted classifiers (skops, never pickle);
* ``predictors.json``: feature windows and columns, training cutoffs, horizons, rows and
  base rates, the catalogue and library versions, each file's SHA-256 and the bundle's
  version (derived from the hashes).

:func:`load_predictors` checks the hashes, the catalogue version and the types in the
files, and returns a :class:`Predictors` whose :meth:`~Predictors.score` turns features of
any accounts (batch or online) into ``churn_probability`` and ``liquidation_risk``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio

from traderseg import __version__
from traderseg.analysis.churn.dataset import churn_dataset
from traderseg.analysis.churn.model import ChurnClassifier
from traderseg.analysis.liquidation.dataset import liquidation_dataset
from traderseg.errors import DataError, ModelVersionError
from traderseg.features.catalog import CATALOG_VERSION
from traderseg.store import as_utc, store_connection

logger = logging.getLogger(__name__)

PREDICTIONS: tuple[str, ...] = ("churn_probability", "liquidation_risk")
"""Output columns of :meth:`Predictors.score`, one per classifier, in this order."""
FILES = {"churn_probability": "churn.skops", "liquidation_risk": "liquidation.skops"}
METADATA_FILE = "predictors.json"
WINDOWS: tuple[str, ...] = ("7d", "30d", "90d")
CHURN_HORIZON_DAYS = 30.0
LIQUIDATION_HORIZON_DAYS = 7.0
# Training cutoffs: this many days before the as-of time (label period ends by then).
CHURN_LAGS_DAYS: tuple[float, ...] = (30.0, 45.0, 60.0)
LIQUIDATION_LAGS_DAYS: tuple[float, ...] = (7.0, 14.0, 21.0, 28.0)
TRUSTED_TYPES: tuple[str, ...] = (
    "traderseg.analysis.churn.model.ChurnClassifier",
    # scikit-learn's private parts of a calibrated boosted-tree ensemble (plain containers
    # of fitted arrays; constructing them runs no code of the file)
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)
"""Types beyond skops' defaults a bundle file may reference; anything else is refused."""


@dataclass(frozen=True)
class Predictors:
    """Fitted churn and liquidation classifiers with their feature columns.

    Attributes
    ----------
    models : dict
        Prediction name (:data:`PREDICTIONS`) -> fitted classifier.
    feature_columns : list of str
        Columns the classifiers read, in order.
    metadata : dict
        Contents of ``predictors.json``.
    """

    models: dict[str, Any]
    feature_columns: list[str]
    metadata: dict[str, Any]

    @property
    def version(self) -> str:
        """Version of the bundle (from the hashes of its model files)."""
        return str(self.metadata["predictor_version"])

    def score(self, features: pd.DataFrame) -> pd.DataFrame:
        """Predict churn probability and liquidation risk.

        Parameters
        ----------
        features : pandas.DataFrame
            Indexed by account_id, with (at least) :attr:`feature_columns`.

        Returns
        -------
        pandas.DataFrame
            Same index and order; columns ``churn_probability`` and ``liquidation_risk``.

        Raises
        ------
        DataError
            Feature columns are missing.
        """
        missing = [c for c in self.feature_columns if c not in features.columns]
        if missing:
            raise DataError(f"the predictors need {len(missing)} feature column(s) the frame "
                            f"lacks, e.g. {', '.join(missing[:3])}")
        X = features[self.feature_columns].astype(float)
        out = pd.DataFrame(index=features.index)
        for name in PREDICTIONS:
            out[name] = (self.models[name].predict_proba(X)[:, 1] if len(X)
                         else np.empty(0, dtype=float))
        return out


def _stack(parts: Sequence[Any], label: str) -> tuple[pd.DataFrame, pd.Series]:
    X = pd.concat([p.features for p in parts], axis=0)
    y = pd.concat([p.labels[label] for p in parts], axis=0).astype(int)
    return X, y


def _parts(build: Any, cutoffs: list[pd.Timestamp], what: str) -> list[Any]:
    parts = []
    for c in cutoffs:
        try:
            parts.append(build(c))
        except DataError as exc:
            if "outside the data" not in str(exc) and "no account traded" not in str(exc):
                raise
            logger.info("%s: cutoff %s left out (%s)", what, c.isoformat(), exc)
    if not parts:
        raise DataError(f"{what}: no training cutoff inside the data (cutoffs "
                        f"{', '.join(c.date().isoformat() for c in cutoffs)})")
    return parts


def train_predictors(
    db: Any,
    as_of: Any,
    out: str | Path,
    *,
    n_threads: int | None = None,
    random_state: int | None = 0,
    churn_lags_days: Sequence[float] = CHURN_LAGS_DAYS,
    liquidation_lags_days: Sequence[float] = LIQUIDATION_LAGS_DAYS,
    max_iter: int = 300,
    windows: Sequence[str] = WINDOWS,
) -> Predictors:
    """Train the churn and liquidation classifiers on what is known at ``as_of`` and save them.

    Parameters
    ----------
    db : str, Path or duckdb connection
        The fills store.
    as_of : timestamp-like
        Data time of the training: no label period reaches past it.
    out : str or Path
        Bundle folder (created; existing bundle files are replaced).
    n_threads : int or None
        OpenMP threads of the classifiers.
    random_state : int or None
        Seed.
    churn_lags_days, liquidation_lags_days : sequence of float
        Training cutoffs, in days before ``as_of`` (at least the label horizon).
    max_iter : int
        Boosting iterations of each classifier.
    windows : sequence of str
        Feature windows (``30d`` is needed).

    Returns
    -------
    Predictors
        The fitted bundle, as :func:`load_predictors` would return it.
    """
    t = as_utc(as_of, "as_of")
    for lags, horizon, what in ((churn_lags_days, CHURN_HORIZON_DAYS, "churn"),
                                (liquidation_lags_days, LIQUIDATION_HORIZON_DAYS, "liquidation")):
        if not lags or min(lags) < horizon:
            raise DataError(f"{what}: training cutoffs must be {horizon:g} days or more before "
                            f"the as-of time, got lags {list(lags)}")
    churn_cuts = [t - pd.Timedelta(days=d) for d in sorted(churn_lags_days, reverse=True)]
    liq_cuts = [t - pd.Timedelta(days=d) for d in sorted(liquidation_lags_days, reverse=True)]
    con, owned = store_connection(db)
    try:
        churn_parts = _parts(lambda c: churn_dataset(con, c, CHURN_HORIZON_DAYS,
                                                     windows=windows), churn_cuts, "churn")
        liq_parts = _parts(lambda c: liquidation_dataset(
            con, c, LIQUIDATION_HORIZON_DAYS, windows=windows), liq_cuts, "liquidation")
    finally:
        if owned:
            con.close()
    training = {"churn_probability": (_stack(churn_parts, "churned"), churn_parts,
                                      CHURN_HORIZON_DAYS),
                "liquidation_risk": (_stack(liq_parts, "liquidated"), liq_parts,
                                     LIQUIDATION_HORIZON_DAYS)}
    models: dict[str, Any] = {}
    info: dict[str, Any] = {}
    columns: list[str] | None = None
    for name, ((X, y), parts, horizon) in training.items():
        if y.nunique() < 2:
            raise DataError(f"{name}: the training rows hold one outcome only ({int(y.sum())} "
                            f"positive of {len(y)}); pick a later --as-of")
        columns = columns or [str(c) for c in X.columns]
        # churn reads how recent trading compares with the past; a liquidation within
        # days is about the positions held now
        clf = ChurnClassifier(max_iter=max_iter, n_threads=n_threads,
                              random_state=random_state, trends=name == "churn_probability")
        try:
            models[name] = clf.fit(X[columns], y)
        except DataError as exc:
            raise DataError(f"{name}: {exc}; pick a later --as-of or a larger store") from None
        info[name] = {"cutoffs": [p.cutoff.isoformat() for p in parts],
                      "horizon_days": horizon, "rows": len(y), "base_rate": float(y.mean())}
    assert columns is not None
    meta = {"as_of": t.isoformat(), "windows": list(windows), "feature_columns": columns,
            "catalog_version": CATALOG_VERSION, "library_version": __version__,
            "training": info}
    return save_predictors(Predictors(models=models, feature_columns=columns, metadata=meta),
                           out)


def save_predictors(predictors: Predictors, out: str | Path) -> Predictors:
    """Write a bundle to ``out`` (skops files and ``predictors.json``); return it as saved."""
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for name in PREDICTIONS:
        blob = sio.dumps(predictors.models[name])
        (path / FILES[name]).write_bytes(blob)
        hashes[name] = hashlib.sha256(blob).hexdigest()
    version = hashlib.sha256("".join(hashes[n] for n in PREDICTIONS).encode()).hexdigest()[:12]
    meta = {**predictors.metadata, "sha256": hashes, "predictor_version": version}
    (path / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    logger.info("saved predictors %s to %s", version, path)
    return Predictors(models=predictors.models, feature_columns=predictors.feature_columns,
                      metadata=meta)


def load_predictors(directory: str | Path) -> Predictors:
    """Load a bundle saved by :func:`train_predictors`, checking it first.

    Parameters
    ----------
    directory : str or Path
        Bundle folder.

    Returns
    -------
    Predictors
        The bundle.

    Raises
    ------
    DataError
        Missing or damaged files, hashes that do not match.
    ModelVersionError
        Another feature catalogue, or types the library does not trust.
    """
    path = Path(directory)
    meta_path = path / METADATA_FILE
    if not meta_path.is_file():
        raise DataError(f"{meta_path} not found: not a predictor bundle")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        columns = [str(c) for c in meta["feature_columns"]]
        hashes = {n: str(meta["sha256"][n]) for n in PREDICTIONS}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{meta_path}: not a valid bundle description "
                        f"({type(exc).__name__}: {exc})") from None
    if meta.get("catalog_version") != CATALOG_VERSION:
        raise ModelVersionError(
            f"predictors in {path} were trained on feature catalogue version "
            f"{meta.get('catalog_version')!r}, the running one is {CATALOG_VERSION!r}; retrain")
    models = {}
    for name in PREDICTIONS:
        file = path / FILES[name]
        if not file.is_file():
            raise DataError(f"{file} not found")
        blob = file.read_bytes()
        if hashlib.sha256(blob).hexdigest() != hashes[name]:
            raise DataError(f"{file} does not match the hash in {METADATA_FILE}")
        try:
            unknown = [t for t in sio.get_untrusted_types(data=blob) if t not in TRUSTED_TYPES]
            if unknown:
                raise ModelVersionError(f"{file} references types this library does not "
                                        f"trust: {unknown}")
            models[name] = sio.loads(blob, trusted=list(TRUSTED_TYPES))
        except ModelVersionError:
            raise
        except Exception as exc:  # noqa: BLE001 - skops raises many kinds on a damaged file
            raise DataError(f"{file}: not a readable skops file ({type(exc).__name__})"
                            ) from None
    return Predictors(models=models, feature_columns=columns, metadata=meta)

"""Saving and loading fitted segmenters (skops, never pickle) with their metadata.

A model directory holds ``model.skops`` and ``metadata.json``: catalogue version,
library version, as-of time, windows, feature columns, method, chosen k with the
evidence table, metrics, segment names and descriptions, and the SHA-256 of the model
file. Loading checks, in order: both files exist; the file's hash matches; the
catalogue version matches the running one (:class:`~traderseg.errors.ModelVersionError`
otherwise); the file references no type outside :data:`TRUSTED_TYPES` beyond what skops
trusts by default (scikit-learn, NumPy, SciPy).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd
import skops.io as sio
from sklearn.utils.validation import check_is_fitted

from traderseg import __version__
from traderseg.errors import DataError, ModelVersionError, NotFittedError
from traderseg.features.catalog import CATALOG_VERSION
from traderseg.segment.estimator import TraderSegmenter

logger = logging.getLogger(__name__)

MODEL_FILE = "model.skops"
METADATA_FILE = "metadata.json"
TRUSTED_TYPES: tuple[str, ...] = (
    "traderseg.segment.estimator.TraderSegmenter",
    "traderseg.segment.preprocess.FeaturePreprocessor",
    "traderseg.segment.preprocess.ColumnSpec",
    # the preprocessor's SimpleImputer records the dtype it was fitted on (a plain dtype
    # object, constructed from its name; no code runs)
    "numpy.dtype",
)
"""Our own types a model file may reference; anything else unknown is refused."""


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_model(
    model: TraderSegmenter,
    directory: str | Path,
    *,
    as_of: str | None = None,
    windows: list[str] | None = None,
    metrics: dict[str, Any] | None = None,
    segments: list[dict[str, Any]] | None = None,
    reference: dict[str, Any] | None = None,
) -> Path:
    """Write a fitted segmenter and its metadata to ``directory``.

    Parameters
    ----------
    model : TraderSegmenter
        Fitted model.
    directory : str or Path
        Target folder (created if needed; existing model files are replaced).
    as_of : str, optional
        Cutoff of the training features (ISO time).
    windows : list of str, optional
        Feature windows (derived from the column names when omitted).
    metrics : dict, optional
        Quality figures to keep with the model.
    segments : list of dict, optional
        Per segment ``{"label", "id", "name", "description", ...}``.
    reference : dict, optional
        Training quantiles of each column (see :mod:`traderseg.segment.drift`).

    Returns
    -------
    Path
        The directory.
    """
    try:
        check_is_fitted(model, "labels_")
    except Exception as exc:
        raise NotFittedError("cannot save a segmenter that has not been fitted") from exc
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    blob = sio.dumps(model)
    (path / MODEL_FILE).write_bytes(blob)
    columns = [str(c) for c in getattr(model, "feature_names_in_", [])]
    if windows is None:
        windows = sorted({c.rpartition("__")[2] for c in columns if "__" in c})
    meta = {
        "catalog_version": CATALOG_VERSION,
        "library_version": __version__,
        "as_of": as_of,
        "windows": windows,
        "feature_columns": columns,
        "dropped_columns": list(model.preprocessor_.dropped_columns_),
        "method": model.method,
        "params": _json_safe(model.get_params()),
        "n_segments": int(model.n_segments_),
        "segment_ids": [int(i) for i in model.segment_ids_],
        "selection": _json_safe(model.selection_.to_dict(orient="records")),
        "metrics": _json_safe(metrics or {}),
        "segments": _json_safe(segments or []),
        "model_sha256": hashlib.sha256(blob).hexdigest(),
        "reference_quantiles": _json_safe(reference or {}),
    }
    (path / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    logger.info("saved segmenter (k=%d) to %s", model.n_segments_, path)
    return path


def model_version(meta: dict[str, Any]) -> str:
    """Return the version a saved model is known by: its registry version, else its content hash.

    Decisions (controls, audit rows) record it, and a policy may name the model version it
    was written for.
    """
    version = meta.get("model_version")
    if version:
        return str(version)
    return str(meta.get("model_sha256", "unknown"))[:12]


def read_metadata(directory: str | Path) -> dict[str, Any]:
    """Read ``metadata.json`` of a model directory.

    Parameters
    ----------
    directory : str or Path
        Model directory, or a model registry (its champion's metadata).

    Returns
    -------
    dict
        The metadata.
    """
    from traderseg.segment.registry import resolve_model

    directory = resolve_model(directory)
    meta_path = Path(directory) / METADATA_FILE
    if not Path(directory).is_dir():
        raise DataError(f"{directory}: model directory not found")
    if not meta_path.is_file():
        raise DataError(f"{meta_path} not found: not a saved traderseg model directory")
    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{meta_path} is not valid JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise DataError(f"{meta_path}: expected a JSON object, found a {type(doc).__name__}")
    _check_metadata(doc, meta_path)
    return doc


# Keys of metadata.json and the JSON types each must have (the values are used as such).
_META_TYPES: dict[str, tuple[type, ...]] = {
    "as_of": (str,), "windows": (list,), "feature_columns": (list,), "segments": (list,),
    "model_sha256": (str,), "n_segments": (int,), "segment_ids": (list,),
    "reference_quantiles": (dict,), "metrics": (dict,),
}


def _check_metadata(doc: dict[str, Any], where: Path) -> None:
    """Refuse metadata whose known keys have the wrong JSON type, naming the key."""
    for key, types in _META_TYPES.items():
        if key in doc and doc[key] is not None and not isinstance(doc[key], types):
            raise DataError(f"{where}: {key!r} must be a {types[0].__name__}, not "
                            f"{type(doc[key]).__name__}")
    if isinstance(doc.get("as_of"), str):  # null: saved without one (see trained_as_of)
        as_of = doc["as_of"]
        try:
            ok = not pd.isna(pd.Timestamp(as_of))
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise DataError(f"{where}: 'as_of' must be a date or time such as 2024-03-01, "
                            f"not {as_of!r}")
    for key in ("windows", "feature_columns"):
        if not all(isinstance(v, str) for v in doc.get(key) or []):
            raise DataError(f"{where}: {key!r} must list strings")
    for i, seg in enumerate(doc.get("segments") or []):
        if not isinstance(seg, dict) or not isinstance(seg.get("name"), str):
            raise DataError(f"{where}: segments[{i}] must be an object with a name")
        if "id" in seg and not (isinstance(seg["id"], int) and not isinstance(seg["id"], bool)):
            raise DataError(f"{where}: segments[{i}].id must be a whole number")


def trained_as_of(meta: dict[str, Any]) -> str:
    """Return the training cutoff a model records, the default cutoff of the commands using it.

    Raises
    ------
    DataError
        The model was saved without one (``save_model(as_of=None)``).
    """
    as_of = meta.get("as_of")
    if not isinstance(as_of, str):
        raise DataError("the model records no training cutoff (as_of); give the cutoff "
                        "(--as-of)")
    return as_of


def read_checked_metadata(directory: str | Path) -> dict[str, Any]:
    """Read a model's metadata after checking its model file against the hash it records.

    For commands that use the metadata alone (a policy checked against the model's
    segments) but must not accept a model the other commands would refuse to load.
    """
    from traderseg.segment.registry import resolve_model

    path = resolve_model(directory)
    meta = read_metadata(path)
    _model_bytes(path, meta)
    return meta


def _model_bytes(path: Path, meta: dict[str, Any]) -> bytes:
    """Return the bytes of ``model.skops`` under ``path`` (refused: missing, or not hashed)."""
    model_path = path / MODEL_FILE
    if not model_path.is_file():
        raise DataError(f"{model_path} not found")
    blob = model_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta.get("model_sha256"):
        raise DataError(f"{model_path} does not match the hash in {METADATA_FILE}")
    return blob


def load_model(directory: str | Path) -> tuple[TraderSegmenter, dict[str, Any]]:
    """Load a segmenter saved by :func:`save_model`, checking it first.

    Parameters
    ----------
    directory : str or Path
        Model directory, or a model registry (its champion is loaded; see
        :func:`traderseg.segment.registry.resolve_model`).

    Returns
    -------
    model : TraderSegmenter
        The fitted model (identical predictions to the saved one).
    metadata : dict
        Its metadata.
    """
    from traderseg.segment.registry import resolve_model

    path = resolve_model(directory)
    meta = read_metadata(path)
    blob = _model_bytes(path, meta)
    saved = meta.get("catalog_version")
    if saved != CATALOG_VERSION:
        raise ModelVersionError(
            f"model in {path} was trained on feature catalogue version {saved!r}, but the "
            f"running catalogue is version {CATALOG_VERSION!r}; recompute the features and "
            "refit the model"
        )
    return loads_model(blob, str(path / MODEL_FILE)), meta


def loads_model(blob: bytes, where: str) -> TraderSegmenter:
    """Load a segmenter from the bytes of a skops file, trusting only :data:`TRUSTED_TYPES`.

    ``where`` names the bytes in errors (the file, or "broadcast model" on Spark workers).
    """
    try:
        unknown = [t for t in sio.get_untrusted_types(data=blob) if t not in TRUSTED_TYPES]
    except Exception as exc:  # noqa: BLE001 - skops raises many kinds on a damaged file
        raise DataError(f"{where}: not a readable skops model file "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                        ) from None
    if unknown:
        raise ModelVersionError(
            f"model file {where} references types this library does not trust: {unknown}"
        )
    try:
        model = sio.loads(blob, trusted=list(TRUSTED_TYPES))
    except Exception as exc:  # noqa: BLE001 - as above
        raise DataError(f"{where}: the model cannot be loaded "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                        ) from None
    if not isinstance(model, TraderSegmenter):
        raise ModelVersionError(f"{where} holds a {type(model).__name__}, not a segmenter")
    return upgrade_model(model)


def upgrade_model(model: TraderSegmenter) -> TraderSegmenter:
    """Give a segmenter saved by an earlier version the parameters added since.

    ``weight_by_coverage`` came later; a model without it was trained, and predicts,
    without coverage weighting.
    """
    if not hasattr(model, "weight_by_coverage"):
        model.weight_by_coverage = False
    pre = getattr(model, "preprocessor_", None)
    if pre is not None and not hasattr(pre, "weight_by_coverage"):
        pre.weight_by_coverage = False
    return model

"""A model registry: versioned saved models, the champion, and every promotion decision.

A registry is a directory::

    ROOT/registry.json          registry id, champion, versions, decisions
    ROOT/versions/v1/           a saved model (model.skops + metadata.json)
    ROOT/versions/v2/ ...

Each version is an ordinary saved-model directory whose metadata carries
``model_version`` (``"v1"``, ``"v2"``, ...), so :func:`~traderseg.segment.persist.model_version`
returns it and every decision made with the model (controls, audit rows) names it. A model
registered twice (the same model file, by its SHA-256) keeps its first version.

Every command that takes ``--model DIR`` accepts either a plain model directory or a
registry: :func:`resolve_model` turns a registry into its champion's directory, and
:func:`~traderseg.segment.persist.load_model` calls it.

Updates are atomic: a version is copied to a temporary folder beside ``versions/`` and
renamed into place, ``registry.json`` is written to a temporary file and renamed over the
old one, and writers take an exclusive lock on ``ROOT/.lock`` so two refits cannot
interleave their read-modify-write. A missing or damaged ``registry.json``, or one naming a
version whose folder is gone, is a one-line :class:`~traderseg.errors.DataError`.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from traderseg.errors import DataError

logger = logging.getLogger(__name__)

REGISTRY_FILE = "registry.json"
VERSIONS_DIR = "versions"
LOCK_FILE = ".lock"
FORMAT = 1
"""Layout version of ``registry.json``."""

VERDICTS = ("promoted", "rejected")


@dataclass(frozen=True)
class ModelVersion:
    """One registered model.

    Attributes
    ----------
    version : str
        ``"v1"``, ``"v2"``, ... in order of registration.
    directory : Path
        Its saved-model directory inside the registry.
    registered_at : str
        Wall-clock time of registration (ISO, UTC).
    as_of : str or None
        Training cutoff of the model.
    model_sha256 : str
        Hash of the model file (a model registered again keeps its version).
    parent : str or None
        Champion when this version was registered (the model it was compared with).
    note : str
        Where it came from (``"refit"``, ``"registered"``...).
    """

    version: str
    directory: Path
    registered_at: str
    as_of: str | None
    model_sha256: str
    parent: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Decision:
    """A champion/challenger decision (or a manual promotion).

    Attributes
    ----------
    challenger : str
        Version decided on.
    verdict : {"promoted", "rejected"}
        Whether the challenger became the champion.
    champion : str or None
        Champion before the decision (``None`` for the registry's first model).
    as_of : str or None
        Data cutoff the comparison was made at.
    metrics : dict
        Figures compared (id retention, agreement, silhouettes...).
    gates : dict
        Per gate: ``{"limit", "value", "passed"}``.
    reason : str
        Why, in one sentence.
    actor : str
        Who decided: ``refit``, ``admin`` or ``key:<id>``.
    decision_id : int
        Increasing number within the registry (set when recorded).
    decided_at : str
        Wall-clock time (ISO, UTC; set when recorded).
    data : str
        Fingerprint of the data the comparison was made on (a re-run on the same data
        repeats the decision; on other data it does not).
    """

    challenger: str
    verdict: str
    champion: str | None = None
    as_of: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    gates: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    actor: str = "admin"
    decision_id: int = 0
    decided_at: str = ""
    data: str = ""

    @property
    def promoted(self) -> bool:
        """Whether the challenger was promoted."""
        return self.verdict == "promoted"

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict version (for ``registry.json``, the store and JSON output)."""
        return asdict(self)


def _now() -> str:
    return pd.Timestamp.now(tz="UTC").isoformat()


def is_registry(path: str | Path) -> bool:
    """Return whether ``path`` is a registry directory (it holds ``registry.json``)."""
    return (Path(path) / REGISTRY_FILE).is_file()


def resolve_model(path: str | Path) -> Path:
    """Return the saved-model directory ``path`` names: itself, or a registry's champion.

    Parameters
    ----------
    path : str or Path
        A saved-model directory or a registry.

    Returns
    -------
    Path
        The model directory to load.

    Raises
    ------
    DataError
        A registry that is damaged or has no champion yet.
    """
    p = Path(path)
    if not is_registry(p):
        return p
    champion = ModelRegistry(p).champion()
    if champion is None:
        raise DataError(f"{p}: the registry has no champion yet; run `traderseg refit` or "
                        "`traderseg promote` first")
    return champion.directory


class ModelRegistry:
    """Versioned models in a directory, with the champion and the decisions.

    Parameters
    ----------
    root : str or Path
        Registry directory (created by the first :meth:`register`).

    Examples
    --------
    >>> import tempfile
    >>> reg = ModelRegistry(tempfile.mkdtemp())
    >>> reg.exists(), reg.versions(), reg.champion()
    (False, [], None)
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- reading -----------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The ``registry.json`` file."""
        return self.root / REGISTRY_FILE

    def exists(self) -> bool:
        """Return whether the registry has been created."""
        return self.path.is_file()

    def registry_id(self) -> str:
        """Return the registry's unique id (kept in the store's ``model_decisions`` rows)."""
        return str(self._read()["registry_id"])

    def versions(self) -> list[ModelVersion]:
        """Return the registered versions, oldest first (none for a registry not created)."""
        doc = self._read(missing_ok=True)
        return [self._version(v) for v in doc["versions"]]

    def version(self, version: str) -> ModelVersion:
        """Return one version by name, or raise naming the known ones."""
        for v in self.versions():
            if v.version == version:
                return v
        known = ", ".join(v.version for v in self.versions()) or "none"
        raise DataError(f"{self.path}: no version {version!r} (registered: {known})")

    def champion(self) -> ModelVersion | None:
        """Return the champion, or ``None`` when nothing has been promoted yet."""
        doc = self._read(missing_ok=True)
        name = doc["champion"]
        return None if name is None else self.version(name)

    def decisions(self) -> list[Decision]:
        """Every recorded decision, oldest first."""
        doc = self._read(missing_ok=True)
        return [Decision(**d) for d in doc["decisions"]]

    # -- writing -----------------------------------------------------------------
    def register(self, model: Any, *, note: str = "registered",
                 parent: str | None = None) -> ModelVersion:
        """Copy a saved model into the registry as a new version.

        Parameters
        ----------
        model : str, Path or FitResult
            A saved-model directory (checked by loading it first), or the result of
            :func:`~traderseg.segment.workflow.fit_segments` (its ``directory``).
        note : str
            Where the model came from.
        parent : str, optional
            The champion it was compared with.

        Returns
        -------
        ModelVersion
            The new version, or the existing one holding the same model file.
        """
        from traderseg.segment.persist import METADATA_FILE, load_model

        source = Path(getattr(model, "directory", model))
        if is_registry(source):
            raise DataError(f"{source}: is a registry; register a saved-model directory")
        _, meta = load_model(source)
        sha = str(meta["model_sha256"])
        with self._lock():
            doc = self._read(missing_ok=True)
            for v in doc["versions"]:
                if v["model_sha256"] == sha:
                    logger.info("model %s already registered as %s", source, v["version"])
                    return self._version(v)
            name = f"v{len(doc['versions']) + 1}"
            versions = self.root / VERSIONS_DIR
            versions.mkdir(parents=True, exist_ok=True)
            staging = versions / f".{name}-{uuid.uuid4().hex[:8]}"
            shutil.copytree(source, staging)
            meta["model_version"] = name
            (staging / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
            target = versions / name
            if target.exists():  # left by an interrupted registration: not in registry.json
                shutil.rmtree(target)
            os.replace(staging, target)
            entry = {"version": name, "registered_at": _now(), "as_of": meta.get("as_of"),
                     "model_sha256": sha, "parent": parent, "note": note}
            doc["versions"].append(entry)
            self._write(doc)
        logger.info("registered %s as %s", source, name)
        return self._version(entry)

    def promote(self, version: str, decision: Decision | None = None) -> Decision:
        """Make ``version`` the champion and record the decision that did.

        Parameters
        ----------
        version : str
            A registered version.
        decision : Decision, optional
            The decision to record (its ``verdict`` must be ``"promoted"`` and its
            ``challenger`` the version); default a manual promotion by ``admin``.

        Returns
        -------
        Decision
            As recorded (with its id and time).
        """
        if decision is None:
            decision = Decision(challenger=version, verdict="promoted",
                                reason="manual promotion")
        if decision.challenger != version or decision.verdict != "promoted":
            raise DataError(f"a promotion of {version!r} must record a 'promoted' decision "
                            f"on it, not {decision.verdict!r} on {decision.challenger!r}")
        return self._decide(decision, promote=True)

    def record(self, decision: Decision) -> Decision:
        """Record a decision that leaves the champion unchanged (a rejected challenger)."""
        if decision.verdict != "rejected":
            raise DataError("use promote() to record a promotion")
        return self._decide(decision, promote=False)

    def _decide(self, decision: Decision, *, promote: bool) -> Decision:
        with self._lock():
            doc = self._read()
            self.version(decision.challenger)
            current = doc["champion"]
            if decision.champion is None and current is not None:
                decision = _replace(decision, champion=current)
            n = max((int(d["decision_id"]) for d in doc["decisions"]), default=0) + 1
            decision = _replace(decision, decision_id=n, decided_at=_now())
            doc["decisions"].append(decision.to_dict())
            if promote:
                doc["champion"] = decision.challenger
            self._write(doc)
        logger.info("decision %d: %s %s", decision.decision_id, decision.challenger,
                    decision.verdict)
        return decision

    # -- storage -----------------------------------------------------------------
    def _version(self, entry: dict[str, Any]) -> ModelVersion:
        return ModelVersion(directory=self.root / VERSIONS_DIR / entry["version"], **entry)

    def _read(self, *, missing_ok: bool = False) -> dict[str, Any]:
        if not self.path.is_file():
            if self.root.exists() and not self.root.is_dir():
                raise DataError(f"{self.root}: is a file, not a model registry")
            if (self.root / "metadata.json").is_file():
                raise DataError(f"{self.root}: is a saved model directory, not a registry; "
                                "add it to one with `traderseg register`")
            if missing_ok:
                return {"registry_id": None, "champion": None, "versions": [], "decisions": []}
            raise DataError(f"{self.path} not found: {self.root} is not a model registry")
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{self.path} is not valid JSON: "
                            f"{str(exc).splitlines()[0]}") from None
        _check_document(doc, self.path)
        for v in doc["versions"]:
            if not (self.root / VERSIONS_DIR / v["version"]).is_dir():
                raise DataError(f"{self.path}: version {v['version']!r} has no folder "
                                f"{VERSIONS_DIR}/{v['version']}")
        return doc

    def _write(self, doc: dict[str, Any]) -> None:
        doc = {"format": FORMAT, **doc}
        if not doc.get("registry_id"):
            doc["registry_id"] = uuid.uuid4().hex
        tmp = self.root / f".{REGISTRY_FILE}.{os.getpid()}.tmp"
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(json.dumps(doc, indent=2, sort_keys=True, default=str))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        if self.root.exists() and not self.root.is_dir():
            raise DataError(f"{self.root}: is a file, not a model registry")
        if not self.root.exists() and not self.root.parent.is_dir():
            raise DataError(f"{self.root}: folder {self.root.parent} does not exist")
        self.root.mkdir(exist_ok=True)
        with (self.root / LOCK_FILE).open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _replace(decision: Decision, **changes: Any) -> Decision:
    return Decision(**{**decision.to_dict(), **changes})


# registry.json keys and the JSON types each must have
_DOC_TYPES: dict[str, tuple[type, ...]] = {
    "registry_id": (str,), "champion": (str, type(None)), "versions": (list,),
    "decisions": (list,),
}
_VERSION_KEYS = ("version", "registered_at", "as_of", "model_sha256", "parent", "note")
_DECISION_KEYS = tuple(Decision.__dataclass_fields__)


def _check_document(doc: Any, where: Path) -> None:
    """Refuse a ``registry.json`` that is not what :meth:`ModelRegistry._write` writes."""
    if not isinstance(doc, dict):
        raise DataError(f"{where}: expected a JSON object, found a {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise DataError(f"{where}: unknown registry format {doc.get('format')!r} "
                        f"(this library reads format {FORMAT})")
    for key, types in _DOC_TYPES.items():
        if key not in doc:
            raise DataError(f"{where}: missing key {key!r}")
        if not isinstance(doc[key], types):
            raise DataError(f"{where}: {key!r} must be a {types[0].__name__}, not "
                            f"{type(doc[key]).__name__}")
    names = []
    for i, v in enumerate(doc["versions"]):
        if not isinstance(v, dict) or set(v) != set(_VERSION_KEYS):
            raise DataError(f"{where}: versions[{i}] must be an object with keys "
                            f"{', '.join(_VERSION_KEYS)}")
        if not isinstance(v["version"], str) or not v["version"] or "/" in v["version"] \
                or v["version"].startswith("."):
            raise DataError(f"{where}: versions[{i}].version must be a plain name")
        names.append(v["version"])
    if len(set(names)) != len(names):
        raise DataError(f"{where}: a version is listed twice")
    if doc["champion"] is not None and doc["champion"] not in names:
        raise DataError(f"{where}: champion {doc['champion']!r} is not a registered version")
    for i, d in enumerate(doc["decisions"]):
        if not isinstance(d, dict) or set(d) != set(_DECISION_KEYS):
            raise DataError(f"{where}: decisions[{i}] must be an object with keys "
                            f"{', '.join(_DECISION_KEYS)}")
        if d["verdict"] not in VERDICTS:
            raise DataError(f"{where}: decisions[{i}].verdict must be one of {VERDICTS}")

"""A loaded policy and its vectorised evaluation over accounts.

:meth:`Policy.evaluate` takes one row per account of decision inputs (the input columns
of the ``controls`` table) and returns, in the same order, every control, the review
reason, the winning rule of each control and the policy version.

Combining: each control starts at its default; each rule that matches an account and
sets the control offers its value; the most restrictive value wins
(:func:`~traderseg.policy.controls.most_restrictive`: lowest cap, highest multiplier,
intersection of allowed products, a permission withdrawn by any rule, a flag raised by
any rule). Among equal values the earliest wins, the default first, so ``rules`` names
``"default"`` when no rule made the control stricter than the default. For allowed
products the winner is the last rule that narrowed the set.

The review reason of an account is the reasons of every matching rule that raises the
flag, in rule order, joined by ``"; "`` (a rule without ``review_reason`` gives its
description, else its name); null when the flag is not raised.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from traderseg.errors import ConfigError, SchemaError
from traderseg.policy.controls import CONTROLS, Control
from traderseg.policy.schema import BAND_INPUTS, SET_INPUTS, PolicyDocument, Rule, parse_document
from traderseg.schema import KINDS

# The decision inputs a policy reads, in the order of the `controls` table.
INPUT_COLUMNS: tuple[str, ...] = (
    "segment_id", "segment_name", "membership", "lifecycle_stage", "value_tier",
    "risk_score", "kyc_tier", "region", "churn_probability", "liquidation_risk",
)
OUTPUT_EXTRA: tuple[str, ...] = ("review_reason", "rules", "policy_version")
DEFAULT_RULE = "default"

_KIND_BIT = {k: 1 << i for i, k in enumerate(KINDS)}


def _bits(text: str) -> int:
    return sum(_KIND_BIT[k] for k in text.split(",") if k)


def _text_of_bits(bits: int) -> str:
    return ",".join(k for k in KINDS if bits & _KIND_BIT[k])


@dataclass(frozen=True)
class Policy:
    """A validated policy.

    Attributes
    ----------
    document : PolicyDocument
        The parsed file.
    source : str
        Where it was read from (file name, or ``<text>``).
    text : str
        Its YAML text, as stored in the policy versions table.
    lines : dict
        Line of every key path, for messages that point into the file.
    """

    document: PolicyDocument
    source: str
    text: str
    lines: dict[tuple[Any, ...], int] = field(repr=False, compare=False)

    @property
    def version(self) -> str:
        """The policy's version."""
        return str(self.document.version)

    @property
    def model_version(self) -> str | None:
        """The model version the policy was written for, if it says."""
        return self.document.model_version

    @property
    def rules(self) -> list[Rule]:
        """The rules, in file order."""
        return list(self.document.rules)

    @property
    def sha256(self) -> str:
        """Hash of the text."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def defaults(self) -> dict[str, Any]:
        """Default value of every control (and ``review_reason``)."""
        defaults: Any = self.document.defaults
        return dict(defaults.model_dump())

    def line(self, *path: Any) -> int:
        """Line of a key path in the file (of its closest ancestor if absent)."""
        from traderseg.policy.schema import line_of

        return line_of(self.lines, tuple(path))

    def inputs_used(self) -> list[str]:
        """Input columns that some rule conditions on."""
        used: list[str] = []
        for rule in self.document.rules:
            for key in rule.when.model_dump(exclude_none=True):
                cols = ["segment_id", "segment_name"] if key == "segment" else [key]
                used += [c for c in cols if c not in used]
        return [c for c in INPUT_COLUMNS if c in used]

    def evaluate(self, inputs: pd.DataFrame) -> pd.DataFrame:
        """Decide every control of every account.

        Parameters
        ----------
        inputs : pandas.DataFrame
            One row per account with the input columns the rules use (see
            :data:`INPUT_COLUMNS`; ``segment`` conditions need ``segment_id`` and
            ``segment_name``). Missing values (NaN, None) match no condition.

        Returns
        -------
        pandas.DataFrame
            Same index and order: every control, ``review_reason``, ``rules`` (JSON text,
            control -> winning rule name or ``"default"``) and ``policy_version``.

        Raises
        ------
        SchemaError
            A column a rule needs is missing.

        Examples
        --------
        >>> text = '''
        ... version: "1"
        ... defaults: {max_leverage: 50, position_limit_usd: 1000000, margin_multiplier: 1,
        ...   allowed_products: [spot, perp, future, option], option_writing: true,
        ...   review_flag: false, marketing_eligible: true}
        ... rules:
        ...   - name: wild
        ...     when: {risk_score: {min: 70}}
        ...     set: {max_leverage: 10}
        ... '''
        >>> p = parse_policy(text)
        >>> out = p.evaluate(pd.DataFrame({"risk_score": [69.9, 70.0, None]}))
        >>> out["max_leverage"].tolist()
        [50.0, 10.0, 50.0]
        """
        missing = [c for c in self.inputs_used() if c not in inputs.columns]
        if missing:
            raise SchemaError(f"policy {self.version}: the inputs lack column(s) "
                              f"{', '.join(missing)} that its rules condition on")
        return self._evaluate(inputs)

    def _evaluate(self, inputs: pd.DataFrame) -> pd.DataFrame:
        n = len(inputs)
        rules = self.document.rules
        columns = _arrays(inputs, self.inputs_used())
        masks = [_match(rule, columns, n) for rule in rules]
        defaults = self.document.defaults
        out: dict[str, Any] = {}
        winners = np.empty((n, len(CONTROLS)), dtype=np.int64)
        for j, ctl in enumerate(CONTROLS):
            offered = [(i, getattr(r.set, ctl.name)) for i, r in enumerate(rules)
                       if getattr(r.set, ctl.name) is not None]
            value, winner = _combine(ctl, getattr(defaults, ctl.name), offered, masks, n)
            out[ctl.name] = value
            winners[:, j] = winner
        out["review_reason"] = self._reasons(masks, out["review_flag"], n)
        out["rules"] = self._rules_json(winners)
        out["policy_version"] = np.full(n, self.version, dtype=object)
        return pd.DataFrame(out, index=inputs.index)

    def _reasons(self, masks: list[np.ndarray], flagged: np.ndarray, n: int) -> np.ndarray:
        raising = [(i, r) for i, r in enumerate(self.document.rules)
                   if _set_of(r).review_flag]
        reasons = np.full(n, None, dtype=object)
        defaults: Any = self.document.defaults
        default_flag = bool(defaults.review_flag)
        if not raising and not default_flag:
            return reasons
        head = [defaults.review_reason or DEFAULT_RULE] if default_flag else []
        texts = [r.review_reason or r.description or r.name for _, r in raising]
        combos, inverse = _unique_rows(
            np.stack([masks[i] for i, _ in raising], axis=1) if raising
            else np.zeros((n, 0), dtype=bool))
        joined = []
        for combo in combos:
            parts = head + [t for t, on in zip(texts, combo, strict=True) if on]
            joined.append("; ".join(dict.fromkeys(parts)) if parts else None)
        reasons[:] = np.asarray(joined, dtype=object)[inverse]
        reasons[~flagged] = None
        return reasons

    def _rules_json(self, winners: np.ndarray) -> np.ndarray:
        names = [r.name for r in self.document.rules]
        if len(winners) == 0:
            return np.empty(0, dtype=object)
        combos, inverse = _unique_rows(winners)
        texts = [json.dumps({c.name: (DEFAULT_RULE if w < 0 else names[w])
                             for c, w in zip(CONTROLS, combo, strict=True)})
                 for combo in combos]
        return np.asarray(texts, dtype=object)[inverse]


def _set_of(rule: Rule) -> Any:
    """Return the controls a rule sets (a model built from CONTROLS, so typed as Any)."""
    return rule.set


def _unique_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a small-valued integer or boolean matrix and each row's index.

    Rows are packed into one integer key each (values are rule indices from -1, or
    booleans) so the distinct ones are found with a 1-d ``np.unique``.
    """
    n, k = matrix.shape
    if k == 0 or n == 0:
        return np.zeros((1 if n else 0, k), dtype=matrix.dtype), np.zeros(n, dtype=np.int64)
    shifted = matrix.astype(np.int64) + 1
    base = int(shifted.max()) + 1
    if base ** k < 2 ** 62:
        key = shifted @ (base ** np.arange(k, dtype=np.int64))
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return matrix[first], inverse.reshape(-1)
    combos, inverse = np.unique(matrix, axis=0, return_inverse=True)  # pragma: no cover
    return combos, inverse.reshape(-1)  # pragma: no cover


def _arrays(inputs: pd.DataFrame, used: list[str]) -> dict[str, np.ndarray]:
    """Return the input columns the rules read, once each, as numpy arrays.

    Bands and KYC tiers as floats (missing = NaN), the other columns as objects.
    """
    out: dict[str, np.ndarray] = {}
    numeric = {*BAND_INPUTS, "kyc_tier", "segment_id"}
    for name in used:
        col = inputs[name]
        if name in numeric:
            out[name] = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float,
                                                                     na_value=np.nan)
        else:
            out[name] = col.to_numpy(dtype=object, na_value=None)
    return out


def _isin(values: np.ndarray, wanted: list[Any]) -> np.ndarray:
    hit = np.zeros(len(values), dtype=bool)
    for v in wanted:
        hit |= values == v
    return hit


def _match(rule: Rule, columns: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Boolean mask of the rows where every condition of ``rule`` holds.

    Comparisons with a missing value (NaN, None) are false, so a condition on a missing
    input never matches.
    """
    mask = np.ones(n, dtype=bool)
    when = rule.when
    if when.segment is not None:
        ids = [float(v) for v in when.segment if isinstance(v, int)]
        names = [v for v in when.segment if isinstance(v, str)]
        seg = np.zeros(n, dtype=bool)
        if ids:
            seg |= _isin(columns["segment_id"], ids)
        if names:
            seg |= _isin(columns["segment_name"], names)
        mask &= seg
    for key in SET_INPUTS:
        values = getattr(when, key)
        if values is not None:
            wanted = [float(v) for v in values] if key == "kyc_tier" else list(values)
            mask &= _isin(columns[key], wanted)
    for key in BAND_INPUTS:
        band = getattr(when, key)
        if band is not None:
            x = columns[key]
            with np.errstate(invalid="ignore"):
                if band.min is not None:
                    mask &= x >= band.min
                if band.max is not None:
                    mask &= x < band.max
            mask &= ~np.isnan(x)
    return mask


def _combine(ctl: Control, default: Any, offered: list[tuple[int, Any]],
             masks: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Most restrictive value of one control per row, and the index of its rule (-1 default).

    Follows :func:`~traderseg.policy.controls.most_restrictive` exactly, rule by rule.
    """
    winner = np.full(n, -1, dtype=np.int64)
    how = ctl.combine
    if how in ("min", "max"):
        value = np.full(n, float(default))
        for i, v in offered:
            better = (v < value) if how == "min" else (v > value)
            take = masks[i] & better
            value[take] = v
            winner[take] = i
        return value, winner
    if how in ("all", "any"):
        restrictive = how == "any"  # the value that wins: a raised flag, a withdrawn permission
        value = np.full(n, bool(default))
        for i, v in offered:
            if bool(v) != restrictive:
                continue
            take = masks[i] & (value != restrictive)
            value[take] = restrictive
            winner[take] = i
        return value, winner
    if how == "intersect":
        acc = np.full(n, _bits(str(default)), dtype=np.int64)
        for i, v in offered:
            narrowed = acc & _bits(str(v))
            take = masks[i] & (narrowed != acc)
            acc = np.where(masks[i], narrowed, acc)
            winner[take] = i
        codes, inverse = np.unique(acc, return_inverse=True)
        texts = np.asarray([_text_of_bits(int(b)) for b in codes], dtype=object)
        return texts[inverse.reshape(-1)], winner
    raise ConfigError(f"control {ctl.name}: unknown combine rule {how!r}")  # pragma: no cover


def parse_policy(text: str, source: str = "<text>") -> Policy:
    """Parse and validate policy text (see :mod:`traderseg.policy.schema`).

    Parameters
    ----------
    text : str
        YAML text.
    source : str
        Name used in messages.

    Returns
    -------
    Policy
        The policy.
    """
    doc, lines = parse_document(text, source)
    return Policy(document=doc, source=source, text=text, lines=lines)


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    Policy
        The policy.

    Raises
    ------
    ConfigError
        The file is missing, unreadable or invalid (``FILE:LINE: key: reason``).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: policy file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the policy ({type(exc).__name__})") from None
    return parse_policy(text, str(p))

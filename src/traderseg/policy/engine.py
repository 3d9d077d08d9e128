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
        masks = [_match(rule, inputs) for rule in rules]
        defaults = self.document.defaults
        out: dict[str, Any] = {}
        winners = np.empty((n, len(CONTROLS)), dtype=np.int64)
        for j, ctl in enumerate(CONTROLS):
            offered = [(i, getattr(r.set, ctl.name)) for i, r in enumerate(rules)
                       if getattr(r.set, ctl.name) is not None]
            value, winner = _combine(ctl, getattr(defaults, ctl.name), offered, masks, n)
            out[ctl.name] = value
            winners[:, j] = winner
        frame = pd.DataFrame(out, index=inputs.index)
        frame["review_reason"] = self._reasons(masks, frame["review_flag"].to_numpy(bool), n)
        frame["rules"] = self._rules_json(winners)
        frame["policy_version"] = self.version
        return frame

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
        matrix = (np.stack([masks[i] for i, _ in raising], axis=1) if raising
                  else np.zeros((n, 0), dtype=bool))
        combos, inverse = np.unique(matrix, axis=0, return_inverse=True)
        joined = []
        for combo in combos:
            parts = head + [t for t, on in zip(texts, combo, strict=True) if on]
            joined.append("; ".join(dict.fromkeys(parts)) if parts else None)
        reasons[:] = np.asarray(joined, dtype=object)[inverse.reshape(-1)]
        reasons[~flagged] = None
        return reasons

    def _rules_json(self, winners: np.ndarray) -> np.ndarray:
        names = [r.name for r in self.document.rules]
        if len(winners) == 0:
            return np.empty(0, dtype=object)
        combos, inverse = np.unique(winners, axis=0, return_inverse=True)
        texts = [json.dumps({c.name: (DEFAULT_RULE if w < 0 else names[w])
                             for c, w in zip(CONTROLS, combo, strict=True)})
                 for combo in combos]
        return np.asarray(texts, dtype=object)[inverse.reshape(-1)]


def _set_of(rule: Rule) -> Any:
    """Return the controls a rule sets (a model built from CONTROLS, so typed as Any)."""
    return rule.set


def _column(inputs: pd.DataFrame, name: str) -> pd.Series:
    return inputs[name]


def _match(rule: Rule, inputs: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the rows where every condition of ``rule`` holds."""
    n = len(inputs)
    mask = np.ones(n, dtype=bool)
    when = rule.when
    if when.segment is not None:
        ids = [v for v in when.segment if isinstance(v, int)]
        names = [v for v in when.segment if isinstance(v, str)]
        seg = np.zeros(n, dtype=bool)
        if ids:
            seg |= pd.to_numeric(_column(inputs, "segment_id"), errors="coerce").isin(
                ids).to_numpy(bool)
        if names:
            seg |= _column(inputs, "segment_name").isin(names).to_numpy(bool)
        mask &= seg
    for key in SET_INPUTS:
        values = getattr(when, key)
        if values is not None:
            col = _column(inputs, key)
            if key == "kyc_tier":
                col = pd.to_numeric(col, errors="coerce")
            else:
                col = col.astype(object)
            mask &= col.isin(values).to_numpy(bool)
    for key in BAND_INPUTS:
        band = getattr(when, key)
        if band is not None:
            x = pd.to_numeric(_column(inputs, key), errors="coerce").to_numpy(float)
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

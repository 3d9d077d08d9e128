"""Checks of a policy against the segment model it will run with."""

from __future__ import annotations

from typing import Any

from traderseg.errors import ConfigError
from traderseg.policy.engine import Policy
from traderseg.segment.persist import model_version


def check_policy(policy: Policy, model_metadata: dict[str, Any]) -> None:
    """Refuse a policy that does not fit a saved model.

    Parameters
    ----------
    policy : Policy
        The policy.
    model_metadata : dict
        Metadata of the saved model (``load_model(dir)[1]``).

    Raises
    ------
    ConfigError
        ``FILE:LINE: ...``: the policy was written for another model version, or a rule
        names a segment id or name the model does not have.
    """
    running = model_version(model_metadata)
    if policy.model_version is not None and policy.model_version != running:
        raise ConfigError(
            f"{policy.source}:{policy.line('model_version')}: model_version: the policy was "
            f"written for model {policy.model_version!r}, but the model is {running!r}")
    segments = model_metadata.get("segments") or []
    ids = {int(s["id"]) for s in segments if "id" in s}
    names = {str(s["name"]) for s in segments}
    for i, rule in enumerate(policy.rules):
        for j, seg in enumerate(rule.when.segment or []):
            known = seg in ids if isinstance(seg, int) else seg in names
            if known:
                continue
            what = "id" if isinstance(seg, int) else "name"
            choices = (", ".join(map(str, sorted(ids))) if isinstance(seg, int)
                       else ", ".join(repr(n) for n in sorted(names)))
            raise ConfigError(
                f"{policy.source}:{policy.line('rules', i, 'when', 'segment', j)}: rule "
                f"{rule.name!r}: unknown segment {what} {seg!r}; model {running} has "
                f"{choices or 'no segments'}")

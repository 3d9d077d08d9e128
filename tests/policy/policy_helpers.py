"""Build policies from Python structures (import as ``policy_helpers``)."""

from __future__ import annotations

from typing import Any

import yaml

from traderseg.policy import parse_policy
from traderseg.policy.engine import Policy

DEFAULTS: dict[str, Any] = {
    "max_leverage": 50.0, "position_limit_usd": 1_000_000.0, "margin_multiplier": 1.0,
    "allowed_products": ["spot", "perp", "future", "option"], "option_writing": True,
    "review_flag": False, "marketing_eligible": True,
}


def policy_text(rules: list[dict[str, Any]], *, version: str = "1", defaults: dict | None = None,
                **extra: Any) -> str:
    doc = {"version": version, **extra, "defaults": defaults or DEFAULTS, "rules": rules}
    return yaml.safe_dump(doc, sort_keys=False)


def make_policy(rules: list[dict[str, Any]], **kw: Any) -> Policy:
    return parse_policy(policy_text(rules, **kw), "test.yaml")

"""Risk-control policies: from segment, risk profile and predictions to per-account controls.

:func:`load_policy` reads a versioned YAML policy (:mod:`.schema`), :meth:`Policy.evaluate`
decides every control per account (:mod:`.engine`), :func:`check_policy` checks it
against a saved model, :func:`save_policy` / :func:`current_policy` keep versions in the
store, :func:`policy_diff` backtests a change, and :mod:`.predict` holds the churn and
liquidation-risk predictors the rules condition on.
"""

from traderseg.policy.check import check_policy
from traderseg.policy.controls import CONTROL_NAMES, CONTROLS, Control, most_restrictive
from traderseg.policy.engine import INPUT_COLUMNS, Policy, load_policy, parse_policy
from traderseg.policy.store import current_policy, policy_history, save_policy

__all__ = [
    "CONTROLS",
    "CONTROL_NAMES",
    "INPUT_COLUMNS",
    "Control",
    "Policy",
    "check_policy",
    "current_policy",
    "load_policy",
    "most_restrictive",
    "parse_policy",
    "policy_history",
    "save_policy",
]

"""Risk-control policies: from segment, risk profile and predictions to per-account controls."""

from traderseg.policy.controls import CONTROL_NAMES, CONTROLS, Control, most_restrictive

__all__ = ["CONTROLS", "CONTROL_NAMES", "Control", "most_restrictive"]

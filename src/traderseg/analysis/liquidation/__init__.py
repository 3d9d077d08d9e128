"""Liquidation risk: "liquidated within the next 7 days" from as-of features, backtested.

:mod:`.dataset` builds one labelled row per account as of a cutoff, :mod:`.backtest`
trains on earlier cutoffs and tests on a later one against a leverage-only rule.
"""

from traderseg.analysis.liquidation.backtest import LiquidationBacktest, liquidation_backtest
from traderseg.analysis.liquidation.dataset import (
    LiquidationDataset,
    leverage_rule_score,
    liquidation_dataset,
)

__all__ = [
    "LiquidationBacktest",
    "LiquidationDataset",
    "leverage_rule_score",
    "liquidation_backtest",
    "liquidation_dataset",
]

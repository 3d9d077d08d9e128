"""Lifetime value: BG/NBD and Pareto/NBD activity models, Gamma-Gamma value, discounted CLV.

Data preparation (:mod:`.data`), one module per model, the discounted value
(:mod:`.value`) and its application to the venue's fee revenue (:mod:`.venue`).

The models are fitted by maximum likelihood with scipy rather than through a marketing
library: lifetimes has had no release since 2020, and PyMC-Marketing fits the same
models by Bayesian sampling on top of PyMC, a heavy dependency whose memory grows with
customers x draws. The estimates here reproduce the published CDNOW values (see
``tests/analysis/clv``) and fit on distinct (x, t_x, T) histories, which keeps a million
accounts measured in days cheap.
"""

from traderseg.analysis.clv.bgnbd import BGNBDModel
from traderseg.analysis.clv.data import rfm_summary
from traderseg.analysis.clv.gammagamma import GammaGammaModel
from traderseg.analysis.clv.paretonbd import ParetoNBDModel
from traderseg.analysis.clv.value import (
    annual_to_period_rate,
    customer_lifetime_value,
    expected_discounted_purchases,
)
from traderseg.analysis.clv.venue import VenueCLV, account_day_summary, venue_clv

__all__ = [
    "BGNBDModel",
    "GammaGammaModel",
    "ParetoNBDModel",
    "VenueCLV",
    "account_day_summary",
    "annual_to_period_rate",
    "customer_lifetime_value",
    "expected_discounted_purchases",
    "rfm_summary",
    "venue_clv",
]

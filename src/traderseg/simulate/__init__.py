"""Venue simulator: a synthetic crypto derivatives venue with known trader archetypes.

The market follows the real daily BTC and ETH history (:mod:`.market`), options are
priced with Black-Scholes on a smile (:mod:`.options`) and listed on a Deribit-style
calendar (:mod:`.calendar`), and accounts trade according to their archetype
(:mod:`.archetypes`). :func:`simulate_venue` writes the canonical tables as Parquet.
"""

from traderseg.simulate.archetypes import ARCHETYPE_NAMES, ARCHETYPES, Archetype
from traderseg.simulate.writer import DEFAULT_START, SimulationSummary, simulate_venue

__all__ = [
    "ARCHETYPES",
    "ARCHETYPE_NAMES",
    "DEFAULT_START",
    "Archetype",
    "SimulationSummary",
    "simulate_venue",
]

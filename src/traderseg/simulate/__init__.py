"""Venue simulator: a synthetic crypto derivatives venue with known trader archetypes.

The market follows the real daily BTC and ETH history (:mod:`.market`), options are
priced with Black-Scholes on a smile (:mod:`.options`) and listed on a Deribit-style
calendar (:mod:`.calendar`), and accounts trade according to their archetype
(:mod:`.archetypes`). :func:`simulate_venue` writes the canonical tables as Parquet.

How hard the venue is to read is a level (:mod:`.difficulty`): ``easy`` keeps every
account on one well separated archetype; ``realistic`` and ``hard`` blend archetypes
(:mod:`.mixing`), move accounts from one to another, thin some accounts out, shift
everybody's activity for a regime, and make churn follow precursors that fills reveal
(:mod:`.churn`). The ``truth`` table records weights, migrations, churn time and cause.
"""

from traderseg.simulate.archetypes import ARCHETYPE_NAMES, ARCHETYPES, Archetype
from traderseg.simulate.difficulty import DIFFICULTIES, Difficulty
from traderseg.simulate.writer import DEFAULT_START, SimulationSummary, simulate_venue

__all__ = [
    "ARCHETYPES",
    "ARCHETYPE_NAMES",
    "DEFAULT_START",
    "DIFFICULTIES",
    "Difficulty",
    "Archetype",
    "SimulationSummary",
    "simulate_venue",
]

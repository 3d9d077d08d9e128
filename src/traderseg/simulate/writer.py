"""Run a whole simulation and write it as Parquet conforming to the canonical schemas.

Layout of ``out``::

    fills/part-00000.parquet, part-00001.parquet, ...   one part per chunk of accounts
    accounts.parquet  market.parquet  transfers.parquet  truth.parquet

Accounts are simulated in blocks of :data:`BLOCK_ACCOUNTS`; each block has its own
generator seeded from ``(seed, block)``, so the tables do not depend on the chunk size
(``chunk_accounts`` only decides how many accounts go into one fills part). Only one
chunk of fills is in memory at a time.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from traderseg.errors import ConfigError
from traderseg.schema import ACCOUNTS, MARKET, TRANSFERS, TRUTH
from traderseg.settings import get_settings
from traderseg.simulate.calendar import ExpiryCalendar
from traderseg.simulate.crash import Crash
from traderseg.simulate.difficulty import DEFAULT_DIFFICULTY, Difficulty, get_difficulty
from traderseg.simulate.exits import ExitResolver
from traderseg.simulate.market import UNDERLYINGS, MarketPath, build_market
from traderseg.simulate.trips import event_multiplier
from traderseg.simulate.venue import VenueContext, simulate_block

logger = logging.getLogger(__name__)

BLOCK_ACCOUNTS = 250
DEFAULT_START = date(2024, 1, 1)
DEFAULT_CHUNK_ACCOUNTS = 2_000
_PARQUET = {"compression": "zstd"}


@dataclass(frozen=True)
class SimulationSummary:
    """What a simulation wrote.

    Attributes
    ----------
    out : Path
        Output folder.
    accounts, days, seed : int
        Parameters of the run.
    start : datetime.date
        First day of the window.
    fills : int
        Fill rows written.
    parts : int
        Number of fills parts.
    transfers : int
        Transfer rows written.
    synthetic_days : int
        Days of the window past the real market history.
    seconds : float
        Wall time of the run.
    archetypes : dict
        Accounts per (dominant) archetype.
    difficulty : str
        Level of the simulated venue (:mod:`traderseg.simulate.difficulty`).
    """

    out: Path
    accounts: int
    days: int
    seed: int
    start: date
    fills: int
    parts: int
    transfers: int
    synthetic_days: int
    seconds: float
    archetypes: dict[str, int] = field(default_factory=dict)
    difficulty: str = DEFAULT_DIFFICULTY

    @property
    def fills_per_second(self) -> float:
        """Throughput of the run."""
        return self.fills / self.seconds if self.seconds > 0 else float("nan")


def market_table(market: MarketPath) -> pa.Table:
    """Daily market rows (one per underlying and day) in the canonical ``market`` schema."""
    ts = pa.array(
        [market.start_us + i * 86_400_000_000 for i in range(market.days)],
        pa.timestamp("us", tz="UTC"),
    )
    cr = market.crash
    starts = [cr.start_us if cr is not None and d == cr.day else None for d in range(market.days)]
    parts = []
    for i, und in enumerate(UNDERLYINGS):
        parts.append(
            pa.table(
                {
                    "ts": ts,
                    "underlying": pa.array([und] * market.days),
                    "price": pa.array(market.close[i]),
                    "high": pa.array(market.high[i]),
                    "low": pa.array(market.low[i]),
                    "iv_index": pa.array(market.iv[i] * 100.0),
                    "event": pa.array(market.event_names(i), pa.string()),
                    "event_start": pa.array(starts, pa.timestamp("us", tz="UTC")),
                },
                schema=MARKET.arrow_schema(),
            )
        )
    return pa.concat_tables(parts)


def simulate_venue(
    out: str | Path,
    *,
    accounts: int = 3_000,
    days: int = 60,
    seed: int = 0,
    start: date | None = None,
    chunk_accounts: int = DEFAULT_CHUNK_ACCOUNTS,
    progress: Callable[[int, int], None] | None = None,
    difficulty: str | Difficulty = DEFAULT_DIFFICULTY,
    crash: Crash | None = None,
) -> SimulationSummary:
    """Simulate a venue and write its canonical tables under ``out``.

    Parameters
    ----------
    out : str or Path
        Output folder (created; an existing ``fills`` folder must be empty).
    accounts : int
        Number of accounts (>= 1).
    days : int
        Window length in days (>= 1).
    seed : int
        Seed; the same seed gives byte-identical files.
    start : datetime.date, optional
        First day; defaults to 2024-01-01, inside the real market history.
    chunk_accounts : int
        Accounts per fills part (rounded up to whole blocks of 250).
    progress : callable, optional
        Called as ``progress(accounts_done, accounts_total)`` after each part.
    difficulty : str or Difficulty
        ``easy`` (the default: pure, well separated archetypes), ``realistic`` or
        ``hard`` (blends, migrations, thin accounts, a regime change and churn with
        precursors); see :mod:`traderseg.simulate.difficulty`.
    crash : Crash, optional
        A scripted crash and its liquidation cascade (:mod:`traderseg.simulate.crash`).

    Returns
    -------
    SimulationSummary

    Examples
    --------
    >>> import tempfile
    >>> s = simulate_venue(tempfile.mkdtemp(), accounts=20, days=3, seed=1)
    >>> s.accounts, s.days
    (20, 3)
    """
    if accounts < 1:
        raise ConfigError(f"accounts must be >= 1, got {accounts}")
    if days < 1:
        raise ConfigError(f"days must be >= 1, got {days}")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    if chunk_accounts < 1:
        raise ConfigError(f"chunk_accounts must be >= 1, got {chunk_accounts}")
    level = get_difficulty(difficulty)
    began = time.perf_counter()
    start = start or DEFAULT_START
    out = Path(out)
    fills_dir = out / "fills"
    if fills_dir.exists() and any(fills_dir.iterdir()):
        raise ConfigError(f"{fills_dir} is not empty; choose a new output folder")
    fills_dir.mkdir(parents=True, exist_ok=True)
    if crash is not None:
        crash.check(start, days)  # before any file is written
    market = build_market(start, days, seed, get_settings().market_data_dir, crash)
    pq.write_table(market_table(market), out / "market.parquet", **_PARQUET)
    ctx = VenueContext(
        seed=seed,
        market=market,
        calendar=ExpiryCalendar.for_window(start, days),
        resolver=ExitResolver(market),
        mult=event_multiplier(market),
        difficulty=level,
    )
    per_part = -(-chunk_accounts // BLOCK_ACCOUNTS) * BLOCK_ACCOUNTS
    acc_t, truth_t, transfer_t = [], [], []
    n_fills = n_parts = 0
    counts: Counter[str] = Counter()
    for part_start in range(0, accounts, per_part):
        part_end = min(part_start + per_part, accounts)
        fills = []
        for first in range(part_start, part_end, BLOCK_ACCOUNTS):
            n = min(BLOCK_ACCOUNTS, part_end - first)
            res = simulate_block(ctx, first // BLOCK_ACCOUNTS, first, n)
            fills.append(res.fills)
            acc_t.append(res.accounts)
            truth_t.append(res.truth)
            transfer_t.append(res.transfers)
            counts.update(res.truth.column("archetype").to_pylist())
        table = pa.concat_tables(fills)
        pq.write_table(table, fills_dir / f"part-{n_parts:05d}.parquet", **_PARQUET)
        n_fills += table.num_rows
        n_parts += 1
        logger.info(
            "part %d: accounts %d-%d, %d fills",
            n_parts - 1,
            part_start,
            part_end - 1,
            table.num_rows,
        )
        if progress is not None:
            progress(part_end, accounts)
    transfers = pa.concat_tables(transfer_t)
    for name, tables, schema in (
        ("accounts", acc_t, ACCOUNTS),
        ("truth", truth_t, TRUTH),
        ("transfers", [transfers], TRANSFERS),
    ):
        pq.write_table(
            pa.concat_tables(tables).cast(schema.arrow_schema()),
            out / f"{name}.parquet",
            **_PARQUET,
        )
    return SimulationSummary(
        out=out,
        accounts=accounts,
        days=days,
        seed=seed,
        start=start,
        fills=n_fills,
        parts=n_parts,
        transfers=transfers.num_rows,
        synthetic_days=market.synthetic_days,
        seconds=time.perf_counter() - began,
        archetypes=dict(sorted(counts.items())),
        difficulty=level.name,
    )

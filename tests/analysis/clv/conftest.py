"""Fixtures of the lifetime-value tests: the CDNOW sample and a small fills store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from traderseg.analysis.clv import BGNBDModel, GammaGammaModel, ParetoNBDModel, rfm_summary
from traderseg.schema import FILLS
from traderseg.store import connect

CDNOW = Path(__file__).resolve().parents[2] / "data" / "cdnow"
CAL_END = "1997-09-30"
OBS_END = "1998-06-30"


@pytest.fixture(scope="session")
def cdnow_tx() -> pd.DataFrame:
    tx = pd.read_csv(CDNOW / "CDNOW_sample.txt", sep=r"\s+", header=None,
                     names=["master_id", "sample_id", "date", "cds", "dollars"],
                     dtype={"date": str})
    tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    return tx


@pytest.fixture(scope="session")
def cdnow(cdnow_tx: pd.DataFrame) -> pd.DataFrame:
    return rfm_summary(cdnow_tx, "sample_id", "date", "dollars", CAL_END, freq="W",
                       observation_end=OBS_END)


@pytest.fixture(scope="session")
def published_summary() -> pd.DataFrame:
    return pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv").set_index("ID")


@pytest.fixture(scope="session")
def bgnbd(cdnow: pd.DataFrame) -> BGNBDModel:
    return BGNBDModel().fit(cdnow)


@pytest.fixture(scope="session")
def paretonbd(cdnow: pd.DataFrame) -> ParetoNBDModel:
    return ParetoNBDModel().fit(cdnow)


@pytest.fixture(scope="session")
def gammagamma(cdnow: pd.DataFrame) -> GammaGammaModel:
    return GammaGammaModel().fit(cdnow)


def simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, T: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw (x, t_x) from the BG/NBD process, event by event, with plain numpy loops."""
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    now = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        now[idx] += rng.exponential(1 / lam[idx])
        inside = now[idx] <= T[idx]
        hit = idx[inside]
        x[hit] += 1
        t_x[hit] = now[hit]
        dies = rng.random(len(hit)) < p[hit]
        alive[idx[~inside]] = False
        alive[hit[dies]] = False
    return x, t_x


def fill_rows(account: str, day: str, fees: list[float], start: int) -> list[dict]:
    """Canonical fills of one account on one day (one per fee), spread over the day."""
    base = pd.Timestamp(day, tz="UTC")
    return [
        {"fill_id": f"{account}-{start + k}", "ts": base + pd.Timedelta(hours=1 + 3 * k),
         "account_id": account, "instrument": "BTC-PERPETUAL", "underlying": "BTC",
         "kind": "perp", "side": "buy", "qty": 1.0, "price": 50_000.0,
         "notional_usd": 50_000.0, "fee_usd": fee, "is_maker": fee < 0}
        for k, fee in enumerate(fees)
    ]


def venue_fills(seed: int = 7, n_accounts: int = 80) -> pd.DataFrame:
    """Small random venue: takers paying fees, a few makers earning rebates, 120 days."""
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    days = pd.date_range("2024-01-01", periods=120, freq="D")
    for i in range(n_accounts):
        acc = f"acc{i:03d}"
        start = int(rng.integers(0, 90))
        rate = rng.uniform(0.05, 0.6)
        life = int(rng.integers(5, 150))
        maker = i % 10 == 0
        active = [start] + [d for d in range(start + 1, min(start + life, 120))
                            if rng.random() < rate]
        for d in active:
            n_fills = int(rng.integers(1, 4))
            fees = (-rng.uniform(0.5, 2.0, n_fills) if maker
                    else rng.gamma(2.0, 5.0 + i % 7, n_fills)).round(4).tolist()
            rows.extend(fill_rows(acc, str(days[d].date()), fees, len(rows)))
    return pd.DataFrame(rows)


def write_store(path: Path, fills: pd.DataFrame):
    con = connect(path)
    frame = fills.reindex(columns=FILLS.names)
    frame["source"] = "test"
    con.register("frame", frame)
    con.execute("INSERT INTO fills SELECT * FROM frame")
    con.unregister("frame")
    return con


@pytest.fixture()
def simulate():
    """The BG/NBD event-by-event simulator."""
    return simulate_bgnbd


@pytest.fixture()
def venue_store(tmp_path: Path):
    """A store holding :func:`venue_fills`; yields (connection, fills, path)."""
    fills = venue_fills()
    con = write_store(tmp_path / "venue.duckdb", fills)
    yield con, fills, tmp_path / "venue.duckdb"
    con.close()


@pytest.fixture()
def store_writer():
    """Function writing a fills frame into a new store."""
    return write_store

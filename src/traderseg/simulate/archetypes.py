"""Trader archetypes: declared centres, and per-account parameters drawn around them.

Each :class:`Archetype` is the centre of a behaviour; every account draws its own
parameters around its archetype's centre (log-normal for rates and sizes, beta for
shares, log-uniform inside the declared ranges), so accounts of one archetype differ and
neighbouring archetypes overlap somewhat.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

KIND_ORDER: tuple[str, ...] = ("spot", "perp", "future", "option")
REGIONS: tuple[str, ...] = ("EU", "APAC", "LATAM", "NA", "MEA")
CHANNELS: tuple[str, ...] = ("organic", "referral", "paid", "institutional")
# UTC hour around which people of each region trade (bots trade round the clock).
REGION_PEAK_HOUR = np.array([19.0, 13.0, 23.0, 1.0, 17.0])


@dataclass(frozen=True)
class Archetype:
    """Centre of one trading behaviour.

    Parameters
    ----------
    name : str
        Key used in ``truth.archetype``.
    weight : float
        Share of accounts.
    kind_mix : tuple of float
        Share of opening trades per kind, in :data:`KIND_ORDER` order.
    opens_per_day : float
        Median number of positions opened on an active day.
    active_prob : float
        Chance of trading on a given day.
    size_usd : float
        Median notional of an opening trade (options: underlying notional).
    maker_share : float
        Share of fills that provide liquidity.
    leverage : tuple of float
        Range of the account's leverage on perps and futures.
    long_share : float
        Share of perp/future opens that go long.
    hold_hours : float
        Median holding time of perp, future and spot positions.
    hold_spread : float
        Log standard deviation of the holding time.
    btc_share : float
        Share of trades on BTC (the rest on ETH).
    call_share, option_buy_share : float
        Share of option opens that are calls, and that buy (pay premium).
    abs_delta : tuple of float
        Range of the |delta| the account aims for when choosing strikes.
    tenor_days : tuple of float
        Range of the tenor the account aims for.
    straddle_share : float
        Share of option opens done as a call and a put on the same strike and expiry.
    option_close_share : float
        Share of option positions closed before expiry (the rest expire).
    spot_close_share : float
        Share of spot positions sold within the holding time (the rest are kept).
    basis_pairs : bool
        Future opens are basis trades: short the future, long the same amount of spot.
    churn_hazard : float
        Daily chance of leaving, before the PnL effect.
    loss_churn : float
        Hazard multiplier per unit of running loss over capital (losers leave faster).
    capital_multiple : float
        Initial deposit as a multiple of ``size_usd`` (divided by leverage).
    bot_share : float
        Share of trades placed at uniformly random times of day.
    slippage_bps : float
        Price given up on each linear taker fill beyond the spread (late, impatient
        market orders), in basis points.
    vip_floor : int
        Lowest fee tier of the archetype (market-maker and institutional programmes).
    response : dict
        Activity multiplier on event days (crash, rally, vol_spike), halved the day after.
    kyc : tuple of float
        Probabilities of KYC tiers 0-3.
    channel : tuple of float
        Probabilities of each acquisition channel in :data:`CHANNELS` order.
    """

    name: str
    weight: float
    kind_mix: tuple[float, float, float, float]
    opens_per_day: float
    active_prob: float
    size_usd: float
    maker_share: float
    leverage: tuple[float, float]
    long_share: float
    hold_hours: float
    hold_spread: float
    btc_share: float
    call_share: float = 0.5
    option_buy_share: float = 0.5
    abs_delta: tuple[float, float] = (0.3, 0.5)
    tenor_days: tuple[float, float] = (7.0, 30.0)
    straddle_share: float = 0.0
    option_close_share: float = 0.3
    spot_close_share: float = 0.5
    basis_pairs: bool = False
    churn_hazard: float = 0.003
    loss_churn: float = 1.0
    capital_multiple: float = 3.0
    bot_share: float = 0.0
    slippage_bps: float = 0.0
    vip_floor: int = 0
    response: dict[str, float] = field(default_factory=dict)
    kyc: tuple[float, float, float, float] = (0.2, 0.5, 0.25, 0.05)
    channel: tuple[float, float, float, float] = (0.45, 0.25, 0.28, 0.02)


_A = Archetype
ARCHETYPES: tuple[Archetype, ...] = (
    _A(
        "hf_perp_maker",
        0.05,
        (0, 1, 0, 0),
        45,
        0.92,
        4_000,
        0.9,
        (1, 3),
        0.5,
        0.08,
        0.8,
        0.6,
        churn_hazard=0.0005,
        loss_churn=0.5,
        capital_multiple=40,
        bot_share=1.0,
        vip_floor=4,
        response={"crash": 1.3, "rally": 1.2, "vol_spike": 1.3},
        kyc=(0, 0.1, 0.5, 0.4),
        channel=(0.3, 0.1, 0, 0.6),
    ),
    _A(
        "retail_leveraged_perp",
        0.34,
        (0.06, 0.94, 0, 0),
        2.5,
        0.35,
        2_500,
        0.12,
        (10, 50),
        0.7,
        14,
        1.0,
        0.75,
        churn_hazard=0.008,
        loss_churn=3.0,
        capital_multiple=3,
        slippage_bps=10,
        response={"crash": 1.8, "rally": 2.0, "vol_spike": 1.3},
        kyc=(0.35, 0.5, 0.15, 0),
        channel=(0.35, 0.25, 0.4, 0),
    ),
    _A(
        "perp_scalper",
        0.10,
        (0, 1, 0, 0),
        12,
        0.7,
        25_000,
        0.35,
        (3, 10),
        0.55,
        0.6,
        0.9,
        0.7,
        churn_hazard=0.003,
        loss_churn=1.5,
        capital_multiple=4,
        bot_share=0.5,
        response={"crash": 1.6, "rally": 1.4, "vol_spike": 1.5},
    ),
    _A(
        "lottery_option_buyer",
        0.10,
        (0, 0.12, 0, 0.88),
        2,
        0.3,
        10_000,
        0.1,
        (5, 20),
        0.65,
        10,
        1.0,
        0.8,
        call_share=0.85,
        option_buy_share=0.93,
        abs_delta=(0.03, 0.12),
        tenor_days=(0.5, 5),
        option_close_share=0.2,
        churn_hazard=0.008,
        loss_churn=2.0,
        slippage_bps=5,
        capital_multiple=0.2,
        response={"crash": 0.8, "rally": 3.0, "vol_spike": 1.5},
        kyc=(0.3, 0.5, 0.2, 0),
        channel=(0.35, 0.3, 0.35, 0),
    ),
    _A(
        "option_premium_seller",
        0.06,
        (0, 0.2, 0, 0.8),
        3,
        0.5,
        80_000,
        0.6,
        (2, 4),
        0.5,
        48,
        0.6,
        0.7,
        call_share=0.45,
        option_buy_share=0.08,
        abs_delta=(0.1, 0.3),
        tenor_days=(10, 60),
        straddle_share=0.05,
        option_close_share=0.4,
        churn_hazard=0.002,
        capital_multiple=1.0,
        response={"crash": 0.7, "rally": 1.0, "vol_spike": 1.8},
        kyc=(0, 0.4, 0.45, 0.15),
    ),
    _A(
        "volatility_trader",
        0.06,
        (0, 0.05, 0, 0.95),
        2,
        0.45,
        100_000,
        0.45,
        (2, 5),
        0.5,
        24,
        0.8,
        0.75,
        call_share=0.5,
        option_buy_share=0.5,
        abs_delta=(0.4, 0.55),
        tenor_days=(2, 21),
        straddle_share=0.85,
        option_close_share=0.6,
        churn_hazard=0.002,
        capital_multiple=0.5,
        bot_share=0.3,
        response={"crash": 1.8, "rally": 1.5, "vol_spike": 3.0},
        kyc=(0, 0.3, 0.5, 0.2),
    ),
    _A(
        "hedger",
        0.07,
        (0.45, 0, 0, 0.55),
        1.2,
        0.2,
        60_000,
        0.3,
        (1, 1),
        1.0,
        2_000,
        0.8,
        0.7,
        call_share=0.05,
        option_buy_share=0.95,
        abs_delta=(0.2, 0.45),
        tenor_days=(30, 120),
        option_close_share=0.2,
        spot_close_share=0.02,
        churn_hazard=0.002,
        capital_multiple=2.0,
        response={"crash": 3.0, "rally": 0.8, "vol_spike": 1.5},
        kyc=(0, 0.3, 0.5, 0.2),
    ),
    _A(
        "whale",
        0.04,
        (0, 0.15, 0.85, 0),
        1.5,
        0.12,
        2_000_000,
        0.4,
        (1, 3),
        0.5,
        360,
        0.5,
        0.8,
        tenor_days=(30, 200),
        spot_close_share=1.0,
        basis_pairs=True,
        churn_hazard=0.001,
        capital_multiple=2.0,
        bot_share=0.2,
        vip_floor=3,
        response={"crash": 1.0, "rally": 1.0, "vol_spike": 1.0},
        kyc=(0, 0, 0.3, 0.7),
        channel=(0.2, 0.1, 0, 0.7),
    ),
    _A(
        "spot_holder",
        0.18,
        (1, 0, 0, 0),
        1,
        0.08,
        300,
        0.2,
        (1, 1),
        1.0,
        500,
        0.6,
        0.75,
        spot_close_share=0.05,
        churn_hazard=0.004,
        loss_churn=1.0,
        capital_multiple=4,
        response={"crash": 2.0, "rally": 1.3, "vol_spike": 1.0},
        kyc=(0.3, 0.55, 0.15, 0),
        channel=(0.5, 0.25, 0.25, 0),
    ),
)
ARCHETYPE_NAMES: tuple[str, ...] = tuple(a.name for a in ARCHETYPES)
EVENT_RESPONSE = np.array(
    [[1.0] + [a.response.get(e, 1.0) for e in ("crash", "rally", "vol_spike")] for a in ARCHETYPES]
)


def _column(name: str) -> np.ndarray:
    return np.array([getattr(a, name) for a in ARCHETYPES], dtype=float)


@dataclass(frozen=True)
class AccountParams:
    """Per-account behaviour parameters, one array entry per account."""

    arch: np.ndarray
    region: np.ndarray
    kyc: np.ndarray
    channel: np.ndarray
    opens_per_day: np.ndarray
    active_prob: np.ndarray
    size_usd: np.ndarray
    maker_share: np.ndarray
    leverage: np.ndarray
    long_share: np.ndarray
    hold_log_mu: np.ndarray
    hold_spread: np.ndarray
    btc_share: np.ndarray
    kind_cum: np.ndarray
    call_share: np.ndarray
    option_buy_share: np.ndarray
    abs_delta: np.ndarray
    tenor_days: np.ndarray
    straddle_share: np.ndarray
    option_close_share: np.ndarray
    spot_close_share: np.ndarray
    basis_pairs: np.ndarray
    churn_hazard: np.ndarray
    loss_churn: np.ndarray
    capital: np.ndarray
    bot_share: np.ndarray
    slippage: np.ndarray
    vip_floor: np.ndarray

    def __len__(self) -> int:
        return len(self.arch)

    def take(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Parameters gathered for fill-level rows that belong to accounts ``idx``."""
        return {f.name: getattr(self, f.name)[idx] for f in fields(self)}


def _beta(rng: np.random.Generator, mean: np.ndarray, conc: float) -> np.ndarray:
    m = np.clip(mean, 1e-3, 1 - 1e-3)
    return rng.beta(m * conc, (1 - m) * conc)


def _log_uniform(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi)))


def draw_accounts(
    rng: np.random.Generator,
    n: int,
    *,
    spread: float = 1.0,
    arch: np.ndarray | None = None,
) -> AccountParams:
    """Draw archetypes and per-account parameters for ``n`` accounts.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (one per block of accounts).
    n : int
        Number of accounts.
    spread : float
        Multiplier on the spread of every parameter around its archetype's centre
        (log standard deviations times ``spread``, beta and gamma concentrations divided
        by it); 1 is the original spread.
    arch : numpy.ndarray, optional
        Archetype index per account; drawn from the archetype weights when omitted.

    Returns
    -------
    AccountParams
    """
    w = _column("weight")
    if arch is None:
        arch = rng.choice(len(ARCHETYPES), size=n, p=w / w.sum())
    kyc_p = np.array([a.kyc for a in ARCHETYPES])[arch]
    ch_p = np.array([a.channel for a in ARCHETYPES])[arch]
    kyc = (rng.random(n)[:, None] > np.cumsum(kyc_p, axis=1)[:, :-1]).sum(axis=1)
    channel = (rng.random(n)[:, None] > np.cumsum(ch_p, axis=1)[:, :-1]).sum(axis=1)
    region = rng.choice(len(REGIONS), size=n, p=[0.32, 0.33, 0.12, 0.15, 0.08])
    lev = np.array([a.leverage for a in ARCHETYPES], dtype=float)[arch]
    delta = np.array([a.abs_delta for a in ARCHETYPES])[arch]
    tenor = np.array([a.tenor_days for a in ARCHETYPES])[arch]
    mix = np.array([a.kind_mix for a in ARCHETYPES], dtype=float)[arch]
    g = np.where(mix > 0, rng.gamma(np.maximum(mix, 1e-9) * 25.0 / spread), 0.0)
    kind_cum = np.cumsum(g / g.sum(axis=1, keepdims=True), axis=1)
    size = _column("size_usd")[arch] * rng.lognormal(0.0, 0.5 * spread, n)
    leverage = _log_uniform(rng, lev[:, 0], lev[:, 1])
    col = {
        name: _column(name)[arch]
        for name in (
            "opens_per_day",
            "active_prob",
            "maker_share",
            "long_share",
            "hold_hours",
            "hold_spread",
            "btc_share",
            "call_share",
            "option_buy_share",
            "straddle_share",
            "option_close_share",
            "spot_close_share",
            "churn_hazard",
            "loss_churn",
            "capital_multiple",
            "bot_share",
            "slippage_bps",
            "vip_floor",
        )
    }
    return AccountParams(
        arch=arch,
        region=region,
        kyc=kyc,
        channel=channel,
        opens_per_day=col["opens_per_day"] * rng.lognormal(0.0, 0.35 * spread, n),
        active_prob=_beta(rng, col["active_prob"], 20.0 / spread),
        size_usd=size,
        maker_share=_beta(rng, col["maker_share"], 30.0 / spread),
        leverage=leverage,
        long_share=np.where(
            col["long_share"] >= 1.0, 1.0, _beta(rng, col["long_share"], 40.0 / spread)
        ),
        hold_log_mu=np.log(col["hold_hours"]) + rng.normal(0.0, 0.3 * spread, n),
        hold_spread=col["hold_spread"],
        btc_share=_beta(rng, col["btc_share"], 10.0 / spread),
        kind_cum=kind_cum,
        call_share=_beta(rng, col["call_share"], 30.0 / spread),
        option_buy_share=_beta(rng, col["option_buy_share"], 30.0 / spread),
        abs_delta=_log_uniform(rng, delta[:, 0], delta[:, 1]),
        tenor_days=_log_uniform(rng, tenor[:, 0], tenor[:, 1]),
        straddle_share=_beta(rng, col["straddle_share"], 30.0 / spread)
        * (col["straddle_share"] > 0),
        option_close_share=_beta(rng, col["option_close_share"], 20.0 / spread),
        spot_close_share=np.clip(col["spot_close_share"], 0, 1),
        basis_pairs=np.array([a.basis_pairs for a in ARCHETYPES])[arch],
        churn_hazard=col["churn_hazard"] * rng.lognormal(0.0, 0.3 * spread, n),
        loss_churn=col["loss_churn"],
        capital=col["capital_multiple"] * size / np.sqrt(leverage),
        bot_share=col["bot_share"],
        slippage=col["slippage_bps"] * 1e-4,
        vip_floor=col["vip_floor"].astype(np.int64),
    )

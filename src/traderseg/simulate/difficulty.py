"""How hard the simulated venue is to read: mixtures, drift, thin accounts and churn.

Three levels, :data:`DIFFICULTIES`:

* ``easy``: every account follows one archetype for its whole life, parameters drawn
  around the archetype's centre; churn follows running realised PnL, including option
  settlements that no fill shows (the original simulator, byte for byte).
* ``realistic``: wider parameter spread; a share of accounts blend two archetypes with
  weights; thin accounts with few fills; some accounts migrate from one archetype to
  another on a recorded day; a regime change shifts everybody's activity for a stretch of
  the window; churn has precursors that fills reveal (see :mod:`.churn`).
* ``hard``: the same, with more blending, closer weights, more thin accounts and
  migrations, and weaker, noisier, later churn precursors.

Everything drawn for a level other than ``easy`` comes from a second generator per block,
seeded from ``(seed, block)`` like the first, so results stay independent of chunking.
"""

from __future__ import annotations

from dataclasses import dataclass

from traderseg.errors import ConfigError


@dataclass(frozen=True)
class ChurnSpec:
    """Churn with precursors (see :mod:`traderseg.simulate.churn`).

    Parameters
    ----------
    base_scale : float
        Multiplier on the archetype's baseline daily hazard.
    noise_sigma : float
        Log standard deviation of a per-account hazard multiplier (unexplained churn).
    loss_hazard : float
        Daily hazard added per unit of realised loss over capital in the trailing
        window beyond 0.2 (loss capped at 3 capitals).
    liq_hazard : float
        Daily hazard added per liquidation in the trailing window (capped at 3).
    window_days : int
        Trailing window of losses and liquidations.
    lag_days : int
        Days between what fills reveal and its effect on the hazard.
    fade_share : float
        Share of accounts whose interest fades from a random day.
    fade_days : tuple of float
        Range of the e-folding time of a fading account's activity.
    fade_hazard : float
        Daily hazard added at full fade (times ``max(0, 1 - engagement / 0.35)``).
    fade_size : float
        Exponent of the size decline with engagement (0: size unchanged).
    """

    base_scale: float
    noise_sigma: float
    loss_hazard: float
    liq_hazard: float
    window_days: int
    lag_days: int
    fade_share: float
    fade_days: tuple[float, float]
    fade_hazard: float
    fade_size: float


@dataclass(frozen=True)
class Difficulty:
    """One level of difficulty of the simulated venue.

    Parameters
    ----------
    name : str
        ``easy``, ``realistic`` or ``hard``.
    spread : float
        Multiplier on the spread of per-account parameters around the archetype centre.
    mix_share : float
        Share of accounts that blend two archetypes.
    mix_weight : tuple of float
        Range of the dominant archetype's weight in a blend (>= 0.5).
    thin_share : float
        Share of thin accounts.
    thin_activity : float
        Activity multiplier of a thin account.
    migrate_share : float
        Share of accounts (among those whose archetype has a plausible next one) that
        migrate during the window.
    regime : tuple of float
        ``(start, length, multiplier)``: from ``start`` (share of the window) for
        ``length`` (share of the window) everybody's activity is multiplied.
    churn : ChurnSpec or None
        Churn with precursors; ``None`` is the original simulator (one archetype per
        account, PnL-driven churn), and the other parameters then have no effect.
    """

    name: str
    spread: float = 1.0
    mix_share: float = 0.0
    mix_weight: tuple[float, float] = (0.6, 0.9)
    thin_share: float = 0.0
    thin_activity: float = 0.15
    migrate_share: float = 0.0
    regime: tuple[float, float, float] = (0.0, 0.0, 1.0)
    churn: ChurnSpec | None = None

    @property
    def easy(self) -> bool:
        """Whether this is the original simulator."""
        return self.churn is None


DIFFICULTIES: dict[str, Difficulty] = {
    "easy": Difficulty("easy"),
    "realistic": Difficulty(
        "realistic",
        spread=1.4,
        mix_share=0.25,
        mix_weight=(0.65, 0.9),
        thin_share=0.12,
        thin_activity=0.15,
        migrate_share=0.12,
        regime=(0.45, 0.15, 0.6),
        churn=ChurnSpec(
            base_scale=0.06,
            noise_sigma=0.5,
            loss_hazard=0.08,
            liq_hazard=0.04,
            window_days=21,
            lag_days=2,
            fade_share=0.35,
            fade_days=(20.0, 60.0),
            fade_hazard=0.15,
            fade_size=0.5,
        ),
    ),
    "hard": Difficulty(
        "hard",
        spread=1.8,
        mix_share=0.45,
        mix_weight=(0.55, 0.8),
        thin_share=0.25,
        thin_activity=0.1,
        migrate_share=0.2,
        regime=(0.35, 0.25, 0.5),
        churn=ChurnSpec(
            base_scale=0.6,
            noise_sigma=1.0,
            loss_hazard=0.012,
            liq_hazard=0.006,
            window_days=21,
            lag_days=5,
            fade_share=0.2,
            fade_days=(30.0, 90.0),
            fade_hazard=0.05,
            fade_size=0.25,
        ),
    ),
}
DEFAULT_DIFFICULTY = "easy"


def get_difficulty(name: str | Difficulty) -> Difficulty:
    """Look up the :class:`Difficulty` called ``name`` (a :class:`Difficulty` passes through).

    Raises
    ------
    ConfigError
        Unknown name.
    """
    if isinstance(name, Difficulty):
        return name
    try:
        return DIFFICULTIES[name]
    except KeyError:
        raise ConfigError(
            f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {name!r}"
        ) from None

"""Churn with precursors that fills reveal (levels other than ``easy``).

Fading interest. A share ``fade_share`` of accounts start losing interest on a day
``s`` drawn uniformly from 20 days before the window to its last day; their engagement
is ``e(d) = exp(-(d - s) / tau)`` from then on (1 before), with ``tau`` log-uniform in
``fade_days``. Engagement multiplies the account's activity and, to the power
``fade_size``, the size of its opens (:mod:`.mixing`): the decline shows in its fills.

Hazard. On day ``d`` the account leaves with the daily hazard::

    h(d) = base * noise + loss_hazard * max(0, L(d - lag) - LOSS_THRESHOLD)
           + liq_hazard * Q(d - lag)
           + fade_hazard * max(0, 1 - e(d - lag) / FADE_THRESHOLD)

where ``base`` is the archetype's baseline hazard times ``base_scale``, ``noise`` a
per-account log-normal multiplier (``noise_sigma``), ``L`` the realised loss over the
trailing ``window_days`` (net realised PnL of closing fills, liquidations included, when
negative, over the account's capital, capped at 3; only the part beyond
:data:`LOSS_THRESHOLD` of capital counts: small losses are the cost of trading, a
drawdown is a reason to leave) and ``Q`` the number of liquidations in that window
(capped at 3). The fading term is zero until engagement has fallen below
:data:`FADE_THRESHOLD` and grows linearly to ``fade_hazard`` as it reaches zero: a
fading account leaves once its fills have clearly thinned out. Everything in ``h`` but
``base * noise`` is visible in the account's own fills, ``lag`` days earlier; option
settlements (no fill) do not count. The hazard is zero up to the sign-up day. The churn
day is the first day the cumulated hazard reaches a unit exponential draw; its cause is
the largest of the four terms on that day: ``baseline``, ``losses``, ``liquidations`` or
``fading``.

At ``easy`` (the original simulator) churn follows running realised PnL including
settlements (see :mod:`.venue`), and the recorded cause is ``losses`` when the loss
term of that hazard outweighs the baseline, else ``baseline``.
"""

from __future__ import annotations

import numpy as np

from traderseg.simulate.calendar import DAY_US
from traderseg.simulate.difficulty import ChurnSpec
from traderseg.simulate.market import MarketPath

CAUSES: tuple[str, ...] = ("baseline", "losses", "liquidations", "fading")
FADE_LEAD_DAYS = 20
FADE_THRESHOLD = 0.35
LOSS_THRESHOLD = 0.2


def draw_engagement(
    rng: np.random.Generator, n: int, days: int, spec: ChurnSpec
) -> np.ndarray:
    """Engagement per account and day, shape ``(n, days)``, in ``(0, 1]``.

    Parameters
    ----------
    rng : numpy.random.Generator
        The block's second generator.
    n, days : int
        Accounts and window length.
    spec : ChurnSpec
        Churn parameters of the level.

    Returns
    -------
    numpy.ndarray
    """
    fades = rng.random(n) < spec.fade_share
    start = rng.uniform(-FADE_LEAD_DAYS, days, n)
    lo, hi = np.log(spec.fade_days[0]), np.log(spec.fade_days[1])
    tau = np.exp(rng.uniform(lo, hi, n))
    since = np.maximum(np.arange(days)[None, :] - start[:, None], 0.0)
    return np.where(fades[:, None], np.exp(-since / tau[:, None]), 1.0)


def _daily(acc: np.ndarray, t: np.ndarray, w: np.ndarray, n: int, mk: MarketPath) -> np.ndarray:
    day = np.floor_divide(t - mk.start_us, DAY_US)
    ok = (day >= 0) & (day < mk.days)
    flat = np.bincount(acc[ok] * mk.days + day[ok], weights=w[ok], minlength=n * mk.days)
    return flat.reshape(n, mk.days)


def _trailing(x: np.ndarray, window: int, lag: int) -> np.ndarray:
    """Sum of ``x`` over days ``d - lag - window + 1 .. d - lag`` for every day ``d``."""
    n, days = x.shape
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(x, axis=1)], axis=1)
    d = np.arange(days)
    hi = np.clip(d - lag + 1, 0, days)
    lo = np.clip(d - lag - window + 1, 0, days)
    return np.asarray(cum[:, hi] - cum[:, lo])


def precursor_churn(
    mk: MarketPath,
    spec: ChurnSpec,
    acc: np.ndarray,
    close_t: np.ndarray,
    close_pnl: np.ndarray,
    liquidated: np.ndarray,
    capital: np.ndarray,
    base: np.ndarray,
    engagement: np.ndarray,
    created_day: np.ndarray,
    e: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Churn day and cause per account (``days`` = never, cause ``-1``).

    Parameters
    ----------
    mk : MarketPath
        Market path (window).
    spec : ChurnSpec
        Churn parameters.
    acc, close_t, close_pnl, liquidated : numpy.ndarray
        Closing fills: account, time (epoch us), realised PnL, liquidation flag.
    capital : numpy.ndarray
        Capital per account.
    base : numpy.ndarray
        Baseline hazard per account (noise included).
    engagement : numpy.ndarray
        :func:`draw_engagement`.
    created_day : numpy.ndarray
        Sign-up day per account.
    e : numpy.ndarray
        Unit exponential draw per account.

    Returns
    -------
    tuple of numpy.ndarray
        Churn day, index into :data:`CAUSES` (or -1).
    """
    n, days = len(capital), mk.days
    pnl = _trailing(_daily(acc, close_t, close_pnl, n, mk), spec.window_days, spec.lag_days)
    liq = _trailing(
        _daily(acc, close_t, liquidated.astype(float), n, mk), spec.window_days, spec.lag_days
    )
    loss = np.minimum(np.maximum(-pnl, 0.0) / capital[:, None], 3.0)
    lagged = np.ones_like(engagement)
    if spec.lag_days < days:
        lagged[:, spec.lag_days :] = engagement[:, : days - spec.lag_days]
    terms = np.stack(
        [
            np.broadcast_to(base[:, None], (n, days)),
            spec.loss_hazard * np.maximum(loss - LOSS_THRESHOLD, 0.0),
            spec.liq_hazard * np.minimum(liq, 3.0),
            spec.fade_hazard * np.maximum(1.0 - lagged / FADE_THRESHOLD, 0.0),
        ]
    )
    h = terms.sum(axis=0)
    h = np.where(np.arange(days)[None, :] > created_day[:, None], h, 0.0)
    over = np.cumsum(h, axis=1) >= e[:, None]
    churned = over.any(axis=1)
    day = np.where(churned, over.argmax(axis=1), days)
    cause = np.where(churned, terms[:, np.arange(n), np.minimum(day, days - 1)].argmax(axis=0), -1)
    return day, cause

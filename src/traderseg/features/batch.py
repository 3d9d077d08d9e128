"""Compile the measures and the catalogue to Ibis: daily tiles, window merges, features.

The same functions serve three executions: tiles computed from the fills on the fly (one
pass over the fills, then every window merged from those tiles in one aggregation),
tiles read from the store (:mod:`traderseg.features.tiles`) with the partial cutoff day
computed from the fills, and the PySpark backend (the expressions are backend-neutral).

Windows
-------
A window ``Nd`` (or ``Nw``) as of a cutoff ``c`` covers ``[start_of_day(c) − N days, c)``:
exactly N days at a midnight cutoff, N whole days plus the partial cutoff day otherwise.
``all`` is the account's whole history before ``c``. Nothing at or after ``c`` ever counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from traderseg.features import measures as M
from traderseg.features.catalog import CATALOG, Feature, column_name
from traderseg.features.expr import Expr, Named, _cond_ibis, where
from traderseg.features.measures import MEASURE_SET, MeasureSet

EPOCH = date(1970, 1, 1)


def window_start(cutoff: datetime, window_days: int | None) -> datetime | None:
    """Start of a window of ``window_days`` whole days before ``cutoff`` (None: all)."""
    if window_days is None:
        return None
    day0 = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=cutoff.tzinfo)
    return day0 - timedelta(days=window_days)


def day_number(d: date) -> int:
    """Days since 1970-01-01."""
    return (d - EPOCH).days


def cutoff_end_day(cutoff: datetime) -> int:
    """Day number just past the cutoff's day (the cutoff's own day at midnight)."""
    return math.ceil(cutoff.timestamp() / M.SECONDS_PER_DAY)


def effective_formula(feature: Feature) -> Expr:
    """The feature's formula, with its idle value (or NULL) when the window has no fill."""
    return where(ibis_n_positive(), feature.formula, feature.idle)


def ibis_n_positive() -> Expr:
    """``n > 0`` over the window values."""
    from traderseg.features.catalog import window_value

    return window_value("n") > 0


# -- tiles ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Tiles:
    """Lazy tile tables: per (account, day) scalars, per-key maps and sketches."""

    day: ir.Table
    maps: Mapping[str, ir.Table]
    sketches: Mapping[str, ir.Table]

    def union(self, other: Tiles) -> Tiles:
        """Tiles of both (disjoint days)."""
        return Tiles(
            self.day.union(other.day),
            {k: t.union(other.maps[k]) for k, t in self.maps.items()},
            {k: t.union(other.sketches[k]) for k, t in self.sketches.items()},
        )


def _env(t: ir.Table, ms: MeasureSet) -> dict[str, Any]:
    return {c: t[c] for c in ms.read_columns() if c in t.columns}


def _named(ms: MeasureSet) -> list[Named]:
    """Derived per-fill values the measures use, in dependency order."""
    seen: dict[int, Named] = {}

    def visit(e: Expr | None) -> None:
        if e is None:
            return
        for child in e.children():
            visit(child)
        if isinstance(e, Named) and id(e) not in seen:
            seen[id(e)] = e

    for m in ms.scalars:
        visit(m.expr)
        visit(m.where)
    for p in ms.pairs:
        visit(p.where)
    return list(seen.values())


def _agg(m: M.Measure, t: ir.Table, env: Mapping[str, Any]) -> ir.Value:
    cond = None if m.where is None else _cond_ibis(m.where, m.where.to_ibis(env))
    if m.agg == "count":
        if m.expr is None:
            return t.count(where=cond).cast("int64")
        return m.expr.to_ibis(env).count(where=cond).cast("int64")
    x = m.expr.to_ibis(env) if m.expr is not None else None
    if x is None:
        raise ValueError(f"measure {m.name} needs an expression")
    if m.agg == "sum":
        return x.cast("float64").sum(where=cond).fill_null(0.0)
    if m.agg == "min":
        return x.cast("float64").min(where=cond)
    return x.cast("float64").max(where=cond)


def tiles_from_fills(fills: ir.Table, ms: MeasureSet = MEASURE_SET) -> Tiles:
    """Per (account, UTC day) tiles of ``fills`` (already filtered to the wanted span)."""
    f = fills.select(*[c for c in ms.read_columns() if c in fills.columns])
    env: dict[str, Any] = _env(f, ms)
    derived = {}
    for nd in _named(ms):
        derived[nd.name] = nd.expr.to_ibis({**env, **derived})
    f = f.mutate(day=f.ts.date(), **derived)
    env = {c: f[c] for c in f.columns}
    keys = ["account_id", "day"]
    day = f.group_by(keys).aggregate(**{m.name: _agg(m, f, env) for m in ms.scalars})
    for p in ms.pairs:
        o = f.filter(_cond_ibis(p.where, p.where.to_ibis(env)))
        oenv = {c: o[c] for c in o.columns}
        gk = {k: e.to_ibis(oenv) for k, e in p.keys}
        legs = o.group_by([*keys, *[o[k] for k in gk]]).aggregate(
            types=p.type_expr.to_ibis(oenv).nunique(), legs=o.count()
        )
        per_day = legs.group_by(keys).aggregate(
            **{p.name: legs.legs.sum(where=legs.types >= p.min_types).fill_null(0).cast("int64")}
        )
        day = day.left_join(per_day, keys).select(~ibis.selectors.endswith("_right"))
        day = day.mutate(**{p.name: day[p.name].fill_null(0)})
    day = day.select(*keys, *[m.name for m in ms.scalars], *[p.name for p in ms.pairs])
    maps = {}
    for km in ms.maps:
        g = f if km.where is None else f.filter(_cond_ibis(km.where, km.where.to_ibis(env)))
        genv = {c: g[c] for c in g.columns}
        key_cols = {k: e.to_ibis(genv) for k, e in km.keys}
        maps[km.name] = g.group_by([*keys, *[v.name(k) for k, v in key_cols.items()]]).aggregate(
            **{v.name: _agg(v, g, genv) for v in km.values}
        )
    sketches = {}
    for sk in ms.sketches:
        x = sk.expr.to_ibis(env).cast("float64")
        bucket = (x < M.SKETCH_MIN_VALUE).ifelse(
            ibis.literal(M.ZERO_BUCKET, "int64"),
            (ibis.greatest(x, M.SKETCH_MIN_VALUE).ln() * sk.inv_log_gamma).ceil().cast("int64"),
        )
        s = f.mutate(bucket=bucket)
        sketches[sk.name] = s.group_by([*keys, "bucket"]).aggregate(count=s.count().cast("int64"))
    return Tiles(day, maps, sketches)


# -- windows -------------------------------------------------------------------------


def _merge(m: M.Measure, x: ir.Value, cond: ir.BooleanValue | None) -> ir.Value:
    if m.agg in ("count", "sum"):
        out = x.sum(where=cond)
        return out.fill_null(0) if m.agg == "count" else out.fill_null(0.0)
    return x.min(where=cond) if m.agg == "min" else x.max(where=cond)


def window_values(
    tiles: Tiles,
    cutoff: datetime,
    windows: Mapping[str, int | None],
    event_days: Sequence[date] | None,
    ms: MeasureSet = MEASURE_SET,
    *,
    exact_quantiles: ir.Table | None = None,
) -> ir.Table:
    """Merged window values per account, columns ``{value}__{window}``.

    ``windows`` maps each window's name to its length in days (None for ``all``).
    ``event_days`` are the market-event days (None: the store has no market events).
    ``exact_quantiles`` replaces the sketch quantiles with exact ones (a table of
    ``account_id`` and ``notional_q50__w``, ``notional_q95__w``).
    """
    d = tiles.day
    dn = d.day.delta(ibis.date(EPOCH), unit="day").cast("int64")
    ev_list = sorted(set(event_days or ()))
    is_ev = d.day.isin(ev_list) if ev_list else ibis.literal(False)
    d = d.mutate(dn=dn, is_ev=is_ev)
    conds: dict[str, ir.BooleanValue | None] = {}
    for w, n_days in windows.items():
        start = window_start(cutoff, n_days)
        conds[w] = None if start is None else d.day >= ibis.literal(start.date())
    aggs: dict[str, ir.Value] = {}
    for w, cond in conds.items():
        for m in ms.scalars:
            aggs[f"{m.name}__{w}"] = _merge(m, d[m.name], cond)
        for p in ms.pairs:
            aggs[f"{p.name}__{w}"] = d[p.name].sum(where=cond).fill_null(0)
        for dl in ms.day_level:
            if dl.agg == "count":
                aggs[f"{dl.name}__{w}"] = d.count(where=cond)
            elif dl.agg == "min_day":
                aggs[f"{dl.name}__{w}"] = d.dn.min(where=cond)
            elif dl.agg == "max_day":
                aggs[f"{dl.name}__{w}"] = d.dn.max(where=cond)
            elif dl.agg == "sumsq":
                x = d[dl.of].cast("float64")
                aggs[f"{dl.name}__{w}"] = (x * x).sum(where=cond).fill_null(0.0)
            else:
                c = d.is_ev if cond is None else (cond & d.is_ev)
                aggs[f"{dl.name}__{w}"] = d[dl.of].cast("float64").sum(where=c).fill_null(0.0)
    t = d.group_by("account_id").aggregate(**aggs)

    for km in ms.maps:
        t = t.left_join(_map_values(tiles.maps[km.name], km, cutoff, windows), "account_id")
        t = t.select(~ibis.selectors.endswith("_right"))
    if exact_quantiles is not None:
        t = t.left_join(exact_quantiles, "account_id").select(~ibis.selectors.endswith("_right"))
    else:
        for sk in ms.sketches:
            t = t.left_join(_sketch_values(tiles.sketches[sk.name], sk, cutoff, windows),
                            "account_id").select(~ibis.selectors.endswith("_right"))

    # context: cutoff, span of days, event days within the span
    end_day = cutoff_end_day(cutoff)
    ctx: dict[str, ir.Value] = {}
    for w in windows:
        first = t[f"first_day__{w}"]
        ctx[f"cutoff_s__{w}"] = ibis.literal(cutoff.timestamp(), "float64")
        ctx[f"span_days__{w}"] = (ibis.literal(end_day) - first).cast("float64")
        ctx[f"events_known__{w}"] = ibis.literal(1.0 if event_days is not None else 0.0)
        ev_nums = [day_number(e) for e in ev_list if day_number(e) < end_day]
        if ev_nums:
            # event days on or after the first active day: total minus those before it
            cnt = ibis.literal(0)
            for e in ev_nums:
                cnt = cnt + (first <= e).cast("int64")
            ctx[f"ev_days__{w}"] = cnt.cast("float64")
        else:
            ctx[f"ev_days__{w}"] = ibis.literal(0.0)
    return t.mutate(**ctx)


def _map_values(m: ir.Table, km: M.KeyedMap, cutoff: datetime,
                windows: Mapping[str, int | None]) -> ir.Table:
    key_names = [k for k, _ in km.keys]
    aggs = {}
    for w, n_days in windows.items():
        start = window_start(cutoff, n_days)
        cond = None if start is None else m.day >= ibis.literal(start.date())
        aggs[f"fills__{w}"] = m.fills.sum(where=cond).fill_null(0)
        aggs[f"notional__{w}"] = m.notional.sum(where=cond).fill_null(0.0)
    g = m.group_by(["account_id", *key_names]).aggregate(**aggs)
    out = {}
    for w in windows:
        has = g[f"fills__{w}"] > 0
        out[f"top_notional__{w}"] = g[f"notional__{w}"].max(where=has)
        out[f"instrument_breadth__{w}"] = g.count(where=has)
        out[f"underlying_count__{w}"] = g.underlying.nunique(where=has)
    return g.group_by("account_id").aggregate(**out)


def _sketch_values(s: ir.Table, sk: M.Sketch, cutoff: datetime,
                   windows: Mapping[str, int | None]) -> ir.Table:
    aggs = {}
    for w, n_days in windows.items():
        start = window_start(cutoff, n_days)
        cond = None if start is None else s.day >= ibis.literal(start.date())
        aggs[f"c__{w}"] = s["count"].sum(where=cond).fill_null(0)
    g = s.group_by(["account_id", "bucket"]).aggregate(**aggs)
    run = ibis.window(group_by="account_id", order_by="bucket", preceding=None, following=0)
    whole = ibis.window(group_by="account_id")
    g = g.mutate(
        **{f"cum__{w}": g[f"c__{w}"].sum().over(run) for w in windows},
        **{f"tot__{w}": g[f"c__{w}"].sum().over(whole) for w in windows},
    )
    out = {}
    log_g = math.log(sk.gamma)
    for w in windows:
        for q in sk.quantiles:
            rank = (q * (g[f"tot__{w}"] - 1).cast("float64")).floor()
            b = g.bucket.min(where=(g[f"c__{w}"] > 0) & (g[f"cum__{w}"] > rank))
            out[f"qb{round(q * 100):02d}__{w}"] = b
    r = g.group_by("account_id").aggregate(**out)
    vals = {}
    for w in windows:
        for q in sk.quantiles:
            b = r[f"qb{round(q * 100):02d}__{w}"]
            rep = (b <= M.ZERO_BUCKET).ifelse(
                0.0, 2.0 * (b.cast("float64") * log_g).exp() / (sk.gamma + 1.0)
            )
            vals[f"{sk.name}_q{round(q * 100):02d}__{w}"] = rep
    return r.select("account_id", **vals)


def exact_quantiles(fills: ir.Table, cutoff: datetime,
                    windows: Mapping[str, int | None]) -> ir.Table:
    """Exact (interpolated) per-account notional median and p95 per window."""
    parts = []
    for w, n_days in windows.items():
        start = window_start(cutoff, n_days)
        f = fills.filter(fills.ts < cutoff)
        if start is not None:
            f = f.filter(f.ts >= start)
        parts.append(f.group_by("account_id").aggregate(
            **{f"notional_q50__{w}": f.notional_usd.quantile(0.5),
               f"notional_q95__{w}": f.notional_usd.quantile(0.95)}
        ))
    t = parts[0]
    for p in parts[1:]:
        t = t.left_join(p, "account_id").select(~ibis.selectors.endswith("_right"))
    return t


# -- features ------------------------------------------------------------------------


def feature_columns(windows: Sequence[str]) -> list[str]:
    """Names of the feature columns for ``windows``, in order."""
    cols = [column_name(f.name, "all") for f in CATALOG if f.lifetime_only]
    for w in windows:
        cols += [column_name(f.name, w) for f in CATALOG if not f.lifetime_only]
    return cols


def feature_table(values: ir.Table, windows: Sequence[str]) -> ir.Table:
    """Features per account from the merged window values."""
    out: dict[str, ir.Value] = {}
    life = "all" if "all" in windows else windows[0]
    for f in CATALOG:
        targets = ["all"] if f.lifetime_only else list(windows)
        for w in targets:
            src = life if f.lifetime_only else w
            env = _WindowEnv(values, src)
            out[column_name(f.name, w)] = effective_formula(f).to_ibis(env).cast("float64")
    cols = feature_columns(windows)
    return values.select("account_id", **{c: out[c] for c in cols})


class _WindowEnv(dict):  # type: ignore[type-arg]
    """Resolve a window value name to its ``{name}__{window}`` column."""

    def __init__(self, t: ir.Table, window: str) -> None:
        super().__init__()
        self.t = t
        self.window = window

    def __contains__(self, key: object) -> bool:
        return f"{key}__{self.window}" in self.t.columns

    def __getitem__(self, key: str) -> Any:
        return self.t[f"{key}__{self.window}"]

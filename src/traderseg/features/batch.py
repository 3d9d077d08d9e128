"""Compile the measures and the catalogue to Ibis: daily tiles, window merges, features.

The same functions serve three executions: tiles computed from the fills on the fly (one
pass over the fills, then every window merged from those tiles in one aggregation),
tiles read from the store (:mod:`traderseg.features.tiles`) with the partial cutoff day
computed from the fills, and the PySpark backend (the expressions are backend-neutral).

Windows are counted as :mod:`traderseg.features.windows` defines them; nothing at or after
the cutoff ever counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from traderseg.features import measures as M
from traderseg.features.catalog import CATALOG, column_name
from traderseg.features.expr import ENGINE_KEY, Expr, Named, _cond_ibis
from traderseg.features.expr import day as utc_day
from traderseg.features.measures import MEASURE_SET, MeasureSet
from traderseg.features.windows import (
    cutoff_end_day,
    cutoff_micros,
    day_number,
    effective_formula,
    feature_columns,
    window_start,
    window_start_days,
)

# -- tiles ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Tiles:
    """Lazy tile tables.

    ``day`` holds the scalar measures and paired legs per (account, tile) where the tile
    is one UTC day (stored tiles) or a span of days starting at ``day`` (window buckets
    of :func:`tiles_from_fills`); ``maps`` and ``sketches`` are keyed the same way;
    ``days`` holds, per (account, UTC day), the sums the day-level values need.
    """

    day: ir.Table
    maps: Mapping[str, ir.Table]
    sketches: Mapping[str, ir.Table]
    days: ir.Table

    def union(self, other: Tiles) -> Tiles:
        """Tiles of both (disjoint days)."""
        return Tiles(
            self.day.union(other.day),
            {k: t.union(other.maps[k]) for k, t in self.maps.items()},
            {k: t.union(other.sketches[k]) for k, t in self.sketches.items()},
            self.days.union(other.days),
        )


def day_sums(ms: MeasureSet = MEASURE_SET) -> tuple[str, ...]:
    """Tile columns the day-level values read per day."""
    return tuple(sorted({"n", *(d.of for d in ms.day_level if d.of is not None)}))


def engine_of(t: ir.Table) -> str:
    """Name of the backend a table lives in (``duckdb``, ``pyspark``...)."""
    try:
        return str(t._find_backend().name)
    except Exception:  # noqa: BLE001 - unbound (memtable) expressions compile for DuckDB
        return "duckdb"


def _env(t: ir.Table, ms: MeasureSet) -> dict[str, Any]:
    env: dict[str, Any] = {c: t[c] for c in ms.read_columns() if c in t.columns}
    env[ENGINE_KEY] = engine_of(t)
    return env


def named_values(exprs: Sequence[Expr | None]) -> list[Named]:
    """List the derived per-fill values ``exprs`` use, in dependency order."""
    seen: dict[int, Named] = {}

    def visit(e: Expr | None) -> None:
        if e is None:
            return
        for child in e.children():
            visit(child)
        if isinstance(e, Named) and id(e) not in seen:
            seen[id(e)] = e

    for e in exprs:
        visit(e)
    return list(seen.values())


def _masked(x: ir.Value, cond: ir.BooleanValue | None) -> ir.Value:
    """``x`` where ``cond`` holds, else NULL.

    Conditional aggregates are written as aggregates of a CASE rather than with a FILTER
    clause: with dozens of aggregates DuckDB evaluates FILTERs several times slower.
    """
    if cond is None:
        return x
    return cond.ifelse(x, ibis.null(x.type().copy(nullable=True)))


def _agg(m: M.Measure, t: ir.Table, env: Mapping[str, Any]) -> ir.Value:
    cond = None if m.where is None else _cond_ibis(m.where, m.where.to_ibis(env))
    if m.agg == "count":
        # COUNT of a CASE, not SUM of one: DuckDB widens an integer SUM to HUGEINT, which
        # every later merge then converts in software (about 20x slower than BIGINT)
        if m.expr is None:
            if cond is None:
                return t.count().cast("int64")
            return _masked(ibis.literal(1, "int8"), cond).count().cast("int64")
        return _masked(m.expr.to_ibis(env), cond).count().cast("int64")
    x = m.expr.to_ibis(env) if m.expr is not None else None
    if x is None:
        raise ValueError(f"measure {m.name} needs an expression")
    x = _masked(x.cast("float64"), cond)
    if m.agg == "sum":
        return x.sum().fill_null(0.0)
    if m.agg == "min":
        return x.min()
    return x.max()


def _prepare(fills: ir.Table, exprs: Sequence[Expr | None], span: tuple[Any, Any],
             buckets: Sequence[int] | None) -> tuple[ir.Table, dict[str, Any]]:
    """Project the fills' columns ``exprs`` read, filtered to ``span``, with derived values.

    Each consumer gets its own narrow projection of the fills: a relation shared by all of
    them would be materialised whole by the engine.
    """
    cols = {"account_id", "ts"}
    for e in exprs:
        if e is not None:
            cols |= e.columns()
    f = fills.select(*sorted(c for c in cols if c in fills.columns))
    lo, hi = span
    if hi is not None:
        f = f.filter(f.ts < hi)
    if lo is not None:
        f = f.filter(f.ts >= lo)
    env: dict[str, Any] = {c: f[c] for c in f.columns}
    env[ENGINE_KEY] = engine_of(fills)
    derived: dict[str, Any] = {}
    for nd in named_values(exprs):
        derived[nd.name] = nd.expr.to_ibis({**env, **derived})
    f = f.mutate(fill_day=utc_day(M.ts).to_ibis(env), **derived)
    if buckets:
        tile = ibis.literal(_FIRST_BUCKET, "int64")
        for b in sorted(buckets):
            tile = (f.fill_day >= b).ifelse(ibis.literal(b, "int64"), tile)
        f = f.mutate(day=tile)
    else:
        f = f.mutate(day=f.fill_day)
    env = {c: f[c] for c in f.columns}
    env[ENGINE_KEY] = engine_of(fills)
    return f, env


def tiles_from_fills(fills: ir.Table, ms: MeasureSet = MEASURE_SET,
                     buckets: Sequence[int] | None = None, *,
                     lo: datetime | None = None, hi: datetime | None = None) -> Tiles:
    """Tiles of the fills with ``lo <= ts < hi``.

    Without ``buckets`` a tile is one (account, UTC day), as the store keeps them. With
    ``buckets`` (sorted day numbers where windows start) a tile spans the days from one
    bucket start to the next, so one pass over the fills yields few, small tiles from
    which every window merges; per-day sums for the day-level values come alongside.
    """
    span = (lo, hi)
    keys = ["account_id", "day"]
    f, env = _prepare(fills, [e for m in ms.scalars for e in (m.expr, m.where)], span, buckets)
    day = f.group_by(keys).aggregate(**{m.name: _agg(m, f, env) for m in ms.scalars})
    for p in ms.pairs:
        o, oenv = _prepare(fills, [p.where, p.type_expr, *[e for _, e in p.keys]], span,
                           buckets)
        o = o.filter(_cond_ibis(p.where, p.where.to_ibis(oenv)))
        oenv = {**{c: o[c] for c in o.columns}, ENGINE_KEY: oenv[ENGINE_KEY]}
        gk = {k: e.to_ibis(oenv) for k, e in p.keys}
        legs = o.group_by([*keys, "fill_day", *[o[k] for k in gk]]).aggregate(
            types=p.type_expr.to_ibis(oenv).nunique(), legs=o.count()
        )
        per_tile = legs.group_by(keys).aggregate(
            **{p.name: _masked(legs.legs.cast("float64"), legs.types >= p.min_types).sum()
               .fill_null(0.0).cast("int64")}
        )
        day = day.left_join(per_tile, keys).select(~ibis.selectors.endswith("_right"))
        day = day.mutate(**{p.name: day[p.name].fill_null(0)})
    day = day.select(*keys, *[m.name for m in ms.scalars], *[p.name for p in ms.pairs])
    maps = {}
    for km in ms.maps:
        g, genv = _prepare(fills, [km.where, *[e for _, e in km.keys],
                                   *[v.expr for v in km.values]], span, buckets)
        if km.where is not None:
            g = g.filter(_cond_ibis(km.where, km.where.to_ibis(genv)))
            genv = {**{c: g[c] for c in g.columns}, ENGINE_KEY: genv[ENGINE_KEY]}
        key_cols = {k: e.to_ibis(genv) for k, e in km.keys}
        maps[km.name] = g.group_by([*keys, *[v.name(k) for k, v in key_cols.items()]]).aggregate(
            **{v.name: _agg(v, g, genv) for v in km.values}
        )
    sketches = {}
    for sk in ms.sketches:
        sf, senv = _prepare(fills, [sk.expr], span, buckets)
        x = sk.expr.to_ibis(senv).cast("float64")
        bucket = (x < M.SKETCH_MIN_VALUE).ifelse(
            ibis.literal(M.ZERO_BUCKET, "int64"),
            (ibis.greatest(x, M.SKETCH_MIN_VALUE).ln() * sk.inv_log_gamma).ceil().cast("int64"),
        )
        s = sf.mutate(bucket=bucket)
        sketches[sk.name] = s.group_by([*keys, "bucket"]).aggregate(count=s.count().cast("int64"))
    sums = day_sums(ms)
    if buckets:
        by_name = {m.name: m for m in ms.scalars}
        used = [by_name[c] for c in sums]
        df_, denv = _prepare(fills, [e for m in used for e in (m.expr, m.where)], span, None)
        days = df_.group_by(keys).aggregate(**{m.name: _agg(m, df_, denv) for m in used})
    else:
        days = day.select("account_id", "day", *sums)
    return Tiles(day, maps, sketches, days)


_FIRST_BUCKET = -(2**40)
"""Tile key of the fills before every window start (the rest of the lifetime)."""


# -- windows -------------------------------------------------------------------------


def _merge(m: M.Measure, x: ir.Value, cond: ir.BooleanValue | None) -> ir.Value:
    x = _masked(x.cast("float64"), cond)
    if m.agg in ("count", "sum"):
        return x.sum().fill_null(0.0)
    return x.min() if m.agg == "min" else x.max()


def window_values(
    tiles: Tiles,
    cutoff: datetime,
    windows: Mapping[str, int | None],
    event_days: Sequence[date] | None,
    ms: MeasureSet = MEASURE_SET,
    *,
    exact_quantiles: ir.Table | None = None,
) -> ir.Table:
    """Merge the tiles into window values per account, columns ``{value}__{window}``.

    ``windows`` maps each window's name to its length in days (None for ``all``).
    ``event_days`` are the market-event days (None: the store has no market events).
    ``exact_quantiles`` replaces the sketch quantiles with exact ones (a table of
    ``account_id`` and ``notional_q50__w``, ``notional_q95__w``).
    """
    tt = _banded(tiles.day, cutoff, windows, ms)
    aggs: dict[str, ir.Value] = {}
    for w, n_days in windows.items():
        cond = _in_window(tt, cutoff, n_days)
        for m in ms.scalars:
            aggs[f"{m.name}__{w}"] = _merge(m, tt[m.name], cond)
        for p in ms.pairs:
            aggs[f"{p.name}__{w}"] = _masked(tt[p.name].cast("float64"), cond).sum().fill_null(0.0)
    t = tt.group_by("account_id").aggregate(**aggs)

    d = tiles.days
    ev_list = sorted(set(event_days or ()))
    ev_nums_all = [day_number(e) for e in ev_list]
    is_ev = d.day.isin(ev_nums_all) if ev_list else ibis.literal(False)
    d = d.mutate(dn=d.day, is_ev=is_ev)
    aggs = {}
    for w, n_days in windows.items():
        cond = _in_window(d, cutoff, n_days)
        for dl in ms.day_level:
            if dl.agg == "count":
                aggs[f"{dl.name}__{w}"] = (d.count() if cond is None
                                            else cond.ifelse(1, 0).sum())
            elif dl.agg == "min_day":
                aggs[f"{dl.name}__{w}"] = _masked(d.dn, cond).min()
            elif dl.agg == "max_day":
                aggs[f"{dl.name}__{w}"] = _masked(d.dn, cond).max()
            elif dl.agg == "sumsq":
                x = d[dl.of].cast("float64")
                aggs[f"{dl.name}__{w}"] = _masked(x * x, cond).sum().fill_null(0.0)
            else:
                c = d.is_ev if cond is None else (cond & d.is_ev)
                aggs[f"{dl.name}__{w}"] = _masked(d[dl.of].cast("float64"), c).sum().fill_null(0.0)
    t = t.left_join(d.group_by("account_id").aggregate(**aggs), "account_id")
    t = t.select(~ibis.selectors.endswith("_right"))

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
        ctx[f"cutoff_us__{w}"] = ibis.literal(float(cutoff_micros(cutoff)), "float64")
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


def _banded(day: ir.Table, cutoff: datetime, windows: Mapping[str, int | None],
            ms: MeasureSet) -> ir.Table:
    """Merge tiles into one per (account, band) of days between consecutive window starts.

    The band is keyed by its first day (``day``), so a window's condition ``day >= start``
    selects the same days as on the day tiles; merging a few bands per account per window
    is much cheaper than merging every day tile once per window.
    """
    starts = window_start_days(cutoff, windows.values())
    band = ibis.literal(_FIRST_BUCKET, "int64")
    for b in starts:
        band = (day.day >= b).ifelse(ibis.literal(b, "int64"), band)
    d = day.mutate(day=band)
    aggs = {m.name: _merge(m, d[m.name], None) for m in ms.scalars}
    aggs.update({p.name: d[p.name].cast("float64").sum().fill_null(0.0) for p in ms.pairs})
    return d.group_by(["account_id", "day"]).aggregate(**aggs)


def _in_window(t: ir.Table, cutoff: datetime, n_days: int | None) -> ir.BooleanValue | None:
    """Tiles of ``t`` inside the window (None: every tile)."""
    start = window_start(cutoff, n_days)
    return None if start is None else t.day >= day_number(start.date())


def _map_values(m: ir.Table, km: M.KeyedMap, cutoff: datetime,
                windows: Mapping[str, int | None]) -> ir.Table:
    key_names = [k for k, _ in km.keys]
    aggs = {}
    for w, n_days in windows.items():
        cond = _in_window(m, cutoff, n_days)
        aggs[f"fills__{w}"] = _masked(m.fills.cast("float64"), cond).sum().fill_null(0.0)
        aggs[f"notional__{w}"] = _masked(m.notional, cond).sum().fill_null(0.0)
    g = m.group_by(["account_id", *key_names]).aggregate(**aggs)
    out = {}
    for w in windows:
        has = g[f"fills__{w}"] > 0
        out[f"top_notional__{w}"] = _masked(g[f"notional__{w}"], has).max()
        out[f"instrument_breadth__{w}"] = has.ifelse(1, 0).sum()
        out[f"underlying_count__{w}"] = _masked(g.underlying, has).nunique()
    return g.group_by("account_id").aggregate(**out)


def _sketch_values(s: ir.Table, sk: M.Sketch, cutoff: datetime,
                   windows: Mapping[str, int | None]) -> ir.Table:
    # the rank rule of Sketch.quantiles_of, in SQL
    aggs = {}
    for w, n_days in windows.items():
        cond = _in_window(s, cutoff, n_days)
        # summed as doubles (exact below 2**53): an integer SUM widens to a slow HUGEINT
        aggs[f"c__{w}"] = _masked(s["count"].cast("float64"), cond).sum().fill_null(0.0)
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
            b = _masked(g.bucket, (g[f"c__{w}"] > 0) & (g[f"cum__{w}"] > rank)).min()
            out[f"qb{round(q * 100):02d}__{w}"] = b
    r = g.group_by("account_id").aggregate(**out)
    vals = {}
    for w in windows:
        for q, name in zip(sk.quantiles, sk.value_names, strict=True):
            b = r[f"qb{round(q * 100):02d}__{w}"]
            rep = (b <= M.ZERO_BUCKET).ifelse(
                0.0, 2.0 * (b.cast("float64") * log_g).exp() / (sk.gamma + 1.0)
            )
            vals[f"{name}__{w}"] = rep
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


def feature_table(values: ir.Table, windows: Sequence[str]) -> ir.Table:
    """Features per account from the merged window values."""
    out: dict[str, ir.Value] = {}
    for f in CATALOG:
        targets = ["all"] if f.lifetime_only else list(windows)
        for w in targets:
            env = _WindowEnv(values, w)  # the values always hold the lifetime window
            out[column_name(f.name, w)] = effective_formula(f).to_ibis(env).cast("float64")
    cols = feature_columns(windows)
    return values.select("account_id", **{c: out[c] for c in cols})


class _WindowEnv(dict[str, Any]):
    """Resolve a window value name to its ``{name}__{window}`` column."""

    def __init__(self, t: ir.Table, window: str) -> None:
        super().__init__()
        self.t = t
        self.window = window

    def __contains__(self, key: object) -> bool:
        return f"{key}__{self.window}" in self.t.columns

    def __getitem__(self, key: str) -> Any:
        return self.t[f"{key}__{self.window}"]

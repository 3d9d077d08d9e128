"""A small expression language in which measures and features are declared once.

An :class:`Expr` is a tree built with Python operators (``col("kind") == "option"``,
``col("notional_usd") * 2``) and the functions below. The same tree compiles

- to an Ibis expression (:meth:`Expr.to_ibis`), which DuckDB and Spark run,
- to Python source (:func:`py_source`), which the online state runs per fill, and
- to NumPy over arrays (:func:`compile_np`), which evaluates formulas for many accounts
  at once (NULL is NaN there).

Ibis is imported when an expression is compiled to it, not with this module: a process that
runs compiled SQL from the cache or the online state does without it.

Null semantics follow SQL, so both executions agree: arithmetic and comparisons with a
NULL operand are NULL; a NULL condition counts as false in :func:`where` and in measure
filters; aggregates skip NULLs. Python compilation tracks which sub-expressions can be
NULL (from the columns' declared nullability) and guards only those.

Time functions work on UTC: :func:`day` (the UTC date; Python: days since 1970-01-01),
:func:`hour`, :func:`weekday` (Monday = 0) and :func:`epoch_seconds` (whole seconds,
floored). In Python, timestamps are integer microseconds since the epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import ibis.expr.types as ir

US_PER_SECOND = 1_000_000
US_PER_DAY = 86_400 * US_PER_SECOND

_BIN = {"+": "add", "-": "sub", "*": "mul", "/": "div", "<": "lt", "<=": "le", ">": "gt",
        ">=": "ge", "==": "eq", "!=": "ne", "&": "and", "|": "or"}
_CMP = {"<", "<=", ">", ">=", "==", "!="}


class Expr:
    """Base of the expression tree; build with operators and the module's functions."""

    nullable: bool = False
    boolean: bool = False

    # -- building -------------------------------------------------------------------
    def _bin(self, op: str, other: Any, *, swap: bool = False) -> Expr:
        o = as_expr(other)
        return Bin(op, o, self) if swap else Bin(op, self, o)

    def __add__(self, o: Any) -> Expr:
        return self._bin("+", o)

    def __radd__(self, o: Any) -> Expr:
        return self._bin("+", o, swap=True)

    def __sub__(self, o: Any) -> Expr:
        return self._bin("-", o)

    def __rsub__(self, o: Any) -> Expr:
        return self._bin("-", o, swap=True)

    def __mul__(self, o: Any) -> Expr:
        return self._bin("*", o)

    def __rmul__(self, o: Any) -> Expr:
        return self._bin("*", o, swap=True)

    def __truediv__(self, o: Any) -> Expr:
        return self._bin("/", o)

    def __rtruediv__(self, o: Any) -> Expr:
        return self._bin("/", o, swap=True)

    def __lt__(self, o: Any) -> Expr:
        return self._bin("<", o)

    def __le__(self, o: Any) -> Expr:
        return self._bin("<=", o)

    def __gt__(self, o: Any) -> Expr:
        return self._bin(">", o)

    def __ge__(self, o: Any) -> Expr:
        return self._bin(">=", o)

    def __eq__(self, o: Any) -> Expr:  # type: ignore[override]
        return self._bin("==", o)

    def __ne__(self, o: Any) -> Expr:  # type: ignore[override]
        return self._bin("!=", o)

    def __and__(self, o: Any) -> Expr:
        return self._bin("&", o)

    def __or__(self, o: Any) -> Expr:
        return self._bin("|", o)

    def __invert__(self) -> Expr:
        return Call("not", (self,))

    def __hash__(self) -> int:
        return id(self)

    def __neg__(self) -> Expr:
        return Bin("-", Lit(0.0), self)

    def isin(self, values: tuple[Any, ...]) -> Expr:
        """Test membership in ``values``."""
        return IsIn(self, tuple(values))

    def notnull(self) -> Expr:
        """Test that the value is not NULL."""
        return Call("notnull", (self,))

    def isnull(self) -> Expr:
        """Test that the value is NULL."""
        return Call("isnull", (self,))

    def fill_null(self, value: Any) -> Expr:
        """Replace NULL with ``value``."""
        return Call("coalesce", (self, as_expr(value)))

    # -- compiling --------------------------------------------------------------------
    def to_ibis(self, env: Mapping[str, Any]) -> Any:
        """Compile to an Ibis value; ``env`` maps column names to Ibis columns."""
        raise NotImplementedError

    def _py(self, c: _PyCompiler) -> str:
        raise NotImplementedError

    def columns(self) -> set[str]:
        """Names of the columns the expression reads."""
        out: set[str] = set()
        for child in self.children():
            out |= child.columns()
        return out

    def children(self) -> tuple[Expr, ...]:
        """Direct sub-expressions."""
        return ()


@dataclass(frozen=True, eq=False)
class Col(Expr):
    """A column of the input (a fill's field, or a window value for formulas)."""

    name: str
    nullable: bool = False
    kind: str = "float"  # float | bool | str | ts

    @property
    def boolean(self) -> bool:  # type: ignore[override]
        return self.kind == "bool"

    def to_ibis(self, env: Mapping[str, Any]) -> Any:
        return env[self.name]

    def _py(self, c: _PyCompiler) -> str:
        return c.column(self)

    def columns(self) -> set[str]:
        return {self.name}


@dataclass(frozen=True, eq=False)
class Lit(Expr):
    """A constant."""

    value: Any

    @property
    def nullable(self) -> bool:  # type: ignore[override]
        return self.value is None

    @property
    def boolean(self) -> bool:  # type: ignore[override]
        return isinstance(self.value, bool)

    def to_ibis(self, env: Mapping[str, Any]) -> Any:
        import ibis

        if self.value is None:
            return ibis.null("float64")
        if isinstance(self.value, bool):
            return ibis.literal(self.value)
        if isinstance(self.value, float):
            return ibis.literal(self.value, type="float64")
        return ibis.literal(self.value)

    def _py(self, c: _PyCompiler) -> str:
        return repr(self.value)


@dataclass(frozen=True, eq=False)
class Bin(Expr):
    """A binary operation."""

    op: str
    a: Expr
    b: Expr

    @property
    def nullable(self) -> bool:  # type: ignore[override]
        if self.op in ("&", "|"):
            return False  # conditions: NULL counts as false
        return self.a.nullable or self.b.nullable

    @property
    def boolean(self) -> bool:  # type: ignore[override]
        return self.op in _CMP or self.op in ("&", "|")

    def children(self) -> tuple[Expr, ...]:
        return (self.a, self.b)

    def to_ibis(self, env: Mapping[str, Any]) -> Any:
        a, b = self.a.to_ibis(env), self.b.to_ibis(env)
        if self.op in ("&", "|"):
            a, b = _cond_ibis(self.a, a), _cond_ibis(self.b, b)
        if self.op == "/":
            a = a.cast("float64")
        return {
            "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
            "<": lambda: a < b, "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b,
            "==": lambda: a == b, "!=": lambda: a != b, "&": lambda: a & b, "|": lambda: a | b,
        }[self.op]()

    def _py(self, c: _PyCompiler) -> str:
        if self.op in ("&", "|"):
            word = "and" if self.op == "&" else "or"
            return f"({c.cond(self.a)} {word} {c.cond(self.b)})"
        a, b = c.value(self.a), c.value(self.b)
        op = self.op
        if op == "/" and not isinstance(self.b, Lit):
            # x / 0 is never used (formulas guard it); NULL keeps eager evaluation safe
            text = f"_div({a}, {b})"
        else:
            text = f"({a} {op} {b})"
        if not self.nullable:
            return text
        guards = [x for x, e in ((a, self.a), (b, self.b)) if e.nullable]
        test = " or ".join(f"{g} is None" for g in guards)
        return f"(None if ({test}) else {text})"


@dataclass(frozen=True, eq=False)
class IsIn(Expr):
    """Membership in a constant set."""

    a: Expr
    values: tuple[Any, ...]
    boolean = True

    def children(self) -> tuple[Expr, ...]:
        return (self.a,)

    def to_ibis(self, env: Mapping[str, Any]) -> Any:
        return self.a.to_ibis(env).isin(list(self.values))

    def _py(self, c: _PyCompiler) -> str:
        return f"({c.value(self.a)} in {set(self.values)!r})"


@dataclass(frozen=True, eq=False)
class Where(Expr):
    """``then`` where ``cond`` is true, else ``otherwise`` (a NULL condition is false)."""

    cond: Expr
    then: Expr
    otherwise: Expr

    @property
    def nullable(self) -> bool:  # type: ignore[override]
        return self.then.nullable or self.otherwise.nullable

    @property
    def boolean(self) -> bool:  # type: ignore[override]
        return self.then.boolean and self.otherwise.boolean

    def children(self) -> tuple[Expr, ...]:
        return (self.cond, self.then, self.otherwise)

    def to_ibis(self, env: Mapping[str, Any]) -> Any:
        import ibis

        cond = _cond_ibis(self.cond, self.cond.to_ibis(env))
        then, other = self.then.to_ibis(env), self.otherwise.to_ibis(env)
        if isinstance(self.otherwise, Lit) and self.otherwise.value is None:
            other = ibis.null(then.type())
        return cond.ifelse(then, other)

    def _py(self, c: _PyCompiler) -> str:
        return f"({c.value(self.then)} if {c.cond(self.cond)} else {c.value(self.otherwise)})"


_PY_FUNCS: dict[str, Callable[..., str]] = {}


@dataclass(frozen=True, eq=False)
class Call(Expr):
    """A function of sub-expressions (see the module's functions)."""

    fn: str
    args: tuple[Expr, ...] = field(default=())

    @property
    def nullable(self) -> bool:  # type: ignore[override]
        if self.fn in ("notnull", "isnull", "not"):
            return False
        if self.fn == "coalesce":
            return all(a.nullable for a in self.args)
        if self.fn == "ln":
            return True  # ln of a non-positive value is NULL
        return any(a.nullable for a in self.args)

    @property
    def boolean(self) -> bool:  # type: ignore[override]
        return self.fn in ("notnull", "isnull", "not")

    def children(self) -> tuple[Expr, ...]:
        return self.args

    def to_ibis(self, env: Mapping[str, Any]) -> Any:
        import ibis

        xs = [a.to_ibis(env) for a in self.args]
        fn = self.fn
        if fn == "not":
            return ~_cond_ibis(self.args[0], xs[0])
        if fn == "notnull":
            return xs[0].notnull()
        if fn == "isnull":
            return xs[0].isnull()
        if fn == "coalesce":
            return ibis.coalesce(*xs)
        if fn == "abs":
            return xs[0].abs()
        if fn == "ln":
            x = xs[0].cast("float64")
            return (x > 0).ifelse(x.ln(), ibis.null("float64"))
        if fn == "greatest":
            return ibis.greatest(*xs)
        if fn == "least":
            return ibis.least(*xs)
        if fn in ("day", "hour", "weekday", "epoch_seconds", "epoch_micros"):
            # integer arithmetic on epoch microseconds: UTC whatever the session time zone,
            # identical on every engine, and far cheaper than calendar functions on
            # zoned timestamps
            us = epoch_us(xs[0], env)
            if fn == "day":
                return us // US_PER_DAY
            if fn == "hour":
                return (us // 3_600_000_000) % 24
            if fn == "weekday":
                return ((us // US_PER_DAY) + 3) % 7
            if fn == "epoch_micros":
                return us
            return us // US_PER_SECOND
        if fn == "float":
            return xs[0].cast("float64")
        if fn == "sqrt":
            return xs[0].cast("float64").sqrt()
        raise ValueError(f"unknown function {fn}")

    def _py(self, c: _PyCompiler) -> str:
        fn = self.fn
        if fn == "not":
            return f"(not {c.cond(self.args[0])})"
        if fn in ("notnull", "isnull"):
            word = "is not" if fn == "notnull" else "is"
            return f"({c.value(self.args[0])} {word} None)"
        xs = [c.value(a) for a in self.args]
        if fn == "coalesce":
            if not self.args[0].nullable:
                return xs[0]
            return f"({xs[1]} if {xs[0]} is None else {xs[0]})"
        if fn == "ln":
            x = xs[0]
            return f"(_log({x}) if ({x} is not None and {x} > 0) else None)"
        body = {
            "abs": lambda: f"abs({xs[0]})",
            "greatest": lambda: f"max({', '.join(xs)})",
            "least": lambda: f"min({', '.join(xs)})",
            "day": lambda: f"({xs[0]} // {US_PER_DAY})",
            "hour": lambda: f"(({xs[0]} // 3600000000) % 24)",
            "weekday": lambda: f"((({xs[0]} // {US_PER_DAY}) + 3) % 7)",
            "epoch_seconds": lambda: f"({xs[0]} // {US_PER_SECOND})",
            "epoch_micros": lambda: xs[0],
            "float": lambda: f"float({xs[0]})",
            "sqrt": lambda: f"_sqrt({xs[0]})",
        }[fn]()
        if not self.nullable:
            return body
        guards = [x for x, a in zip(xs, self.args, strict=True) if a.nullable]
        return f"(None if ({' or '.join(f'{g} is None' for g in guards)}) else {body})"


@dataclass(frozen=True, eq=False)
class Named(Expr):
    """A named sub-expression (a derived column), computed once where it is used."""

    name: str
    expr: Expr

    @property
    def nullable(self) -> bool:  # type: ignore[override]
        return self.expr.nullable

    @property
    def boolean(self) -> bool:  # type: ignore[override]
        return self.expr.boolean

    def children(self) -> tuple[Expr, ...]:
        return (self.expr,)

    def to_ibis(self, env: Mapping[str, Any]) -> Any:
        if self.name in env:
            return env[self.name]
        return self.expr.to_ibis(env)

    def _py(self, c: _PyCompiler) -> str:
        return c.named(self)


def sqrt(x: Any) -> Expr:
    """Square root (of a non-negative value)."""
    return Call("sqrt", (as_expr(x),))


ENGINE_KEY = "__engine__"
"""Key of ``env`` naming the Ibis backend (``duckdb``, ``pyspark``) expressions compile for."""


@cache
def _epoch_us_udfs() -> dict[str, Any]:
    """Return the engines' builtin functions for microseconds since the epoch, by engine."""
    import ibis

    @ibis.udf.scalar.builtin(name="epoch_us")
    def duckdb_epoch_us(x) -> int:  # type: ignore[no-untyped-def,empty-body]
        """DuckDB: microseconds since the epoch."""

    @ibis.udf.scalar.builtin(name="unix_micros")
    def spark_epoch_us(x) -> int:  # type: ignore[no-untyped-def,empty-body]
        """Spark SQL: microseconds since the epoch."""

    return {"duckdb": duckdb_epoch_us, "pyspark": spark_epoch_us}


def epoch_us(ts: Any, env: Mapping[str, Any]) -> Any:
    """Ibis value of a timestamp's microseconds since the epoch, for the env's engine."""
    engine = env.get(ENGINE_KEY, "duckdb") if hasattr(env, "get") else "duckdb"
    udfs = _epoch_us_udfs()
    return udfs["pyspark" if engine == "pyspark" else "duckdb"](ts).cast("int64")


def safe_div(a: float, b: float) -> float | None:
    """Divide in float, NULL when ``b`` is 0 (Python side of formulas)."""
    return None if b == 0 else a / float(b)


def _cond_ibis(e: Expr, v: Any) -> Any:
    """Make an Ibis condition that takes NULL as false (as in Python)."""
    return v.fill_null(False) if e.nullable or not e.boolean else v


def as_expr(v: Any) -> Expr:
    """Wrap a Python constant as :class:`Lit` (expressions pass through)."""
    return v if isinstance(v, Expr) else Lit(v)


def col(name: str, *, nullable: bool = False, kind: str = "float") -> Col:
    """Refer to a named column."""
    return Col(name, nullable, kind)


def lit(value: Any) -> Lit:
    """Wrap a constant."""
    return Lit(value)


def where(cond: Expr, then: Any, otherwise: Any = None) -> Expr:
    """``then`` where ``cond`` holds, else ``otherwise`` (NULL by default)."""
    return Where(cond, as_expr(then), as_expr(otherwise))


def share(num: Any, den: Any) -> Expr:
    """``num / den``, NULL when ``den`` is 0 or NULL."""
    d = as_expr(den)
    return where(d > 0, as_expr(num) / d)


def ln(x: Any) -> Expr:
    """Natural logarithm; NULL for a non-positive value."""
    return Call("ln", (as_expr(x),))


def abs_(x: Any) -> Expr:
    """Absolute value."""
    return Call("abs", (as_expr(x),))


def greatest(*xs: Any) -> Expr:
    """Largest of the arguments."""
    return Call("greatest", tuple(as_expr(x) for x in xs))


def least(*xs: Any) -> Expr:
    """Smallest of the arguments."""
    return Call("least", tuple(as_expr(x) for x in xs))


def day(ts: Expr) -> Expr:
    """UTC day of a timestamp."""
    return Call("day", (ts,))


def hour(ts: Expr) -> Expr:
    """UTC hour of day (0-23)."""
    return Call("hour", (ts,))


def weekday(ts: Expr) -> Expr:
    """UTC day of the week, Monday = 0."""
    return Call("weekday", (ts,))


def epoch_seconds(ts: Expr) -> Expr:
    """Whole seconds since 1970-01-01 UTC (floored)."""
    return Call("epoch_seconds", (ts,))


def epoch_micros(ts: Expr) -> Expr:
    """Microseconds since 1970-01-01 UTC."""
    return Call("epoch_micros", (ts,))


def as_float(x: Any) -> Expr:
    """Cast to float."""
    return Call("float", (as_expr(x),))


# -- Python compilation -----------------------------------------------------------------


class _PyCompiler:
    """Compile expressions to Python source over locals read from a mapping ``f``.

    Columns are read once each into locals (``f['name']``, or ``f.get`` when nullable);
    nullable sub-expressions that are used more than once land in temporaries.
    """

    def __init__(self, source: str = "f") -> None:
        self.source = source
        self.reads: dict[str, str] = {}
        self.lines: list[str] = []
        self.temps: dict[int, str] = {}
        self.counter = [0]

    def column(self, c: Col) -> str:
        if c.name not in self.reads:
            local = f"c_{c.name}"
            getter = (f"{self.source}.get({c.name!r})" if c.nullable
                      else f"{self.source}[{c.name!r}]")
            self.reads[c.name] = local
            self.lines.append(f"{local} = {getter}")
        return self.reads[c.name]

    def child(self) -> _PyCompiler:
        """Open a nested block: it sees this compiler's locals and writes its own lines."""
        c = _PyCompiler(self.source)
        c.reads = dict(self.reads)
        c.temps = dict(self.temps)
        c.counter = self.counter
        return c

    def named(self, e: Named) -> str:
        key = id(e)
        if key not in self.temps:
            text = e.expr._py(self)
            name = f"d_{e.name}"
            self.lines.append(f"{name} = {text}")
            self.temps[key] = name
        return self.temps[key]

    def value(self, e: Expr) -> str:
        if isinstance(e, Named):
            return self.named(e)
        if e.nullable and not isinstance(e, (Col, Lit)):
            key = id(e)
            if key not in self.temps:
                self.counter[0] += 1
                name = f"t{self.counter[0]}"
                self.lines.append(f"{name} = {e._py(self)}")
                self.temps[key] = name
            return self.temps[key]
        return e._py(self)

    def cond(self, e: Expr) -> str:
        text = self.value(e)
        if e.nullable:
            return f"({text} is not None and {text})" if not e.boolean else f"bool({text})"
        return text


def py_source(e: Expr, c: _PyCompiler) -> str:
    """Python source of ``e`` (statements for its inputs are appended to ``c.lines``)."""
    return c.value(e)


def py_condition(e: Expr, c: _PyCompiler) -> str:
    """Python source of ``e`` as a condition (NULL is false)."""
    return c.cond(e)


def compile_py(exprs: Mapping[str, Expr]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """Compile named expressions to one Python function of a mapping of inputs."""
    c = _PyCompiler("env")
    outs = {name: c.value(e) for name, e in exprs.items()}
    body = "\n".join(f"    {line}" for line in c.lines)
    items = ", ".join(f"{k!r}: {v}" for k, v in outs.items())
    src = f"def _f(env):\n{body}\n    return {{{items}}}\n"
    ns: dict[str, Any] = {"_log": math.log, "_sqrt": math.sqrt, "_div": safe_div}
    exec(compile(src, "<traderseg formula>", "exec"), ns)  # noqa: S102 - our own declarations
    return ns["_f"]


# -- NumPy evaluation ------------------------------------------------------------------


def _np_truth(v: np.ndarray) -> np.ndarray:
    """Read a value as a condition: NULL (NaN) and 0 are false, as in Python."""
    return (v != 0) & ~np.isnan(v)


def _np_bool(b: np.ndarray) -> np.ndarray:
    return b.astype(np.float64)


_NP_ARITH: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add, "-": np.subtract, "*": np.multiply,
    "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
    "==": np.equal, "!=": np.not_equal,
}


class _NpEvaluator:
    """Evaluate expressions over float arrays, NULL as NaN, mirroring :class:`_PyCompiler`.

    Every value is a float64 array (conditions are 1.0 / 0.0, or NaN when NULL); both
    branches of :func:`where` are evaluated, so division by zero and logarithms of
    non-positive values are guarded as in SQL (NULL), never raised.
    """

    def __init__(self, env: Mapping[str, Any], n: int) -> None:
        self.env = env
        self.n = n
        self.memo: dict[int, np.ndarray] = {}

    def __call__(self, e: Expr) -> np.ndarray:
        key = id(e)
        out = self.memo.get(key)
        if out is None:
            out = self.memo[key] = self._eval(e)
        return out

    def _full(self, value: float) -> np.ndarray:
        return np.full(self.n, value, dtype=np.float64)

    def _eval(self, e: Expr) -> np.ndarray:  # noqa: C901 - one branch per node type
        if isinstance(e, Col):
            return np.asarray(self.env[e.name], dtype=np.float64)
        if isinstance(e, Lit):
            return self._full(np.nan if e.value is None else float(e.value))
        if isinstance(e, Named):
            return self(e.expr)
        if isinstance(e, Bin):
            if e.op in ("&", "|"):
                a, b = _np_truth(self(e.a)), _np_truth(self(e.b))
                return _np_bool(a & b if e.op == "&" else a | b)
            a, b = self(e.a), self(e.b)
            if e.op == "/":
                if isinstance(e.b, Lit):
                    return a / b
                out = np.full(self.n, np.nan)
                np.divide(a, b, out=out, where=b != 0)
                return out
            if e.op in _CMP:
                r = _np_bool(_NP_ARITH[e.op](a, b))
                if e.nullable:
                    r[np.isnan(a) | np.isnan(b)] = np.nan
                return r
            return _NP_ARITH[e.op](a, b)
        if isinstance(e, IsIn):
            return _np_bool(np.isin(self(e.a), [float(v) for v in e.values]))
        if isinstance(e, Where):
            return np.where(_np_truth(self(e.cond)), self(e.then), self(e.otherwise))
        if isinstance(e, Call):
            return self._call(e)
        raise TypeError(f"cannot evaluate {type(e).__name__} with NumPy")

    def _call(self, e: Call) -> np.ndarray:
        fn = e.fn
        xs = [self(a) for a in e.args]
        if fn == "not":
            return _np_bool(~_np_truth(xs[0]))
        if fn == "notnull":
            return _np_bool(~np.isnan(xs[0]))
        if fn == "isnull":
            return _np_bool(np.isnan(xs[0]))
        if fn == "coalesce":
            if not e.args[0].nullable:
                return xs[0]
            return np.where(np.isnan(xs[0]), xs[1], xs[0])
        if fn == "ln":
            x = xs[0]
            out = np.full(x.shape, np.nan)
            pos = np.flatnonzero(x > 0)
            # math.log value by value, as the Python side computes it: NumPy's vectorised
            # log may differ from it in the last bit (it does on some CPUs and releases)
            out[pos] = np.fromiter(map(math.log, x[pos].tolist()), np.float64, len(pos))
            return out
        if fn == "abs":
            return np.abs(xs[0])
        if fn == "greatest":
            return np.maximum.reduce(xs)
        if fn == "least":
            return np.minimum.reduce(xs)
        if fn == "day":
            return np.floor_divide(xs[0], US_PER_DAY)
        if fn == "hour":
            return np.floor_divide(xs[0], 3_600_000_000) % 24
        if fn == "weekday":
            return (np.floor_divide(xs[0], US_PER_DAY) + 3) % 7
        if fn == "epoch_seconds":
            return np.floor_divide(xs[0], US_PER_SECOND)
        if fn in ("epoch_micros", "float"):
            return xs[0]
        if fn == "sqrt":
            return np.sqrt(xs[0])
        raise ValueError(f"unknown function {fn}")


def compile_np(exprs: Mapping[str, Expr]) -> Callable[[Mapping[str, Any], int],
                                                     dict[str, np.ndarray]]:
    """Evaluate named expressions over arrays: ``f(env, n) -> {name: float array}``.

    ``env`` maps each column to an array (or sequence) of ``n`` values, NULL as NaN (or
    None in a sequence). The result equals the Python compilation (:func:`compile_py`)
    row by row, NULL as NaN.
    """
    items = dict(exprs)

    def evaluate(env: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
        ev = _NpEvaluator(env, n)
        with np.errstate(all="ignore"):
            return {name: ev(e) for name, e in items.items()}

    return evaluate


def new_compiler(source: str = "f") -> _PyCompiler:
    """Make a Python compiler reading inputs from the mapping named ``source``."""
    return _PyCompiler(source)


def to_ibis(e: Expr, env: Mapping[str, Any]) -> ir.Value:
    """Compile ``e`` to an Ibis value over ``env``."""
    return e.to_ibis(env)

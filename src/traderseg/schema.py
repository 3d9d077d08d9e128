"""Canonical data contracts: fills, accounts, market, transfers and the simulator's truth.

Each table is declared once as a tuple of :class:`Column` objects. The Arrow schema, the
DuckDB DDL and the documentation in ``docs/schema.md`` are all derived from these
declarations, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

KINDS = ("spot", "perp", "future", "option")
SIDES = ("buy", "sell")
POSITION_EFFECTS = ("open", "close")
OPTION_TYPES = ("call", "put")
TRANSFER_DIRECTIONS = ("deposit", "withdrawal")


@dataclass(frozen=True)
class Column:
    """One column of a canonical table.

    Parameters
    ----------
    name : str
        Column name.
    type : pyarrow.DataType
        Arrow type of the column.
    required : bool
        Whether every row must carry a value.
    description : str
        What the column means.
    unit : str
        Unit of the value ("USD", "contracts", "UTC", "" for labels).
    allowed : tuple of str, optional
        Accepted values for a label column.
    """

    name: str
    type: pa.DataType
    required: bool
    description: str
    unit: str = ""
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Table:
    """A canonical table: a name, a primary key and its columns."""

    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str

    @property
    def names(self) -> list[str]:
        """Column names in declaration order."""
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        """Names of the required columns."""
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        """Return the column called ``name``."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def arrow_schema(self) -> pa.Schema:
        """Arrow schema of the table (required columns are non-nullable)."""
        return pa.schema(
            [
                pa.field(
                    c.name,
                    c.type,
                    nullable=not c.required,
                    metadata={"description": c.description, "unit": c.unit},
                )
                for c in self.columns
            ]
        )

    def duckdb_ddl(
        self, table_name: str | None = None, extra: Sequence[str] = (), primary_key: bool = False
    ) -> str:
        """``CREATE TABLE IF NOT EXISTS`` statement for DuckDB.

        Keys are enforced by the ingest (anti-join on the key) rather than by a DuckDB
        index unless ``primary_key`` is set: an index on tens of millions of fill ids
        costs gigabytes of memory and slows bulk loads.
        """
        cols = [
            f"{c.name} {_duck_type(c.type)}{' NOT NULL' if c.required else ''}"
            for c in self.columns
        ]
        cols.extend(extra)
        if self.key and primary_key:
            cols.append(f"PRIMARY KEY ({', '.join(self.key)})")
        body = ",\n  ".join(cols)
        return f"CREATE TABLE IF NOT EXISTS {table_name or self.name} (\n  {body}\n)"


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    if pa.types.is_floating(t):
        return "DOUBLE"
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    return "VARCHAR"


FILLS = Table(
    name="fills",
    key=("fill_id",),
    description="One row per execution of one account (a trade, seen from one side).",
    columns=(
        Column("fill_id", pa.string(), True, "Unique id of the execution for this account; dedupe key."),
        Column("ts", TS, True, "Execution time, UTC, microsecond precision.", "UTC"),
        Column("account_id", pa.string(), True, "Venue account (or wallet) that was filled."),
        Column("instrument", pa.string(), True, "Venue instrument name, e.g. BTC-27DEC24-60000-C."),
        Column("underlying", pa.string(), True, "Underlying asset, upper case, e.g. BTC."),
        Column("kind", pa.string(), True, "Instrument kind.", "", KINDS),
        Column("side", pa.string(), True, "Direction of this account's fill.", "", SIDES),
        Column("qty", pa.float64(), True, "Filled quantity (> 0), in contracts or coins.", "contracts"),
        Column("price", pa.float64(), True, "Fill price (> 0) in the instrument's quote.", "quote"),
        Column("notional_usd", pa.float64(), True, "Notional of the fill (>= 0); for options the underlying notional.", "USD"),
        Column("fee_usd", pa.float64(), True, "Fee paid to the venue; negative is a rebate.", "USD"),
        Column("is_maker", pa.bool_(), True, "True when this side provided liquidity."),
        Column("leverage", pa.float64(), False, "Account leverage on the position at fill time (>= 1).", "x"),
        Column("position_effect", pa.string(), False, "Whether the fill opens or closes exposure.", "", POSITION_EFFECTS),
        Column("realized_pnl_usd", pa.float64(), False, "PnL realised by this fill (closing fills).", "USD"),
        Column("is_liquidation", pa.bool_(), False, "True when the fill was a forced liquidation."),
        Column("option_type", pa.string(), False, "Option right (options only).", "", OPTION_TYPES),
        Column("strike", pa.float64(), False, "Option strike in USD (options only).", "USD"),
        Column("expiry", TS, False, "Expiry time of an option or future, UTC.", "UTC"),
        Column("underlying_price", pa.float64(), False, "Underlying index price at fill time.", "USD"),
        Column("iv", pa.float64(), False, "Implied volatility of the option fill, annualised, as a fraction (0.65 = 65%).", "fraction"),
        Column("delta", pa.float64(), False, "Option delta per contract from the buyer's view (call in [0,1], put in [-1,0]).", ""),
    ),
)

ACCOUNTS = Table(
    name="accounts",
    key=("account_id",),
    description="One row per account, with the attributes used for overlays and bias audits.",
    columns=(
        Column("account_id", pa.string(), True, "Venue account (or wallet)."),
        Column("created_at", TS, True, "Sign-up time, UTC.", "UTC"),
        Column("region", pa.string(), False, "Region of residence (e.g. EU, APAC, LATAM)."),
        Column("kyc_tier", pa.int64(), False, "Know-your-customer tier, 0 (none) to 3 (institutional)."),
        Column("channel", pa.string(), False, "Acquisition channel (organic, referral, paid, institutional)."),
        Column("vip_tier", pa.int64(), False, "Fee tier, 0 (retail) upwards."),
    ),
)

MARKET = Table(
    name="market",
    key=("ts", "underlying"),
    description="Market series per underlying: index price, implied-vol index and marked events.",
    columns=(
        Column("ts", TS, True, "Bar time, UTC (daily bars start at 00:00).", "UTC"),
        Column("underlying", pa.string(), True, "Underlying asset, e.g. BTC."),
        Column("price", pa.float64(), True, "Index (close) price.", "USD"),
        Column("high", pa.float64(), False, "High of the bar.", "USD"),
        Column("low", pa.float64(), False, "Low of the bar.", "USD"),
        Column("iv_index", pa.float64(), False, "30-day implied-volatility index, annualised percent (DVOL).", "percent"),
        Column("event", pa.string(), False, "Market event marked on this bar (crash, rally, vol_spike), if any."),
        Column("event_start", TS, False, "Time the event began within the bar, when known (the simulator's scripted crash: the start of the drop).", "UTC"),
    ),
)

TRANSFERS = Table(
    name="transfers",
    key=("transfer_id",),
    description="Deposits and withdrawals of accounts.",
    columns=(
        Column("transfer_id", pa.string(), True, "Unique id of the transfer."),
        Column("ts", TS, True, "Time of the transfer, UTC.", "UTC"),
        Column("account_id", pa.string(), True, "Account."),
        Column("direction", pa.string(), True, "Deposit or withdrawal.", "", TRANSFER_DIRECTIONS),
        Column("amount_usd", pa.float64(), True, "Amount (> 0).", "USD"),
    ),
)

TRUTH = Table(
    name="truth",
    key=("account_id",),
    description="Simulator ground truth: each account's archetype (blend, migration) and churn time and cause.",
    columns=(
        Column("account_id", pa.string(), True, "Simulated account."),
        Column("archetype", pa.string(), True, "Archetype the simulator drew the account from."),
        Column("created_at", TS, True, "Sign-up time.", "UTC"),
        Column("churned_at", TS, False, "Time the account stopped trading for good (null if it never churned).", "UTC"),
        Column("archetype_weight", pa.float64(), False, "Share of the account's opening trades that follow `archetype` (1 for a pure account; `archetype` is the dominant one)."),
        Column("second_archetype", pa.string(), False, "Archetype the account blends with (null for a pure or migrating account)."),
        Column("second_weight", pa.float64(), False, "Share of opening trades that follow `second_archetype` (1 - `archetype_weight`)."),
        Column("migrated_to", pa.string(), False, "Archetype the account moved to during the window (null if it did not move)."),
        Column("migrated_at", TS, False, "Start of the UTC day from which the account trades as `migrated_to`.", "UTC"),
        Column("churn_cause", pa.string(), False, "Largest term of the churn hazard on the churn day (null if the account never churned).", allowed=("baseline", "losses", "liquidations", "fading")),
        Column("crash_liquidated_at", TS, False, "Time of the account's first liquidation by the scripted crash's drop (null when it had none, or without a crash).", "UTC"),
    ),
)

REJECTS = Table(
    name="rejects",
    key=(),
    description="Rows refused at ingest, with where they came from and why.",
    columns=(
        Column("source", pa.string(), True, "Source file the row came from."),
        Column("line", pa.int64(), True, "1-based line (CSV, counting the header) or row number (Parquet/JSON)."),
        Column("field", pa.string(), True, "Field that failed (or '*' for the whole row)."),
        Column("reason", pa.string(), True, "Why the row was refused."),
        Column("raw", pa.string(), False, "The raw row, as JSON."),
        Column("ingested_at", TS, True, "When the ingest run saw it.", "UTC"),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (FILLS, ACCOUNTS, MARKET, TRANSFERS, TRUTH, REJECTS)}

# Columns the store adds to a table at ingest; sources do not carry them.
STORE_COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "fills": (("source", "string", "Resolved path of the file the fill was ingested from."),),
}


def schema_markdown() -> str:
    """Render every canonical table as Markdown (the source of ``docs/schema.md``)."""
    out = [
        "# Canonical schema",
        "",
        "Generated from `traderseg.schema`; do not edit by hand "
        "(`python -m traderseg.schema > docs/schema.md`).",
        "",
    ]
    for t in TABLES.values():
        out += [f"## `{t.name}`", "", t.description, ""]
        if t.key:
            out += [f"Key: `{', '.join(t.key)}`.", ""]
        out += ["| column | type | required | unit | meaning |", "| --- | --- | --- | --- | --- |"]
        for c in t.columns:
            meaning = c.description
            if c.allowed:
                meaning += " One of: " + ", ".join(f"`{a}`" for a in c.allowed) + "."
            out.append(
                f"| `{c.name}` | {c.type} | {'yes' if c.required else 'no'} | {c.unit} | {meaning} |"
            )
        for name, typ, meaning in STORE_COLUMNS.get(t.name, ()):
            out.append(f"| `{name}` | {typ} | set by the store |  | {meaning} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(schema_markdown() + "\n")

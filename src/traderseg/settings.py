"""One settings object for the whole library (environment prefix ``TRADERSEG_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from traderseg.errors import ConfigError

PACKAGE_DATA = Path(__file__).parent / "data"


class Settings(BaseSettings):
    """Runtime settings; read from ``TRADERSEG_*`` environment variables.

    Attributes
    ----------
    market_data_dir : Path
        Folder with the real daily market series (BTC, ETH OHLCV and BTC DVOL) used by the
        simulator and by the event detector. Defaults to the copy shipped in the package.
    duckdb_threads : int or None
        Threads DuckDB may use; ``None`` lets DuckDB decide.
    duckdb_memory_limit : str or None
        DuckDB memory limit such as ``"4GB"``; ``None`` lets DuckDB decide.
    sql_cache : bool
        Keep the catalogue's compiled SQL on disk between runs
        (:mod:`traderseg.features.sqlcache`); templates are always kept in memory.
    sql_cache_dir : Path or None
        Folder of that cache; ``None``: ``$XDG_CACHE_HOME/traderseg/sql`` or
        ``~/.cache/traderseg/sql``.
    """

    model_config = SettingsConfigDict(env_prefix="TRADERSEG_")

    market_data_dir: Path = PACKAGE_DATA
    duckdb_threads: int | None = None
    duckdb_memory_limit: str | None = None
    sql_cache: bool = True
    sql_cache_dir: Path | None = None


def get_settings() -> Settings:
    """Return settings read from the environment now.

    Raises
    ------
    ConfigError
        A ``TRADERSEG_*`` variable holds a value of the wrong kind; the message names it.
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"TRADERSEG_{'_'.join(map(str, e['loc'])).upper()}={e.get('input')!r}: {e['msg']}"
            for e in exc.errors())
        raise ConfigError(f"environment: {problems}") from None

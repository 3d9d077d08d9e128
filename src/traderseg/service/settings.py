"""Settings of the service (environment prefix ``TRADERSEG_SERVICE_``).

Several venues are served by one process, each from its own store file: ``venues`` maps a
venue name to its store and model. An API key is bound to one venue and every request
made with it only ever opens that venue's store, so no query can reach another venue's
accounts.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class VenueStore(BaseModel):
    """Where one venue's data is.

    Attributes
    ----------
    db : Path
        The venue's DuckDB store.
    model : Path
        Saved segment model used to assign its accounts.
    as_of : str or None
        Cutoff of the account book; ``None``: the day after the store's last fill.
    """

    db: Path
    model: Path
    as_of: str | None = None


class ServiceSettings(BaseSettings):
    """Settings of :func:`traderseg.service.create_app`.

    Attributes
    ----------
    venues : dict of str to VenueStore
        Venue name -> store and model (JSON in ``TRADERSEG_SERVICE_VENUES``).
    keys_file : Path
        The API key file (``traderseg keys create`` writes it; only slow hashes in it).
    secure_cookies : bool
        Mark the dashboard's session cookie ``Secure`` (only sent over HTTPS); on behind
        a TLS proxy.
    session_minutes : int
        Lifetime of a dashboard session.
    max_upload_mb : int
        Largest file the ingest endpoint accepts.
    """

    model_config = SettingsConfigDict(env_prefix="TRADERSEG_SERVICE_")

    venues: dict[str, VenueStore] = Field(default_factory=dict)
    keys_file: Path = Path("traderseg-keys.json")
    secure_cookies: bool = False
    session_minutes: int = Field(480, gt=0)
    max_upload_mb: int = Field(200, gt=0)

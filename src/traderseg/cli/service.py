"""``traderseg serve`` and ``traderseg keys``: the HTTP service and its API keys."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import typer

from traderseg.cli import app, console
from traderseg.errors import ConfigError, DataError

keys_app = typer.Typer(help="API keys of the service: create (shown once), list, revoke.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")

KEYS_HELP = "Key file (only slow hashes of the keys are kept in it)."
DEFAULT_KEYS = Path("traderseg-keys.json")


def _check_listen(host: str, port: int) -> None:
    """Refuse, before any work, an address the server could not listen on."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"--host {host}: not an address of this machine ({exc})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"--host {host} --port {port}: cannot listen there "
                              f"({exc.strerror or exc})") from None


@app.command("serve")
def serve_command(
    db: Path = typer.Option(None, "--db", help="The venue's DuckDB store."),
    model: Path = typer.Option(None, "--model", help="Saved segment model of the venue."),
    venue: str = typer.Option("default", "--venue",
                              help="Name of the venue --db holds (keys are bound to it)."),
    venues: Path = typer.Option(
        None, "--venues",
        help="JSON file naming several venues: {\"name\": {\"db\": ..., \"model\": ...}}."),
    keys: Path = typer.Option(DEFAULT_KEYS, "--keys", help=KEYS_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    secure_cookies: bool = typer.Option(
        False, "--secure-cookies", help="Send the dashboard's cookie over HTTPS only."),
) -> None:
    """Run the API and the dashboard with uvicorn (one store per venue).

    Give ``--db`` and ``--model`` for one venue, or ``--venues`` for several.
    """
    import uvicorn

    from traderseg.service import ServiceSettings, VenueStore, create_app
    from traderseg.service.keys import check_venue_name
    from traderseg.service.state import open_state

    if venues is not None:
        if db is not None or model is not None:
            raise ConfigError("give either --venues or --db with --model, not both")
        try:
            table = json.loads(venues.read_text(encoding="utf-8"))
            stores = {str(k): VenueStore.model_validate(v) for k, v in table.items()}
        except (OSError, ValueError, AttributeError) as exc:
            raise ConfigError(f"--venues {venues}: {' '.join(str(exc).split())}") from None
    elif db is None or model is None:
        raise ConfigError("give --db and --model (or --venues)")
    else:
        stores = {venue: VenueStore(db=db, model=model)}
    for name, s in stores.items():
        check_venue_name(name)
        if not s.db.is_file():
            raise DataError(f"venue {name}: store {s.db} not found")
    _check_listen(host, port)
    settings = ServiceSettings(venues=stores, keys_file=keys, secure_cookies=secure_cookies)
    # the venues and the key file are opened and read before the server starts, so a bad
    # store, model or key file is one line (exit 2), not a failed startup
    state = open_state(settings)
    try:
        state.keys.keys()
    except BaseException:
        state.close()
        raise
    console.print(f"serving {', '.join(stores)} on http://{host}:{port} (dashboard /ui/)")
    uvicorn.run(create_app(settings, state), host=host, port=port, log_level="info")


@keys_app.command("create")
def keys_create(
    role: str = typer.Option(..., "--role", help="risk, growth, analyst, compliance or admin."),
    venue: str = typer.Option(..., "--venue", help="The one venue the key may read."),
    keys: Path = typer.Option(DEFAULT_KEYS, "--keys", help=KEYS_HELP),
) -> None:
    """Create a key and print it once: it is not stored, only its hash."""
    from traderseg.service.keys import KeyStore

    key, token = KeyStore(keys).create(role, venue)
    console.print(f"key {key.key_id}: role {key.role}, venue {key.venue}; keep it now, it "
                  "is not shown again:", soft_wrap=True, markup=False)
    console.print(token, soft_wrap=True, markup=False)


@keys_app.command("list")
def keys_list(keys: Path = typer.Option(DEFAULT_KEYS, "--keys", help=KEYS_HELP)) -> None:
    """List the keys (id, role, venue, created, revoked); never the keys themselves."""
    from traderseg.cli import format as fmt
    from traderseg.service.keys import KeyStore

    if not keys.exists():
        raise DataError(f"{keys}: no key file (create a key first)")
    out = fmt.table(f"keys in {keys}", ["key id", "role", "venue", "created", "revoked"],
                    [False] * 5)
    fmt.add_rows(out, [(k.key_id, k.role, k.venue, k.created_at, k.revoked_at or "")
                       for k in KeyStore(keys).keys()])
    console.print(out)


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="Id of the key (the part after tsk_)."),
    keys: Path = typer.Option(DEFAULT_KEYS, "--keys", help=KEYS_HELP),
) -> None:
    """Revoke a key: a running service refuses it from its next request."""
    from traderseg.service.keys import KeyStore

    key = KeyStore(keys).revoke(key_id)
    console.print(f"key {key.key_id} revoked at {key.revoked_at}", markup=False)

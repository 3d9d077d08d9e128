"""Command-line interface: thin adapters over the library.

Each stage has its own module registering its commands on :data:`app`; domain errors
(:class:`traderseg.errors.TradersegError`) become a one-line message and exit code 2.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer
from rich.console import Console
from rich.markup import escape

from traderseg.errors import TradersegError

app = typer.Typer(
    name="traderseg",
    help="Segment the traders of a crypto derivatives venue and turn segments into decisions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
analyze_app = typer.Typer(
    help="Analyses over segments: profitability, revenue drivers, market events, migration.",
    no_args_is_help=True,
)
app.add_typer(analyze_app, name="analyze")
# `traderseg audit` reads the control audit log; its subcommands are the other audits
# (fairness). The log reader is the group's callback, run when no subcommand is given.
audit_app = typer.Typer(
    help="The control audit log (no subcommand) and the other audits (fairness).",
    invoke_without_command=True,
)
app.add_typer(audit_app, name="audit")


def _version(value: bool) -> None:
    if value:
        from traderseg import __version__

        console.print(f"traderseg {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Show the library's log (chosen k, per-source counts)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Segment the traders of a crypto derivatives venue and turn segments into decisions."""
    _configure_logging(verbose)


def _configure_logging(verbose: bool) -> None:
    """Log to stderr: the library's info messages with --verbose, else warnings and errors."""
    root = logging.getLogger("traderseg")
    for h in list(root.handlers):
        if getattr(h, "_traderseg_cli", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LevelFormatter(verbose))
    handler._traderseg_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)


class _LevelFormatter(logging.Formatter):
    """``warning: message``; with --verbose also the logger's name."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:  # noqa: D102
        where = f" {record.name}" if self.verbose else ""
        return f"{record.levelname.lower()}{where}: {record.getMessage()}"
console = Console()
err_console = Console(stderr=True)

# Modules that register commands on `app`, each owning one stage of the pipeline, with the
# top-level names they register (a test checks both ways). A command imports its module
# alone: the libraries of the other stages (models, lifetime value, Spark) load only when
# one of their commands runs.
_COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "traderseg.cli.simulate": ("simulate",),
    "traderseg.cli.ingest": ("ingest",),
    "traderseg.cli.features": ("features",),
    "traderseg.cli.segment": ("fit", "segments", "assign", "explain", "evaluate"),
    "traderseg.cli.events": ("analyze",),
    "traderseg.cli.clv": ("clv",),
    "traderseg.cli.analysis": ("analyze", "churn"),
    "traderseg.cli.report": ("report",),
    "traderseg.cli.online": ("stream", "controls", "audit"),
    "traderseg.cli.policy": ("policy", "predict", "liquidation"),
    "traderseg.cli.growth": ("audience", "campaign"),
    "traderseg.cli.compliance": ("audit", "review-queue"),
    "traderseg.cli.models": ("drift", "refit", "models", "promote", "register"),
    "traderseg.cli.service": ("serve", "keys"),
}


def _command_name(argv: list[str]) -> str | None:
    """Return the command of a command line: its first word that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


def _load_commands(name: str | None = None) -> None:
    """Import the modules registering ``name`` (every module for None or an unknown name)."""
    wanted = [m for m, names in _COMMAND_MODULES.items() if name in names]
    for module in wanted or list(_COMMAND_MODULES):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; domain errors print a clean message and exit with code 2."""
    words = sys.argv[1:] if argv is None else argv
    name = _command_name(words)
    if name is not None or "--version" not in words:  # the version needs no command
        _load_commands(name)
    try:
        # standalone mode: usage errors print their message and exit 2, --help exits 0
        app(args=argv, prog_name="traderseg")
    except TradersegError as exc:
        err_console.print(f"[bold red]error:[/] {one_line(exc)}", soft_wrap=True)
        sys.exit(2)


def one_line(exc: BaseException) -> str:
    """Return the message of ``exc`` on one line, with rich markup characters escaped."""
    return escape(" ".join(str(exc).split()))

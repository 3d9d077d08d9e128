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

# Modules that register commands on `app`; each owns one stage of the pipeline.
_COMMAND_MODULES = (
    "traderseg.cli.simulate",
    "traderseg.cli.ingest",
    "traderseg.cli.features",
    "traderseg.cli.segment",
    "traderseg.cli.events",
    "traderseg.cli.clv",
    "traderseg.cli.analysis",
    "traderseg.cli.report",
    "traderseg.cli.online",
    "traderseg.cli.policy",
    "traderseg.cli.growth",
    "traderseg.cli.compliance",
    "traderseg.cli.models",
    "traderseg.cli.service",
)


def _load_commands() -> None:
    for name in _COMMAND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; domain errors print a clean message and exit with code 2."""
    _load_commands()
    try:
        # standalone mode: usage errors print their message and exit 2, --help exits 0
        app(args=argv, prog_name="traderseg")
    except TradersegError as exc:
        err_console.print(f"[bold red]error:[/] {one_line(exc)}", soft_wrap=True)
        sys.exit(2)


def one_line(exc: BaseException) -> str:
    """Return the message of ``exc`` on one line, with rich markup characters escaped."""
    return escape(" ".join(str(exc).split()))

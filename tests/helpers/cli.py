"""Run the traderseg CLI in process from a test (import as ``helpers.cli``)."""

from __future__ import annotations

import pytest


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int | str, str, str]:
    """Run the CLI in process; return (exit code, stdout, stderr).

    A run that returns without raising ``SystemExit``, or raises it without a code,
    exited with 0, as a process would.
    """
    from traderseg.cli import main

    try:
        main(argv)
        code: int | str = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def run_cli_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int | str, str]:
    """Run the CLI in process; return (exit code, stdout followed by stderr)."""
    code, out, err = run_cli(argv, capsys)
    return code, out + err

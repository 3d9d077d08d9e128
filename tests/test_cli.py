"""Every CLI command documents itself and answers --help."""

import pytest
from typer.testing import CliRunner

from helpers.cli import run_cli
from traderseg.cli import _load_commands, app

_load_commands()
runner = CliRunner()


def _commands(group, prefix=()):
    import typer.main

    cmd = typer.main.get_command(group)
    out = []
    for name, sub in cmd.commands.items():
        if hasattr(sub, "commands"):
            for sname, ssub in sub.commands.items():
                out.append(((*prefix, name, sname), ssub))
        else:
            out.append(((*prefix, name), sub))
    return out


COMMANDS = _commands(app)


def test_the_pipeline_commands_are_all_there():
    names = {" ".join(p) for p, _ in COMMANDS}
    for expected in ("simulate", "ingest", "features", "fit", "segments", "assign", "explain",
                     "evaluate", "clv", "churn", "analyze profitability", "analyze drivers",
                     "analyze events", "analyze event-study", "analyze migration"):
        assert expected in names


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_has_help_text(path, cmd):
    assert (cmd.help or "").strip(), f"{' '.join(path)} has no help text"
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_a_bad_setting_in_the_environment_is_one_line_naming_the_variable(
        tmp_path, capsys, monkeypatch):
    import duckdb

    duckdb.connect(str(tmp_path / "s.duckdb")).close()
    monkeypatch.setenv("TRADERSEG_SQL_CACHE", "maybe")
    monkeypatch.setenv("TRADERSEG_DUCKDB_THREADS", "two")
    code, out, err = run_cli(["features", "--db", str(tmp_path / "s.duckdb"), "--as-of",
                              "2024-02-01", "--out", str(tmp_path / "f.parquet")], capsys)
    assert code == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "TRADERSEG_SQL_CACHE='maybe'" in err and "TRADERSEG_DUCKDB_THREADS='two'" in err
    monkeypatch.setenv("TRADERSEG_SQL_CACHE", "false")
    monkeypatch.setenv("TRADERSEG_DUCKDB_THREADS", "2")
    from traderseg.settings import get_settings

    assert get_settings().sql_cache is False and get_settings().duckdb_threads == 2

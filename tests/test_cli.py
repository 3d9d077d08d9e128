"""Every CLI command documents itself and answers --help."""

import pytest
from typer.testing import CliRunner

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

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


_REGISTERED = """
import importlib, json, sys
from traderseg import cli

def names():
    out = {c.name for c in cli.app.registered_commands}
    out |= {g.name for g in cli.app.registered_groups if g.name not in ("analyze", "audit")}
    if cli.analyze_app.registered_commands:
        out.add("analyze")
    if cli.audit_app.registered_commands or cli.audit_app.registered_callback:
        out.add("audit")
    return out

before = names()
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(names() - before)))
print(json.dumps(sorted(m for m in sys.modules if m.startswith("traderseg.cli."))))
"""


def test_each_command_module_registers_the_names_it_is_loaded_for():
    """A command line imports only the modules mapped to its command: each module, loaded
    alone, registers exactly those names and loads no other command module."""
    import json
    import subprocess
    import sys

    from traderseg.cli import _COMMAND_MODULES

    for module, names in _COMMAND_MODULES.items():
        out = subprocess.run([sys.executable, "-c", _REGISTERED, module], check=True,
                             capture_output=True, text=True).stdout.splitlines()
        assert json.loads(out[0]) == sorted(set(names)), module
        others = set(json.loads(out[1])) & set(_COMMAND_MODULES) - {module}
        assert not others, (module, others)
    # and every command of the whole app is mapped
    top = {path[0] for path, _ in COMMANDS}
    assert top == {n for names in _COMMAND_MODULES.values() for n in names}


def _modules_after(argv: list[str], shown: str) -> list[str]:
    """Run the CLI on ``argv`` in a fresh interpreter; return its output lines, the last
    being the sorted modules of ``sys.modules`` the expression ``shown`` keeps (``m``)."""
    import subprocess
    import sys

    code = ("import sys; from traderseg.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in sys.modules if {shown}))")
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                          text=True).stdout.splitlines()


def test_a_command_loads_only_its_own_stage():
    """`traderseg features` does not import the models' libraries (scikit-learn, skops)."""
    out = _modules_after(["features", "--help"],
                         "m in ('sklearn', 'skops', 'statsmodels', 'traderseg.cli.models')")
    assert out[-1] == "[]"


def test_the_version_loads_no_command():
    out = _modules_after(["--version"], "m.startswith('traderseg.cli.') and m not in "
                         "('traderseg.cli.format', 'traderseg.cli.args', 'traderseg.cli.paths')")
    assert out[0].startswith("traderseg ")
    assert out[-1] == "[]"


@pytest.mark.parametrize("argv, name", [
    (["features", "--db", "x"], "features"), (["-v", "analyze", "events"], "analyze"),
    (["--version"], None), ([], None)])
def test_the_command_of_a_command_line(argv, name):
    from traderseg.cli import _command_name

    assert _command_name(argv) == name

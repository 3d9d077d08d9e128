"""``traderseg keys`` and ``traderseg serve``: keys shown once, clean one-line errors."""

import json
import re

from helpers.cli import run_cli
from helpers.redis_server import free_port
from traderseg.service.keys import KeyStore


def test_keys_create_prints_the_key_once_and_list_never_shows_it(tmp_path, capsys):
    keys = tmp_path / "k.json"
    code, out, _ = run_cli(["keys", "create", "--role", "growth", "--venue", "alpha",
                            "--keys", str(keys)], capsys)
    assert code == 0
    token = re.search(r"tsk_[0-9a-f]{12}_\S{43}", out).group(0)
    assert KeyStore(keys).verify(token).role == "growth"
    code, out, _ = run_cli(["keys", "list", "--keys", str(keys)], capsys)
    assert code == 0 and "growth" in out and token.split("_", 2)[2] not in out
    key_id = token.split("_")[1]
    assert run_cli(["keys", "revoke", key_id, "--keys", str(keys)], capsys)[0] == 0
    assert KeyStore(keys).verify(token) is None
    assert json.loads(keys.read_text())["keys"][0]["revoked_at"]


def test_bad_role_and_missing_store_are_one_line_errors(tmp_path, capsys):
    code, _, err = run_cli(["keys", "create", "--role", "boss", "--venue", "a",
                            "--keys", str(tmp_path / "k.json")], capsys)
    assert code == 2 and "unknown role 'boss'" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["serve", "--db", str(tmp_path / "none.duckdb"), "--model",
                            str(tmp_path), "--keys", str(tmp_path / "k.json")], capsys)
    assert code == 2 and "not found" in err
    code, _, err = run_cli(["serve"], capsys)
    assert code == 2 and "--db" in err


def test_a_bad_store_model_or_key_file_stops_serve_before_it_starts(tmp_path, capsys,
                                                                    monkeypatch):
    import duckdb
    import uvicorn

    def started(*args, **kwargs):
        raise AssertionError("the server started")

    monkeypatch.setattr(uvicorn, "run", started)  # a regression fails here, never hangs

    text = tmp_path / "text.duckdb"
    text.write_text("not a store")
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    model = tmp_path / "model"
    model.mkdir()
    for argv, message in (
        (["--db", str(text), "--model", str(model)], f"{text}: is not a DuckDB store file"),
        (["--db", str(empty), "--model", str(tmp_path / "nope")],
         f"model folder {tmp_path / 'nope'} not found"),
    ):
        code, out, err = run_cli(["serve", *argv, "--keys", str(tmp_path / "k.json"),
                                  "--port", str(free_port())], capsys)
        assert code == 2 and message in err, err
        assert "Traceback" not in out + err and len(err.strip().splitlines()) == 1


def test_a_key_file_that_is_not_one_stops_serve_before_it_starts(venues, tmp_path, capsys,
                                                                  monkeypatch):
    import shutil

    import uvicorn

    def started(*args, **kwargs):
        raise AssertionError("the server started")

    monkeypatch.setattr(uvicorn, "run", started)

    db = tmp_path / "alpha.duckdb"
    shutil.copy(venues["root"] / "pristine" / "alpha.duckdb", db)
    garbage = tmp_path / "keys.json"
    garbage.write_text("{not json")
    code, out, err = run_cli(["serve", "--db", str(db), "--model", str(venues["model"]),
                              "--keys", str(garbage), "--port", str(free_port())], capsys)
    assert code == 2 and "Traceback" not in out + err, err
    assert f"{garbage}: not a traderseg key file" in err

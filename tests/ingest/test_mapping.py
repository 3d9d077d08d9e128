from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from traderseg.errors import ConfigError, SchemaError
from traderseg.ingest import ingest
from traderseg.ingest.mapping import parse_mapping

from .conftest import DATA, NOW, fills_by_id, rejects


def test_mapping_import(store):
    rep = ingest(DATA / "generic_trades.csv", store, mapping=DATA / "generic_mapping.yaml",
                 now=NOW)
    s = rep.sources[0]
    assert (s.read, s.stored, s.rejected) == (3, 2, 1)
    got = fills_by_id(store)
    t1 = got["T-1"]
    assert t1["ts"] == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert (t1["side"], t1["kind"], t1["underlying"], t1["is_maker"]) == ("buy", "perp", "BTC", True)
    assert t1["qty"] == pytest.approx(1.5)
    assert t1["notional_usd"] == pytest.approx(1.5 * 62000.5)
    assert t1["fee_usd"] == pytest.approx(-0.93)
    assert got["T-2"]["is_maker"] is False
    [rej] = rejects(store)
    assert (rej["line"], rej["field"]) == (4, "side") and "'X'" in rej["reason"]


BASE = {"columns": {"fill_id": "a", "ts": "b", "account_id": "c", "instrument": "d",
                    "underlying": "e", "kind": {"const": "perp"}, "side": "f", "qty": "g",
                    "price": "h", "notional_usd": "i", "fee_usd": "j", "is_maker": "k"}}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"colums": {}}, "colums"),
        ({"table": "orders"}, "orders"),
        ({"columns": {"fee": "x"}}, "columns.fee"),
        ({"columns": {"qty": {"column": "g", "scael": 2}}}, "scael"),
        ({"columns": {"qty": {"column": "g", "const": 1}}}, "exactly one"),
        ({"columns": {"kind": {"const": "swap"}}}, "columns.kind.const"),
        ({"columns": {"side": {"column": "f", "scale": 2}}}, "columns.side.scale"),
        ({"columns": {"ts": {"column": "b", "format": "weeks"}}}, "columns.ts.format"),
        ({"columns": {"qty": {"column": "g", "scale": "big"}}}, "columns.qty.scale"),
    ],
)
def test_invalid_mapping_names_the_key(change, words):
    doc = {"columns": dict(BASE["columns"])}
    for k, v in change.items():
        if k == "columns":
            doc["columns"].update(v)
        else:
            doc[k] = v
    with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
        parse_mapping(doc)


def test_unmapped_required_column(store, tmp_path):
    doc = {"columns": {k: v for k, v in BASE["columns"].items() if k != "price"}}
    m = tmp_path / "m.yaml"
    m.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="columns.price"):
        ingest(DATA / "generic_trades.csv", store, mapping=m)


def test_mapped_column_missing_from_file(store, tmp_path):
    m = tmp_path / "m.yaml"
    m.write_text((DATA / "generic_mapping.yaml").read_text().replace("Px", "Price"))
    with pytest.raises(SchemaError, match="Price"):
        ingest(DATA / "generic_trades.csv", store, mapping=m)


def test_bad_yaml(tmp_path, store):
    m = tmp_path / "m.yaml"
    m.write_text("columns: [unclosed")
    with pytest.raises(ConfigError, match="YAML"):
        ingest(DATA / "generic_trades.csv", store, mapping=m)

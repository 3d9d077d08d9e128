from pathlib import Path

import pyarrow as pa

from traderseg.features.catalog import catalog_markdown
from traderseg.schema import FILLS, TABLES, schema_markdown
from traderseg.store import connect

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_schema_doc_is_generated_from_the_declarations():
    assert (DOCS / "schema.md").read_text().strip() == schema_markdown().strip()


def test_feature_doc_lists_the_catalogue():
    assert catalog_markdown() in (DOCS / "features.md").read_text()


def test_every_column_is_documented_with_a_type():
    for table in TABLES.values():
        for col in table.columns:
            assert col.description.endswith("."), (table.name, col.name)
            assert isinstance(col.type, pa.DataType)


def test_store_tables_follow_the_contract(tmp_path):
    con = connect(tmp_path / "s.duckdb")
    cols = con.sql("DESCRIBE fills").df()
    assert list(cols["column_name"]) == FILLS.names + ["source"]
    notnull = dict(zip(cols["column_name"], cols["null"]))
    for c in FILLS.columns:
        assert (notnull[c.name] == "NO") == c.required, c.name
    assert con.sql("SELECT current_setting('TimeZone')").fetchone()[0] == "UTC"

"""Assignment on Spark (features and scoring on the executors) equals assignment on DuckDB."""


import numpy as np
import pandas as pd
import pytest

pyspark = pytest.importorskip("pyspark", reason="the Spark engine needs the spark extra")

from helpers.cli import run_cli_text  # noqa: E402
from helpers.store import simulated_store  # noqa: E402
from traderseg.features.spark import spark_session  # noqa: E402
from traderseg.segment.overlays import tier_bounds, value_tier  # noqa: E402
from traderseg.segment.spark import assign_spark_pandas, spark_error_line  # noqa: E402
from traderseg.segment.workflow import assign_accounts, fit_segments  # noqa: E402

AS_OF = "2024-01-25"


@pytest.fixture(scope="module")
def session():
    # far from UTC: neither the features nor the cutoff may move
    s = spark_session(time_zone="Asia/Tokyo")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark-venue")
    db = simulated_store(root, accounts=160, days=28, seed=5)
    fit_segments(db, AS_OF, root / "model", n_segments=4, random_state=0)
    return db, root / "model"


def test_spark_assignment_equals_duckdb(session, fitted):
    db, model = fitted
    duck = assign_accounts(db, model, "2024-01-27T13:30:00+00:00")
    spark = assign_spark_pandas(db, model, "2024-01-27T13:30:00+00:00", session=session)
    duck = duck.sort_values("account_id").reset_index(drop=True)
    assert list(spark.columns) == list(duck.columns)
    assert len(spark) == len(duck) > 100
    for c in ("account_id", "segment", "segment_name", "runner_up", "runner_up_name",
              "value_tier", "lifecycle_stage"):
        assert spark[c].astype(str).tolist() == duck[c].astype(str).tolist(), c
    for c in ("membership", "runner_up_membership", "leverage", "liquidations",
              "short_option", "concentration", "pnl_volatility", "risk_score"):
        np.testing.assert_allclose(spark[c].to_numpy(float), duck[c].to_numpy(float),
                                   rtol=1e-9, atol=1e-9, err_msg=c)
    assert (spark["as_of"] == duck["as_of"]).all()
    # several tiers occur, so the Spark ranking was exercised
    assert spark["value_tier"].nunique() >= 3


def test_cli_assign_on_spark_writes_a_parquet_folder(session, fitted, tmp_path, capsys):
    db, model = fitted
    out = tmp_path / "assign.parquet"
    args = ["assign", "--db", str(db), "--model", str(model), "--out", str(out)]
    code, text = run_cli_text([*args, "--engine", "spark"], capsys)
    assert code == 0, text
    assert out.is_dir()
    got = pd.read_parquet(out).sort_values("account_id").reset_index(drop=True)
    ref = assign_accounts(db, model).sort_values("account_id").reset_index(drop=True)
    assert got["segment"].tolist() == ref["segment"].tolist()
    assert got["value_tier"].tolist() == ref["value_tier"].astype(str).tolist()
    assert f"{len(ref):,} accounts assigned" in text
    code, text = run_cli_text([*args, "--engine", "spark"], capsys)
    assert code == 2 and "exists; pass --overwrite" in text
    code, text = run_cli_text([*args, "--engine", "spark", "--overwrite"], capsys)
    assert code == 0, text
    code, text = run_cli_text([*args[:-1], str(tmp_path / "x.parquet"), "--engine", "flink"],
                              capsys)
    assert code == 2 and "expected duckdb or spark" in text
    # a cutoff before every fill: the same one-line error as on DuckDB
    code, text = run_cli_text([*args[:-1], str(tmp_path / "early.parquet"), "--engine", "spark",
                               "--as-of", "2023-06-01"], capsys)
    assert code == 2 and "no fills before 2023-06-01" in text, text


def test_tier_bounds_round_half_to_even():
    # 1% of 150 is 1.5: rounds to 2; 1% of 50 is 0.5: rounds to 0 (half to even)
    assert [(n, int(lo), int(hi)) for n, lo, hi in tier_bounds(150)] == [
        ("platinum", 0, 2), ("gold", 2, 15), ("silver", 15, 75)]
    assert [(n, int(lo), int(hi)) for n, lo, hi in tier_bounds(50)] == [
        ("platinum", 0, 0), ("gold", 0, 5), ("silver", 5, 25)]
    # 1% of 250 is 2.5: rounds to 2, so the third account by revenue is gold
    f = pd.DataFrame({"fees_usd__all": np.arange(250.0, 0.0, -1.0)},
                     index=[f"a{i:03d}" for i in range(250)])
    tiers = value_tier(f)
    assert tiers.iloc[:2].tolist() == ["platinum", "platinum"]
    assert tiers.iloc[2] == "gold"


def test_a_spark_worker_failure_reads_as_its_cause():
    # a Python worker's failure arrives as its traceback: the last "...Error: " line is kept
    text = ("An exception was thrown from the Python worker.\n"
            "Traceback (most recent call last):\n"
            '  File "worker.py", line 3, in score\n'
            "traderseg.errors.SchemaError: risk profile needs feature columns ['x']\n")
    assert spark_error_line(text) == (
        "traderseg.errors.SchemaError: risk profile needs feature columns ['x']")
    assert spark_error_line("\n  [TABLE_OR_VIEW_NOT_FOUND] no table fills\n") == (
        "[TABLE_OR_VIEW_NOT_FOUND] no table fills")
    assert spark_error_line("") == "failed"

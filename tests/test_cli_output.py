"""Readable CLI output: unit formats, 80-column tables that never fold a number or a name,
segments one per line, tiers in order, --version, --verbose, the churn verdict."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from rich.console import Console

from helpers.cli import run_cli
from traderseg import __version__
from traderseg.analysis.churn.metrics import baseline_verdict
from traderseg.analysis.profitability import _in_order
from traderseg.cli.analysis import profit_table
from traderseg.cli.format import compact, share, usd
from traderseg.cli.segment import segments_table


@pytest.mark.parametrize("value, text", [
    (0.0, "0"), (12.345, "12.3"), (999.4, "999"), (999.5, "1k"), (2_554_317.0, "2.55M"),
    (-191_281.0, "-191k"), (0.0123, "0.0123"), (1e12, "1T"), (float("nan"), "–"),
])
def test_compact(value, text):
    assert compact(value) == text


def test_usd_and_share():
    assert (usd(-37_129.0), usd(6_738_738.79), share(0.379), share(-0.00551)) == (
        "-$37.1k", "$6.74M", "37.9%", "-0.6%")


def _render(table, width=80):
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(table)
    return console.export_text()


def _profit_frame():
    names = ["0 high-leverage perp takers, liquidation-prone", "2 active perp scalpers",
             "7 high-frequency perp makers", "8 large-block basis traders"]
    return pd.DataFrame({
        "group": names, "accounts": [1030, 301, 129, 95],
        "revenue_usd": [148_951.0, 2_554_317.0, -37_129.0, 2_230_848.0],
        "revenue_share": [0.0221, 0.379, -0.00551, 0.331],
        "revenue_per_account": [144.61, 8486.0, -287.82, 23483.0],
        "revenue_bps": [4.64, 2.69, -0.132, 2.0],
        "pnl_usd": [28_090.0, -191_281.0, 211_971.0, -29_758_396.0],
        "losing_share": [0.512, 0.578, 0.031, 0.632], "top10_share": [0.329, 0.281, -0.28, 0.354],
        "gini": [0.474, 0.417, 0.9, 0.512]})


def test_profitability_table_fits_80_columns_without_folding_numbers_or_words():
    df = _profit_frame()
    text = _render(profit_table(df, "per segment"))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    for cell in ("$149k", "$2.55M", "-$37.1k", "-$29.8M", "37.9%", "-0.6%", "$8.49k", "0.47",
                 "1,030"):
        assert any(cell in line for line in lines), cell  # whole, on one line
    words = {w for name in df["group"] for w in name.split()}
    printed = set(text.split())
    assert words <= printed  # names wrap between words, never inside one
    assert "216,5" not in text


def test_segments_one_line_each():
    segs = pd.DataFrame({"segment": [0, 1, 2], "name": ["active perp scalpers",
                                                        "occasional spot holders",
                                                        "high-frequency perp makers"],
                         "size": [301, 433, 129], "size_share": [0.3, 0.5, 0.2],
                         "revenue_share": [0.6, 0.0, -0.01],
                         "description": ["long text " * 30] * 3})
    lines = [ln for ln in _render(segments_table(segs, "segments")).splitlines() if ln.strip()]
    assert len(lines) == 3 + 3  # title, header, rule, then one line per segment
    assert lines[3].split()[:2] == ["1", "occasional"]  # largest first
    assert "long text" not in "\n".join(lines)


def test_segments_long_prints_descriptions(tmp_path, capsys):
    code, out, err = run_cli(["segments", "--model", str(tmp_path / "none")], capsys)
    assert code == 2 and "model directory not found" in err


def test_value_tiers_and_lifecycle_in_order():
    t = pd.DataFrame({"value_tier": ["bronze", "gold", "platinum", "silver"], "x": [1, 2, 3, 4]})
    assert _in_order(t, "value_tier")["value_tier"].tolist() == [
        "platinum", "gold", "silver", "bronze"]
    life = pd.DataFrame({"lifecycle": ["active", "at-risk", "churned", "dormant", "new"]})
    assert _in_order(life, "lifecycle")["lifecycle"].tolist() == [
        "new", "active", "at-risk", "dormant", "churned"]


def test_version(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.strip() == f"traderseg {__version__}"


def test_verbose_shows_the_library_log(tmp_path, capsys):
    from pathlib import Path

    data = Path(__file__).parent / "ingest" / "data" / "fills_bad.csv"
    code, _, err = run_cli(["--verbose", "ingest", str(data), "--db", str(tmp_path / "s.db"),
                            "-t", "fills"], capsys)
    assert code == 0
    assert re.search(r"info traderseg\.ingest\.pipeline: .*read 12, stored 3, rejected 9", err)
    code, _, err = run_cli(["ingest", str(data), "--db", str(tmp_path / "t.db"), "-t", "fills"],
                           capsys)
    assert "info" not in err


@pytest.mark.parametrize("model_auc, beats", [(0.81, True), (0.75, False), (0.70, False)])
def test_churn_verdict_boundary(model_auc, beats):
    m = pd.DataFrame({"auc": [model_auc, 0.75, 0.70]}, index=["model", "bgnbd", "recency"])
    ok, text = baseline_verdict(m)
    assert ok is beats
    assert ("beats its baselines" in text) is beats and "bgnbd" in text

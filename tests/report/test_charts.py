"""Chart functions: frames in, Plotly figures out; the rules they draw with."""

import duckdb
import pandas as pd
import plotly.graph_objects as go
import pytest

from traderseg.report import charts
from traderseg.report.collect import _option_fills
from traderseg.report.render import figure_json

NAMES = {0: "makers", 1: "<i>punters</i>"}


def test_figures_are_plotly_figures_with_escaped_labels():
    seg = pd.DataFrame({"segment": [0, 1], "size_share": [0.75, 0.25],
                        "revenue_share": [0.4, 0.6], "pnl_share": [0.5, -0.5],
                        "accounts": [3, 1], "revenue_usd": [4.0, 6.0], "pnl_usd": [1.0, -1.0]})
    fig = charts.segment_sizes(seg, NAMES)
    assert isinstance(fig, go.Figure) and len(fig.data) == 3
    assert list(fig.data[0].y) == ["1 · &lt;i&gt;punters&lt;/i&gt;", "0 · makers"]
    assert list(fig.data[2].x) == [-50.0, 50.0]


def test_the_sankey_links_each_nonzero_cell_once():
    counts = pd.DataFrame([[2, 0], [1, 3]], index=["a", "new"], columns=["a", "b"])
    fig = charts.migration_sankey(counts, ("d1", "d2"))
    link = fig.data[0].link
    assert list(link.source) == [0, 1, 1] and list(link.target) == [2, 2, 3]
    assert list(link.value) == [2, 1, 3]


def test_figure_json_cannot_close_its_script_block():
    fig = go.Figure(go.Bar(x=["</script><script>alert(1)"], y=[1]))
    text = str(figure_json(fig))
    assert "</" not in text and "<!--" not in text
    assert pd.io.json.ujson_loads(text)["data"][0]["x"] == ["</script><script>alert(1)"]


@pytest.fixture
def option_store():
    con = duckdb.connect()
    con.execute("""CREATE TABLE fills (account_id VARCHAR, ts TIMESTAMPTZ, kind VARCHAR,
                   side VARCHAR, qty DOUBLE, price DOUBLE, delta DOUBLE,
                   position_effect VARCHAR)""")
    rows = [  # account, day, kind, side, qty, price, delta, effect
        ("a", 1, "option", "buy", 2.0, 10.0, 0.15, "open"),    # bin 0.15, not 0.10
        ("a", 1, "option", "buy", 1.0, 5.0, 0.1499, "open"),   # bin 0.10
        ("a", 1, "option", "sell", 2.0, 10.0, -1.0, "close"),  # |delta| 1 -> last bin
        ("b", 1, "option", "sell", 3.0, 4.0, -0.5, None),      # no effect: counted open
        ("b", 1, "perp", "buy", 1.0, 100.0, None, "open"),     # not an option
        ("b", 9, "option", "buy", 1.0, 99.0, 0.5, "open"),     # at the cutoff: left out
    ]
    for acc, day, kind, side, qty, price, delta, eff in rows:
        con.execute("INSERT INTO fills VALUES (?, TIMESTAMPTZ '2024-01-01 00:00:00+00' + "
                    "INTERVAL (?) DAY, ?, ?, ?, ?, ?, ?)",
                    [acc, day, kind, side, qty, price, delta, eff])
    yield con
    con.close()


def test_delta_bins_and_premium_by_hand(option_store):
    assign = pd.DataFrame({"account_id": ["a", "b"], "segment": [0, 1]})
    out = _option_fills(option_store, assign, pd.Timestamp("2024-01-10", tz="UTC"))
    hist = out["delta_hist"]
    got = {(int(r.segment), round(r.bin_low, 2)): int(r.fills) for r in hist.itertuples()}
    assert got == {(0, 0.1): 1, (0, 0.15): 1, (0, 0.95): 1, (1, 0.5): 1}
    prem = out["premium"].set_index("segment")
    assert prem.loc[0, "bought_usd"] == pytest.approx(25.0)  # 2*10 + 1*5, opening buys
    assert prem.loc[0, "written_usd"] == pytest.approx(0.0)  # the closing sell is not written
    assert prem.loc[1, "written_usd"] == pytest.approx(12.0)
    assert prem.loc[1, "bought_usd"] == pytest.approx(0.0)  # the buy at the cutoff is out


def test_segment_labels_read_ids_stored_as_floats():
    assert charts.seg_label(3.0, {3: "a&b"}) == "3 · a&amp;b"
    assert charts.seg_label("unassigned", {}) == "unassigned"
    assert charts.seg_label(2.5, {}) == "2.5"


def test_the_lorenz_diagonal_spans_the_axes():
    curves = pd.DataFrame({"group": "venue", "population_share": [0.0, 1.0],
                           "amount_share": [0.0, 1.0]})
    fig = charts.lorenz(curves, {"venue": 0.0})
    assert list(fig.data[0].x) == [0, 100] and list(fig.data[0].y) == [0, 100]

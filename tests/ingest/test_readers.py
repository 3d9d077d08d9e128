from __future__ import annotations

import numpy as np

from traderseg.ingest import readers
from traderseg.ingest.readers import iter_batches


def test_csv_lines_survive_bad_rows_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 4096)  # many blocks
    lines = ["a,b,c"]
    for i in range(2, 5003):  # physical line i holds value i
        lines.append(f"{i},{i},{i}" if i % 997 else f"{i},{i}")
    lines.append("9999,9")  # truncated last line, no line break
    path = tmp_path / "x.csv"
    path.write_text("\n".join(lines))
    got_lines, got_vals, bad = [], [], []
    batches = list(iter_batches(path))
    assert len(batches) > 3
    for b in batches:
        got_lines.extend(b.lines.tolist())
        got_vals.extend(int(v) for v in b.table.column("a").to_pylist())
        bad.extend(x.line for x in b.bad_rows)
    assert got_lines == got_vals  # each row's line number equals the value written on it
    assert bad == [i for i in range(2, 5003) if i % 997 == 0] + [5003]
    assert len(got_lines) + len(bad) == len(lines) - 1


def test_jsonl_and_json_array(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1, "b": true}\n\n{"a": 2.5, "c": {"x": 1}}\n[1]\n{"a": 3')
    [b] = list(iter_batches(p))
    assert b.lines.tolist() == [1, 3]
    assert b.table.column("a").to_pylist() == ["1", "2.5"]
    assert b.table.column("b").to_pylist() == ["true", None]
    assert sorted(x.line for x in b.bad_rows) == [4, 5]
    q = tmp_path / "y.json"
    q.write_text('{"result": {"trades": [{"a": 1}, {"a": 2}, {"a": 3}]}}')
    batches = list(iter_batches(q, batch_rows=2))
    assert [bb.lines.tolist() for bb in batches] == [[1, 2], [3]]
    assert np.concatenate([bb.lines for bb in batches]).tolist() == [1, 2, 3]

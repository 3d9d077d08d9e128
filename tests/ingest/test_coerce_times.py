"""Text times read by Arrow's fast path equal the pandas reading, value for value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traderseg.ingest import coerce
from traderseg.ingest.coerce import as_timestamp
from traderseg.schema import TS


def _pandas_reading(values: list[str | None]) -> tuple[pa.Array, np.ndarray]:
    text = pa.array(values, pa.string())
    parsed = coerce._parse_text(pd.Series(values, dtype=object), "ISO8601", None)
    out = pa.array(parsed.dt.as_unit("us"), type=TS, from_pandas=True)
    return out, coerce._failed(text, out)


_shaped = st.builds(
    lambda y, mo, d, h, mi, s, frac: (f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"
                                      f"{frac}Z"),
    st.integers(1000, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 24),
    st.integers(0, 60), st.integers(0, 60),
    st.one_of(st.just(""), st.integers(0, 10**6 - 1).flatmap(
        lambda v: st.sampled_from([f".{str(v).zfill(6)}", f".{str(v)[:3]}", f".{str(v)[:1]}"]))))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_shaped, st.none()), max_size=12))
def test_the_fast_reading_equals_the_pandas_one(values):
    got, bad = as_timestamp(pa.array(values, pa.string()), "auto")
    want, want_bad = _pandas_reading(values)
    assert got.type == TS
    assert got.to_pylist() == want.to_pylist()
    assert bad.tolist() == want_bad.tolist()


def test_fast_path_taken_only_for_the_utc_shape(monkeypatch):
    taken = []
    real = coerce._iso_utc

    def spy(text):
        out = real(text)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(coerce, "_iso_utc", spy)
    good = ["2024-01-10T13:05:59.657964Z", None, "2024-01-10T13:05:59Z"]
    out, bad = as_timestamp(pa.array(good), "auto")
    assert out.to_pylist()[0] == pd.Timestamp("2024-01-10T13:05:59.657964Z").to_pydatetime()
    assert not bad.any() and taken == [True]
    # a value of another shape (an offset, seven digits, a space) sends the batch to pandas
    for other in ("2024-01-10T13:05:59+02:00", "2024-01-10T13:05:59.1234567Z",
                  "2024-01-10 13:05:59Z", "2024-02-30T00:00:00Z"):
        taken.clear()
        as_timestamp(pa.array([good[0], other]), "auto")
        assert taken == [False], other


@pytest.mark.parametrize("value", ["2024-02-30T00:00:00Z", "2024-01-10T24:00:00Z"])
def test_a_shaped_value_that_is_no_time_is_flagged(value):
    out, bad = as_timestamp(pa.array(["2024-01-10T13:05:59Z", value]), "auto")
    assert out.to_pylist()[1] is None and bad.tolist() == [False, True]

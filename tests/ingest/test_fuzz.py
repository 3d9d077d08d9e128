"""Seeded fuzzing of the ingest over the five input formats (a small sample of
``bench/ingest_fuzz.py``, which runs 1,500 files).

Every mutated file must end in a one-line traderseg error or in a report whose counts
balance and agree with the store; never in another exception.
"""

from __future__ import annotations

import logging

import pytest

import ingest_fuzz as fuzz


@pytest.fixture(autouse=True)
def _quiet_rollbacks(caplog):
    caplog.set_level(logging.ERROR, logger="traderseg.ingest.load")


def _describe(outcomes) -> str:
    return "\n".join(f"case {o.case.index} {o.case.format} {o.case.file_type} "
                     f"{o.case.mutation}: {o.message.strip().splitlines()[-1] if o.message else o}"
                     for o in outcomes[:5])


def test_fuzzed_files_never_escape_as_tracebacks(tmp_path):
    summary = fuzz.run(files=300, seed=20261201, work=tmp_path)
    counts = summary.counts()
    assert not summary.tracebacks, _describe(summary.tracebacks)
    assert not summary.unbalanced, _describe(summary.unbalanced)
    assert not summary.multiline, _describe(summary.multiline)
    # the sample exercises both ends: files refused whole and files loaded with rejects
    assert counts["error"] > 20 and counts["report"] > 20
    formats = {o.case.format for o in summary.outcomes}
    assert formats == set(fuzz.FORMATS)
    assert {o.case.file_type for o in summary.outcomes} == set(fuzz.FILE_TYPES)
    for o in summary.outcomes:
        if o.kind == "error":
            assert str(o.case.path) in o.message  # every file-level error names its file


def test_the_same_seed_builds_the_same_files(tmp_path):
    a = fuzz.run(files=10, seed=3, work=tmp_path / "a")
    b = fuzz.run(files=10, seed=3, work=tmp_path / "b")
    for x, y in zip(a.outcomes, b.outcomes):
        assert x.case.path.read_bytes() == y.case.path.read_bytes()
        assert (x.kind, x.read, x.stored, x.rejected) == (y.kind, y.read, y.stored, y.rejected)

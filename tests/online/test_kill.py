"""A consumer killed with SIGKILL at random points resumes to the batch computation exactly."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading

import pytest

from helpers.stream import DECIDE_EVERY_S, assert_same_decisions, batch_reference
from traderseg.online.state import read_checkpoints
from traderseg.store import connect

KILLS = 4


def _command(venue, db, *extra):
    return [sys.executable, "-m", "traderseg", "-v", "stream",
            "--source", f"replay:{venue.fills}", "--db", str(db), "--model", str(venue.model),
            "--policy", str(venue.policy), "--decide-every", f"{DECIDE_EVERY_S:g}s",
            "--checkpoint-every", "0.2s", "--batch-size", "400", *extra]


def _run_until_checkpoint(cmd, nth: int) -> tuple[int, bool]:
    """Start the consumer; SIGKILL it right after its ``nth`` checkpoint line (if it gets
    there). Returns the exit code and whether it was killed."""
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen = 0
    killed = False
    lines: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if "checkpoint " in line:
            seen += 1
            if seen == nth:
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
    drain = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    drain.start()
    rc = proc.wait(timeout=600)
    drain.join(timeout=5)
    if not killed:
        assert rc == 0, "".join(lines[-20:])
    return rc, killed


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_equals_batch(venue, tmp_path):
    db = venue.store(tmp_path)
    # slow the replay so that kills land while fills are still coming
    cmd = _command(venue, db, "--speed", "40000")
    rng = random.Random(7)
    progress = []
    kills = 0
    while True:
        rc, killed = _run_until_checkpoint(cmd, rng.randint(1, 6) if kills < KILLS else 10**9)
        if not killed:
            break
        kills += 1
        assert rc == -signal.SIGKILL
        con = connect(db)
        cp = read_checkpoints(con)
        progress.append(int(cp["fills"].iloc[0]) if len(cp) else 0)
        con.close()
    con = connect(db)
    total = con.execute("SELECT count(*) FROM fills").fetchone()[0]
    n_source = con.execute(f"SELECT count(*) FROM read_parquet('{venue.fills}/*.parquet')"
                           ).fetchone()[0]
    assert kills == KILLS
    # the kills landed mid-stream, at different points, and nothing was lost or doubled
    assert all(0 < p < total for p in progress) and len(set(progress)) > 1, progress
    assert total == n_source
    assert con.execute("SELECT count(DISTINCT fill_id) FROM fills").fetchone()[0] == total
    latest, audit = batch_reference(con, venue, DECIDE_EVERY_S)
    assert_same_decisions(con, latest, audit)
    con.close()

"""Run every benchmark in turn at its default (full) size; each prints its own table.

    python bench/run_all.py            # everything (an hour or more on 2 cores)
    python bench/run_all.py features   # only the named ones
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHES: dict[str, list[str]] = {
    "simulate": ["bench_simulate.py"],
    "ingest": ["bench_ingest.py"],
    "ingest_fuzz": ["ingest_fuzz.py"],
    "features": ["bench_features.py"],
    "segment": ["bench_segment.py"],
    "segment_quality": ["segment_quality.py", "--difficulty", "realistic,hard"],
    "clv": ["bench_clv.py"],
    "clv_calibration": ["bench_clv.py", "--calibration", "--difficulty", "realistic,hard"],
    "churn": ["bench_churn.py", "--workdir", tempfile.gettempdir() + "/traderseg-churn-bench"],
    "policy": ["bench_policy.py"],
    "stream_parts": ["bench_stream_parts.py"],
    "stream": ["bench_stream.py", "--accounts", "1000", "--days", "15"],
    "stream_live": ["bench_stream_live.py"],
    "liquidation": ["bench_liquidation.py", "--workdir",
                    tempfile.gettempdir() + "/traderseg-liquidation-bench"],
}


def main() -> None:
    chosen = sys.argv[1:] or list(BENCHES)
    unknown = [c for c in chosen if c not in BENCHES]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {list(BENCHES)}")
    failed = []
    for name in chosen:
        script, *args = BENCHES[name]
        print(f"=== {name}", flush=True)
        rc = subprocess.call([sys.executable, str(HERE / script), *args], cwd=HERE.parent)
        if rc:
            failed.append(name)
    if failed:
        raise SystemExit(f"failed: {failed}")


if __name__ == "__main__":
    main()

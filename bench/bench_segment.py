"""Benchmark of the segmenter: automatic k at 100k and 1M synthetic accounts.

Each measurement runs in a fresh worker process, so peak memory (max RSS) is its own.
For each size: ``TraderSegmenter()`` with automatic k (default method and search) on the
columns :func:`~traderseg.segment.preprocess.segmentation_columns` picks, then plain
scikit-learn ``KMeans`` at the chosen k on the same preprocessed matrix. Reports medians
over repeats and the time ratio. Usage::

    python bench/bench_segment.py                 # 100k x3, 1M x1
    python bench/bench_segment.py --sizes 100000 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(n: int, approach: str, k: int, seed: int) -> dict:
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from traderseg.segment.estimator import TraderSegmenter
    from traderseg.segment.preprocess import FeaturePreprocessor, segmentation_columns
    from traderseg.segment.synthetic import synthetic_features

    X, y = synthetic_features(n, windows=("30d", "all"), random_state=seed)
    X = X[segmentation_columns(X)]
    base = _rss_mb()
    if approach == "auto":
        t0 = time.perf_counter()
        seg = TraderSegmenter(random_state=seed).fit(X)
        elapsed = time.perf_counter() - t0
        labels, k_out = seg.labels_, seg.n_segments_
    else:
        Z = FeaturePreprocessor().fit_transform(X)
        t0 = time.perf_counter()
        km = KMeans(n_clusters=k, random_state=seed).fit(Z)
        elapsed = time.perf_counter() - t0
        labels, k_out = km.labels_, k
    return {"n": n, "approach": approach, "seconds": elapsed, "k": int(k_out),
            "ari": float(adjusted_rand_score(y, labels)), "peak_rss_mb": _rss_mb(),
            "data_rss_mb": base, "columns": X.shape[1]}


def _run(n: int, approach: str, k: int, seed: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", str(n), approach, str(k), str(seed)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeats", type=int, nargs="+", default=[3, 1])
    ap.add_argument("--worker", nargs=4)
    args = ap.parse_args()
    if args.worker:
        n, approach, k, seed = args.worker
        print(json.dumps(worker(int(n), approach, int(k), int(seed))))
        return
    repeats = args.repeats + [args.repeats[-1]] * (len(args.sizes) - len(args.repeats))
    for n, reps in zip(args.sizes, repeats, strict=False):
        auto = [_run(n, "auto", 0, s) for s in range(reps)]
        k = auto[0]["k"]
        plain = [_run(n, "sklearn_kmeans", k, s) for s in range(reps)]
        for name, runs in (("auto-k TraderSegmenter", auto), (f"sklearn KMeans k={k}", plain)):
            print(f"n={n:>9,} {name:<24} median {statistics.median(r['seconds'] for r in runs):7.1f}s"
                  f"  peak RSS {statistics.median(r['peak_rss_mb'] for r in runs):7.0f} MB"
                  f" (data {statistics.median(r['data_rss_mb'] for r in runs):6.0f} MB)"
                  f"  k={[r['k'] for r in runs]} ARI={[round(r['ari'], 3) for r in runs]}")
        ratio = statistics.median(r["seconds"] for r in auto) / statistics.median(
            r["seconds"] for r in plain)
        print(f"n={n:>9,} time ratio auto-k / single sklearn KMeans fit: {ratio:.2f}")


if __name__ == "__main__":
    main()

"""Search speed, in one run: the five nearest of n feature vectors for each distance, (1) PosterBench's exact search
against the original authors' way (a pandas `iterrows` loop calling `scipy.spatial.distance` on each row), and (2) the
exact search against the approximate one of large catalogs (recommend/approximate.py) at each catalog size: ms per
query for the 25 nearest (GENRE_SHORTLIST, what the app's genre re-ranking orders), recall of the exact five and of the
exact 25, with every row allowed and under genre and decade masks; the graphs' build time and memory.

Part 1's vectors are rectified normal draws (100 dimensions, float32). Part 2's (--source): `clustered` (default),
synthetic vectors shaped like the model's (tight clusters around rectified centres that vary along a few directions);
`noise`, part 1's (no neighbourhoods at all: the worst case of any approximate search); or an index directory, whose
real feature vectors are drawn with Gaussian noise (sigma 0.05 per dimension, about their nearest-neighbour distance),
clipped at 0. The masks allow random rows, 2 % to 40 % of the catalog, as the real catalog's genre and decade pools do.
Prints tables and, last, one JSON line: {distance: {size: {exact_ms, approximate_ms, recall_at_5,
recall_at_shortlist (of the 25), filtered_...}}, "index": {size: {build_s, disk_mb, worker_mb}}}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench import at_least, whole_numbers

MASK_SHARES = (0.02, 0.05, 0.1, 0.17, 0.25, 0.4)
"""Shares of the catalog the masks allow: the real catalog's genre-and-decade pools run from 2 % (the least, 4 % at the
1st percentile) through 17 % (median) to 39 % (95th percentile)."""
NOISE = 0.05


def synthetic_features(rows: int, dim: int, seed: int) -> np.ndarray:
    generator = np.random.default_rng(seed)
    return np.maximum(generator.standard_normal((rows, dim), dtype=np.float32), 0.0)


def clustered_features(rows: int, dim: int, seed: int, centres: int = 10_000) -> np.ndarray:
    """Vectors shaped like the model's features drawn with noise (`sampled_features` of the real index): `centres`
    rectified points of a random 10-dimensional subspace whose directions' spreads halve one to the next, each scaled
    by a log-normal factor, the same for every seed; each row one of them plus Gaussian noise, clipped at 0. Like the
    real ones at 80,000 rows: 30 % zeros (29 %), 92 % of the variance along 5 directions (93 %), norms 1.0 to 10.6
    from the 1st to the 99th percentile (1.9 to 10.0)."""
    fixed = np.random.default_rng(12345)
    basis = np.linalg.qr(fixed.standard_normal((dim, 10)))[0].T  # 10 orthonormal directions
    spread = 3.0 * 0.5 ** np.arange(10)
    middle = fixed.normal(-0.1, 0.35, dim)
    points = np.maximum(middle + (fixed.standard_normal((centres, 10)) * spread) @ basis, 0)
    points = (points * np.exp(fixed.normal(0, 0.45, (centres, 1)))).astype(np.float32)
    generator = np.random.default_rng(seed)
    vectors = points[generator.integers(0, centres, rows)]
    vectors += generator.normal(0, NOISE, vectors.shape).astype(np.float32)
    return np.maximum(vectors, 0, out=vectors)


def sampled_features(source: np.ndarray, rows: int, seed: int) -> np.ndarray:
    """Rows of real feature vectors drawn with replacement, plus Gaussian noise, clipped at 0."""
    generator = np.random.default_rng(seed)
    vectors = source[generator.integers(0, len(source), rows)].astype(np.float32)
    vectors += generator.normal(0, NOISE, vectors.shape).astype(np.float32)
    return np.maximum(vectors, 0, out=vectors)


def vectors_of(source: str, rows: int, dim: int, seed: int) -> np.ndarray:
    if source == "clustered":
        return clustered_features(rows, dim, seed)
    if source == "noise":
        return synthetic_features(rows, dim, seed)
    from model.index import FEATURES_FILE

    return sampled_features(np.load(Path(source) / FEATURES_FILE, mmap_mode="r"), rows, seed)


def authors_nearest(frame, query: np.ndarray, distance: str, k: int = 5) -> list[int]:
    """The original way: walk the data frame row by row, one scipy distance call per row, then sort."""
    from scipy.spatial import distance as scipy_distance

    measure = {
        "manhattan": scipy_distance.cityblock,
        "euclidean": scipy_distance.euclidean,
        "cosine": scipy_distance.cosine,
    }[distance]
    found = [(measure(query, row.to_numpy()), position) for position, (_, row) in enumerate(frame.iterrows())]
    found.sort()
    return [position for _, position in found[:k]]


def time_queries(search: Callable[[np.ndarray], object], queries: np.ndarray) -> list[float]:
    """Milliseconds per query, after one untimed warm-up query."""
    search(queries[0])
    timings = []
    for query in queries:
        started = time.perf_counter()
        search(query)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def anonymous_mb() -> float:
    """This process's anonymous resident memory (what a worker cannot share with the others), MB; 0 off Linux."""
    try:
        for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
            if line.startswith("Anonymous:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def compare_authors(args: argparse.Namespace) -> None:
    import pandas as pd

    from recommend import DISTANCES, NeighbourSearch

    features = synthetic_features(args.rows, args.dim, args.seed)
    queries = synthetic_features(args.queries + 1, args.dim, args.seed + 1)
    search = NeighbourSearch(features)
    frame = pd.DataFrame(features)  # the authors kept the catalog in a data frame
    print(f"\n{args.rows:,} vectors: ms per query (median / p95), same five as the authors' way")
    print("| distance | PosterBench | authors' way (iterrows + scipy) | speed-up | same five |")
    print("|---|---|---|---|---|")
    for distance in DISTANCES:
        ours = time_queries(lambda query, distance=distance: search.nearest(query, distance), queries)
        theirs = time_queries(
            lambda query, distance=distance: authors_nearest(frame, query, distance),
            queries[: args.baseline_queries + 1],
        )
        agree = all(
            search.nearest(query, distance).tolist() == authors_nearest(frame, query, distance)
            for query in queries[: args.baseline_queries]
        )
        print(
            f"| {distance} | {statistics.median(ours):.2f} / {percentile(ours, 0.95):.2f} "
            f"| {statistics.median(theirs):,.0f} | x{statistics.median(theirs) / statistics.median(ours):,.0f} "
            f"| {'yes' if agree else 'NO'} |"
        )


def share_found(truth: np.ndarray, found: np.ndarray) -> float:
    """The share of the exact rows `truth` that the approximate search `found` (1 when there are none)."""
    return len(set(truth.tolist()) & set(found.tolist())) / max(len(truth), 1)


def compare_approximate(size: int, args: argparse.Namespace, summary: dict[str, dict]) -> None:
    """Exact against approximate at one catalog size, each query timed both ways back to back."""
    from recommend import DISTANCES, GENRE_SHORTLIST, NeighbourSearch
    from recommend.approximate import ApproximateSearch

    k = GENRE_SHORTLIST
    features = vectors_of(args.source, size, args.dim, args.seed)
    queries = vectors_of(args.source, args.queries + 1, args.dim, args.seed + 1)
    generator = np.random.default_rng(args.seed + 2)
    masks = [generator.random(size) < MASK_SHARES[number % len(MASK_SHARES)] for number in range(len(queries))]
    exact = NeighbourSearch(features)
    started = time.perf_counter()
    built = ApproximateSearch().fit(features)
    build_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as directory:
        built.save(directory)
        disk_mb = sum(path.stat().st_size for path in Path(directory).iterdir()) / 1e6
        del built
        before = anonymous_mb()
        approximate = ApproximateSearch.load(directory, exact.features)  # as a worker does: graphs memory-mapped
        cells = {}
        for distance in DISTANCES:
            cell = {}
            for kind, allowed_of in (("", lambda _: None), ("filtered_", lambda number: masks[number])):
                exact.nearest(queries[0], distance, k, allowed_of(0))  # warm-up
                approximate.nearest(queries[0], distance, k, allowed_of(0))
                exact_ms, approximate_ms, recall, shortlist_recall = [], [], [], []
                for number, query in enumerate(queries[1:], start=1):
                    allowed = allowed_of(number)
                    started = time.perf_counter()
                    truth = exact.nearest(query, distance, k, allowed)
                    middle = time.perf_counter()
                    found = approximate.nearest(query, distance, k, allowed)
                    exact_ms.append((middle - started) * 1000)
                    approximate_ms.append((time.perf_counter() - middle) * 1000)
                    recall.append(share_found(truth[:5], found[:5]))
                    shortlist_recall.append(share_found(truth, found))
                cell |= {
                    f"{kind}exact_ms": round(statistics.median(exact_ms), 3),
                    f"{kind}approximate_ms": round(statistics.median(approximate_ms), 3),
                    f"{kind}approximate_p95_ms": round(percentile(approximate_ms, 0.95), 3),
                    f"{kind}recall_at_5": round(statistics.fmean(recall), 4),
                    f"{kind}recall_at_shortlist": round(statistics.fmean(shortlist_recall), 4),
                }
            cells[distance] = cell
        worker_mb = anonymous_mb() - before
        del approximate
    index = {"build_s": round(build_s, 1), "disk_mb": round(disk_mb, 1), "worker_mb": round(worker_mb, 1)}
    print(
        f"\n{size:,} vectors ({args.source}): graphs built in {build_s:.1f} s, {disk_mb:,.0f} MB on disk, "
        f"{worker_mb:,.0f} MB of a worker's own memory once loaded (memory-mapped) and queried"
    )
    print(
        f"| distance | rows allowed | exact ms ({k} nearest) | approximate ms (median / p95) | speed-up | recall of "
        f"the exact five | recall of the exact {k} |"
    )
    print("|---|---|---|---|---|---|---|")
    for distance, cell in cells.items():
        for kind, rows in (("", "all"), ("filtered_", "2-40 %")):
            exact_ms, approximate_ms = cell[kind + "exact_ms"], cell[kind + "approximate_ms"]
            print(
                f"| {distance} | {rows} | {exact_ms:.2f} | {approximate_ms:.2f}"
                f" / {cell[kind + 'approximate_p95_ms']:.2f}"
                f" | x{exact_ms / approximate_ms:.1f} | {cell[kind + 'recall_at_5']:.3f}"
                f" | {cell[kind + 'recall_at_shortlist']:.3f} |"
            )
        summary[distance][str(size)] = cell
    summary["index"][str(size)] = index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=at_least(1), default=80_000, help="catalog size compared with the authors' way")
    parser.add_argument(
        "--sizes",
        type=whole_numbers,
        default="80000,1000000",
        help="comma-separated catalog sizes, exact against approximate",
    )
    parser.add_argument(
        "--source", default="clustered", help="the vectors of part 2: clustered, noise or an index directory"
    )
    parser.add_argument("--dim", type=at_least(1), default=100, help="feature dimensions (default 100, the model's)")
    parser.add_argument("--queries", type=at_least(1), default=100, help="timed queries per distance and size")
    parser.add_argument("--baseline-queries", type=at_least(1), default=2, help="timed queries of the authors' way")
    parser.add_argument("--seed", type=at_least(0), default=0)
    parser.add_argument("--quick", action="store_true", help="small sizes and few queries: that the script works")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.sizes, args.queries, args.baseline_queries = 2000, [1500, 3000], 6, 1
    from recommend import DISTANCES

    print(
        f"search benchmark: {args.dim}-dim float32 vectors, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    compare_authors(args)
    summary: dict[str, dict] = {distance: {} for distance in DISTANCES} | {"index": {}}
    for size in args.sizes:
        compare_approximate(size, args, summary)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

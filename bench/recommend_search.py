"""Search speed: the five nearest of n feature vectors for each distance, PosterBench's vectorised search against
the original authors' way (a pandas `iterrows` loop calling `scipy.spatial.distance` on each row), in one run.

Vectors are synthetic: rectified normal draws (like the model's ReLU feature layer), 100 dimensions, float32.
Prints a table per catalog size and, last, one JSON line: {distance: {rows: median ms per query}}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import numpy as np


def synthetic_features(rows: int, dim: int, seed: int) -> np.ndarray:
    generator = np.random.default_rng(seed)
    return np.maximum(generator.standard_normal((rows, dim), dtype=np.float32), 0.0)


def authors_nearest(frame, query: np.ndarray, metric: str, k: int = 5) -> list[int]:
    """The original way: walk the data frame row by row, one scipy distance call per row, then sort."""
    from scipy.spatial import distance

    measure = {"manhattan": distance.cityblock, "euclidean": distance.euclidean, "cosine": distance.cosine}[metric]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=80_000, help="catalog size compared with the authors' way")
    parser.add_argument(
        "--scale",
        default="10000,80000,250000,1000000",
        help="comma-separated catalog sizes for the growth table (default up to 1 million)",
    )
    parser.add_argument("--dim", type=int, default=100, help="feature dimensions (default 100, the model's)")
    parser.add_argument("--queries", type=int, default=50, help="timed queries per distance and size")
    parser.add_argument("--baseline-queries", type=int, default=2, help="timed queries of the authors' way")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import pandas as pd

    from recommend import DISTANCES, NeighbourSearch

    print(
        f"search benchmark: {args.dim}-dim float32 vectors, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    features = synthetic_features(args.rows, args.dim, args.seed)
    queries = synthetic_features(args.queries + 1, args.dim, args.seed + 1)
    search = NeighbourSearch(features)
    frame = pd.DataFrame(features)  # the authors kept the catalog in a data frame
    print(f"\n{args.rows:,} vectors: ms per query (median / p95), same five as the authors' way")
    print("| distance | PosterBench | authors' way (iterrows + scipy) | speed-up | same five |")
    print("|---|---|---|---|---|")
    for metric in DISTANCES:
        ours = time_queries(lambda query, metric=metric: search.nearest(query, metric), queries)
        theirs = time_queries(
            lambda query, metric=metric: authors_nearest(frame, query, metric), queries[: args.baseline_queries + 1]
        )
        agree = all(
            search.nearest(query, metric).tolist() == authors_nearest(frame, query, metric)
            for query in queries[: args.baseline_queries]
        )
        print(
            f"| {metric} | {statistics.median(ours):.2f} / {percentile(ours, 0.95):.2f} "
            f"| {statistics.median(theirs):,.0f} | x{statistics.median(theirs) / statistics.median(ours):,.0f} "
            f"| {'yes' if agree else 'NO'} |"
        )

    sizes = [int(size) for size in args.scale.split(",") if size]
    growth: dict[str, dict[int, float]] = {metric: {} for metric in DISTANCES}
    print("\ngrowth: median ms per query (ms per million vectors)")
    print("| vectors | " + " | ".join(DISTANCES) + " |")
    print("|---|" + "---|" * len(DISTANCES))
    for size in sizes:
        sized = NeighbourSearch(synthetic_features(size, args.dim, args.seed))
        cells = []
        for metric in DISTANCES:
            median = statistics.median(
                time_queries(lambda query, m=metric, sized=sized: sized.nearest(query, m), queries)
            )
            growth[metric][size] = round(median, 3)
            cells.append(f"{median:.2f} ({median / size * 1e6:.1f})")
        print(f"| {size:,} | " + " | ".join(cells) + " |")
        del sized
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    print(json.dumps(growth))


if __name__ == "__main__":
    main()

"""Search time under load with each gunicorn worker's BLAS threads held to a request's share of the cores
(app/gunicorn_conf.py's default) against unlimited (each worker's OpenBLAS on every core, as before), in one run.

The catalog is first enlarged to --rows movies (default 80,000; its movies repeated under new IMDb ids, sharing its
posters, their feature vectors jittered), so that each search compares as many vectors as a large catalog's. Then:

- the search alone, in this process: 1 and each --clients count of threads searching at once (Euclidean and cosine,
  the distances BLAS computes; --search-queries each, at most --search-seconds), BLAS on the share a worker gets,
  then on every core;
- the served app: two servers side by side on the same catalog, model and index (limited: nothing set, the config's
  default; unlimited: OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS set to the core count), each for each
  count of concurrent clients (--clients, default 4,16) getting --requests sample clicks (POST /recommend with a
  catalog sample: no decoding and no network, but the index's vector, the genre and decade filters, the search by the
  bandit's distance and one database write).

Both take --rounds turns (default 2), the order of the two ways swapped every round, and pool them.

    python -m bench.serving_threads --catalog DIR --model MODEL_DIR --index INDEX_DIR [--rows 80000]
        [--clients 4,16] [--requests 200] [--workers 2]

Prints the threads each server's workers report (their gunicorn log), and a table each of p50 / p95 ms, limited and
unlimited, with their ratio (unlimited / limited); the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path, PurePosixPath

import numpy as np

from app.gunicorn_conf import BLAS_VARIABLES, INFERENCE_VARIABLE, available_cores, threads_per_request
from bench.load import Timings, add_served_arguments, server_settings, summarize, timed_requests
from catalog import read_catalog, write_movies_csv
from model.index import DESCRIPTION_FILE, EVOKED_FILE, FEATURES_FILE, PROBABILITIES_FILE, FeatureIndex
from tools.serving import gunicorn_server

# The variables app/gunicorn_conf.py reads (and sets, when they are not set) for each worker's thread pools.
THREAD_VARIABLES = (*BLAS_VARIABLES.values(), INFERENCE_VARIABLE)
MODES = ("limited", "unlimited")
WORKER_THREADS = re.compile(r"worker (\d+) threads: (.*)$", re.MULTILINE)


def mode_environment(mode: str, cores: int) -> dict[str, str | None]:
    """The thread variables a server starts with: none (limited: app/gunicorn_conf.py gives each pool a request's
    share of the cores), or the behaviour before it (unlimited: OpenBLAS and OpenMP on every core, as they start when
    nothing is set, ONNX Runtime on one thread, its old fixed setting)."""
    if mode == "limited":
        return dict.fromkeys(THREAD_VARIABLES)
    return {**dict.fromkeys(BLAS_VARIABLES.values(), str(cores)), INFERENCE_VARIABLE: "1"}


@contextmanager
def environment(values: dict[str, str | None]) -> Iterator[None]:
    """os.environ with `values` set (None: unset) for the child processes started inside, restored after."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def new_ids(taken: set[str], count: int) -> list[str]:
    """`count` IMDb-shaped ids (tt + 8 digits, from tt90000000) none of which is in `taken`."""
    ids: list[str] = []
    number = 90_000_000
    while len(ids) < count:
        candidate = f"tt{number}"
        if candidate not in taken:
            ids.append(candidate)
        number += 1
    return ids


def enlarge(catalog_dir: str, index_dir: str, rows: int, out: Path, seed: int = 0) -> tuple[str, str]:
    """A catalog of `rows` movies and its index in `out`: the catalog's movies, then copies of them under new ids
    that share their posters (the catalog's poster folders linked), with the index's rows repeated and their
    feature vectors jittered (multiplied by 1 + N(0, 0.1), still non-negative like ReLU features). A catalog of
    `rows` movies or more is returned as it is."""
    catalog = read_catalog(catalog_dir)
    index = FeatureIndex.load(index_dir, catalog)
    if rows <= len(catalog):
        return catalog_dir, index_dir
    extra = rows - len(catalog)
    copies = [catalog.movies[number % len(catalog)] for number in range(extra)]
    ids = new_ids({movie.imdb_id for movie in catalog}, extra)
    movies = [*catalog.movies, *(replace(movie, imdb_id=imdb_id) for movie, imdb_id in zip(copies, ids, strict=True))]
    catalog_out, index_out = out / "catalog", out / "index"
    catalog_out.mkdir(parents=True)
    index_out.mkdir()
    for top in sorted({PurePosixPath(movie.poster).parts[0] for movie in catalog}):
        (catalog_out / top).symlink_to((Path(catalog_dir) / top).resolve())
    write_movies_csv(catalog_out, movies)
    rows_from = np.arange(rows) % len(catalog)
    generator = np.random.default_rng(seed)
    jitter = 1 + generator.normal(0, 0.1, (extra, index.features.shape[1])).astype(np.float32)
    features = np.concatenate([index.features, np.maximum(index.features[rows_from[len(catalog) :]] * jitter, 0)])
    np.save(index_out / FEATURES_FILE, features.astype(np.float32))
    np.save(index_out / PROBABILITIES_FILE, index.probabilities[rows_from])
    with (index_out / EVOKED_FILE).open("wb") as handle:
        np.savez(handle, **{name: values[rows_from] for name, values in index.evoked.items()})
    description = {
        "catalog": str(catalog_out),
        "enlarged_from": str(Path(index_dir).resolve()),
        "genres": list(index.genres),
        "imdb_ids": [movie.imdb_id for movie in movies],
    }
    (index_out / DESCRIPTION_FILE).write_text(json.dumps(description) + "\n")
    return str(catalog_out), str(index_out)


def worker_threads(log: Path, workers: int, seconds: float = 60) -> list[str]:
    """What each worker logged of its threads (app/gunicorn_conf.py's post_worker_init), once `workers` have (the
    server answers as soon as one has), or what there is after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        found = WORKER_THREADS.findall(log.read_text())
        if len(found) >= workers or time.monotonic() > deadline:
            return [f"worker {pid}: {threads}" for pid, threads in found]
        time.sleep(0.2)


def concurrent_search_ms(
    features: np.ndarray, searches: int, blas: int, queries: int, max_seconds: float, seed: int = 2
) -> list[float]:
    """Milliseconds of each of `queries` Euclidean and cosine searches (the distances BLAS computes) made by each
    of `searches` threads at once in this process (each stops early after `max_seconds`), with BLAS on `blas`
    threads: a worker's search while as many requests search beside it."""
    from threadpoolctl import threadpool_limits

    from recommend import NeighbourSearch

    search = NeighbourSearch(features)
    rows = np.random.default_rng(seed).choice(len(features), size=(searches, queries))
    timings: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(searches)

    def work(mine: np.ndarray) -> None:
        found: list[float] = []
        start.wait()
        deadline = time.perf_counter() + max_seconds
        for number, row in enumerate(mine):
            if found and time.perf_counter() > deadline:
                break
            started = time.perf_counter()
            search.nearest(features[row], ("euclidean", "cosine")[number % 2])
            found.append((time.perf_counter() - started) * 1000)
        with lock:
            timings.extend(found)

    with threadpool_limits(limits=blas, user_api="blas"):
        threads = [threading.Thread(target=work, args=(rows[number],)) for number in range(searches)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return timings


def ratio(slow: float, fast: float) -> float:
    return round(slow / fast, 2) if fast > 0 else float("nan")


def percentiles(milliseconds: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(milliseconds, 50)), 3),
        "p95_ms": round(float(np.percentile(milliseconds, 95)), 3),
    }


def compared(cells: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """`cells` (limited and unlimited figures) with the ratio of their p50 and p95, unlimited / limited."""
    limited, unlimited = cells["limited"], cells["unlimited"]
    return {
        **cells,
        "ratio": {
            "p50": ratio(unlimited["p50_ms"], limited["p50_ms"]),
            "p95": ratio(unlimited["p95_ms"], limited["p95_ms"]),
        },
    }


def table_row(label: object, cells: dict[str, dict[str, float]]) -> str:
    limited, unlimited, ratios = cells["limited"], cells["unlimited"], cells["ratio"]
    return (
        f"| {label} | {limited['p50_ms']:g} / {limited['p95_ms']:g} | {unlimited['p50_ms']:g} / "
        f"{unlimited['p95_ms']:g} | {ratios['p50']:g} / {ratios['p95']:g} |"
    )


TABLE_HEAD = (
    "| {} | limited p50 / p95 ms | unlimited p50 / p95 ms | ratio p50 / p95 (unlimited / limited) |\n|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_served_arguments(parser)
    parser.add_argument("--rows", type=int, default=80_000, help="enlarge the catalog to this many movies (0: as is)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server (default 2)")
    parser.add_argument("--clients", default="4,16", help="comma-separated concurrent clients (default 4,16)")
    parser.add_argument("--requests", type=int, default=200, help="requests per server, client count and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, the two ways' order swapped each (default 2)")
    parser.add_argument("--seconds", type=float, default=60, help="at most this long per server, count and round")
    parser.add_argument(
        "--search-queries", type=int, default=50, help="in-process searches per thread, way and round (default 50)"
    )
    parser.add_argument(
        "--search-seconds", type=float, default=10, help="at most this long per in-process count, way and round"
    )
    args = parser.parse_args(argv)
    client_counts = [int(count) for count in args.clients.split(",")]
    cores = available_cores()
    gunicorn_threads = int(os.environ.get("GUNICORN_THREADS", "4"))
    blas = {"limited": threads_per_request(cores, args.workers, gunicorn_threads), "unlimited": cores}

    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="posterbench-threads-")))
        args.catalog, args.index = enlarge(args.catalog, args.index, args.rows, scratch / "enlarged")
        catalog = read_catalog(args.catalog)
        features = FeatureIndex.load(args.index, catalog).features
        print(
            f"serving threads: {len(catalog):,} movies ({features.shape[1]}-dim vectors), {cores} cores, "
            f"{args.workers} workers x {gunicorn_threads} threads per server, "
            f"load average {os.getloadavg()[0]:.2f} at start"
        )
        summary: dict[str, object] = {
            "movies": len(catalog),
            "cores": cores,
            "blas_threads": blas,
            "load_average_at_start": round(os.getloadavg()[0], 2),
        }

        print(
            "\nthe search alone, in this process: N threads searching at once (Euclidean and cosine), ms per search; "
            f"BLAS on {blas['limited']} thread(s) (limited) or {blas['unlimited']} (unlimited)"
        )
        print(TABLE_HEAD.format("searches at once"))
        searched = {}
        for searches in sorted({1, *client_counts}):
            measured: dict[str, list[float]] = {mode: [] for mode in MODES}
            for round_number in range(args.rounds):
                for mode in MODES if round_number % 2 == 0 else MODES[::-1]:
                    measured[mode] += concurrent_search_ms(
                        features, searches, blas[mode], args.search_queries, args.search_seconds
                    )
            searched[str(searches)] = compared({mode: percentiles(measured[mode]) for mode in MODES})
            print(table_row(searches, searched[str(searches)]))
        summary["search"] = searched

        urls, logs = {}, {}
        for mode in MODES:
            state = scratch / mode
            state.mkdir()
            with environment(mode_environment(mode, cores)):
                settings = server_settings(args, state)
                urls[mode] = stack.enter_context(gunicorn_server(settings, args.workers, log_dir=state))
            logs[mode] = state / "gunicorn.log"
        print("\nthe servers' workers:")
        reported = {}
        for mode in MODES:
            reported[mode] = worker_threads(logs[mode], args.workers)
            print(f"{mode:>9}: {'; '.join(reported[mode]) or 'no worker reported its threads'}")
        summary["workers"] = reported

        chosen = np.random.default_rng(0).choice(len(catalog), size=min(100, len(catalog)), replace=False)
        samples = [(catalog.movies[row].imdb_id, b"") for row in chosen]
        print("\nsample clicks (POST /recommend), ms per request")
        print(TABLE_HEAD.format("clients"))
        requested = {}
        for clients in client_counts:
            timings = {mode: Timings([], [], 0.0) for mode in MODES}
            for round_number in range(args.rounds):
                for mode in MODES if round_number % 2 == 0 else MODES[::-1]:
                    run = timed_requests(urls[mode], "sample", clients, args.requests, samples, args.seconds)
                    timings[mode].latencies += run.latencies
                    timings[mode].failures += run.failures
                    timings[mode].seconds += run.seconds
            requested[str(clients)] = compared({mode: summarize("sample", timings[mode]) for mode in MODES})
            print(table_row(clients, requested[str(clients)]))
        summary["requests"] = requested
    summary["load_average_at_end"] = round(os.getloadavg()[0], 2)
    print(f"load average {summary['load_average_at_end']:.2f} at the end")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

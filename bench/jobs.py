"""Background jobs, timed from the outside: the time from submit to result of a heatmap (POST /api/explain of an
uploaded poster, one genre) and of a comparison of 4 uploaded posters (POST /api/compare), polling GET /api/jobs/<id>
every 20 ms, against gunicorn and its job worker (`posterbench worker`) as `make serve` runs them; then the upload
latency of /recommend under 4 concurrent clients without jobs and while the worker runs jobs back to back, in
alternating rounds (A B B A), pooled per condition.

Each job's own time is split with the database's timestamps: waiting in the queue (created to started) and running
(started to finished); the rest of submit-to-result is the submit request itself (the posters checked and re-encoded)
and the last poll.

    python -m bench.jobs --catalog ../shared/data --model var/runs/<catalog>/model-default \\
        --index var/runs/<catalog>/index-default --precision float32 [--job-threads N] [--job-nice N]

The last line is one JSON object. Targets (issue 19): a heatmap <= 2 s, a comparison of 4 posters <= 1.5 s, and the
upload p95 with jobs at most twice the p95 without."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import threading
import time
from contextlib import suppress
from datetime import datetime
from pathlib import Path

import requests

from bench.explain_speed import YARDSTICK_MS
from bench.load import Timings, add_served_arguments, server_settings, summarize, timed_requests
from catalog import read_catalog
from model.explain import DEFAULT_GRID
from tools.serving import gunicorn_server

API = {"X-Requested-With": "bench"}
POLL_SECONDS = 0.02
GENRE = "Drama"


def submit_and_wait(session: requests.Session, url: str, path: str, files: list, data: dict) -> tuple[str, float]:
    """POST a job and poll it until it is done; (job id, seconds from submit to result)."""
    start = time.perf_counter()
    answer = session.post(url + path, files=files, data=data, headers=API, timeout=60)
    if answer.status_code != 202:
        raise SystemExit(f"{path} answered {answer.status_code}: {answer.text[:300]}")
    job_url = answer.json()["job_url"]
    while True:
        job = session.get(job_url, timeout=60).json()
        if job["status"] == "done":
            return job["job"], time.perf_counter() - start
        if job["status"] == "failed":
            raise SystemExit(f"job {job['job']} failed: {job['error']}")
        time.sleep(POLL_SECONDS)


def explain_once(session: requests.Session, url: str, poster: tuple[str, bytes]) -> tuple[str, float]:
    files = [("image", (f"{poster[0]}.jpg", poster[1], "image/jpeg"))]
    return submit_and_wait(session, url, "/api/explain", files, {"genre": GENRE})


def compare_once(session: requests.Session, url: str, posters: list[tuple[str, bytes]]) -> tuple[str, float]:
    files = [("image", (f"{imdb_id}.jpg", data, "image/jpeg")) for imdb_id, data in posters]
    return submit_and_wait(session, url, "/api/compare", files, {"target": GENRE})


def yardstick(model_dir: str, poster: bytes, runs: int = 7) -> float:
    """Median seconds of one forward pass of one poster on one thread, in this process: how busy the machine is
    (bench/explain_speed.py's YARDSTICK_MS for a 128 x 128 model on the quiet 2-core Xeon)."""
    from app.resources import load_model
    from model.images import decode_poster, poster_array

    model = load_model(model_dir, 1)
    batch = poster_array(decode_poster(poster, model.input_size), model.input_size)[None]
    model.predict(batch)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.predict(batch)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def job_phases(database: Path, job_id: str) -> tuple[float, float]:
    """(seconds queued, seconds running) of a finished job, from its row."""
    with sqlite3.connect(database) as connection:
        created, started, finished = connection.execute(
            "SELECT created, started, finished FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
    moment = [datetime.fromisoformat(text.replace("Z", "+00:00")) for text in (created, started, finished)]
    return (moment[1] - moment[0]).total_seconds(), (moment[2] - moment[1]).total_seconds()


def timed(label: str, runs: list[tuple[str, float]], database: Path) -> dict[str, float]:
    totals = [seconds for _, seconds in runs]
    phases = [job_phases(database, job_id) for job_id, _ in runs]
    summary = {
        "runs": len(runs),
        "median_s": round(statistics.median(totals), 3),
        "max_s": round(max(totals), 3),
        "queued_median_s": round(statistics.median(queued for queued, _ in phases), 3),
        "running_median_s": round(statistics.median(running for _, running in phases), 3),
    }
    print(
        f"{label}: submit to result {summary['median_s']:.2f} s median, {summary['max_s']:.2f} s worst of "
        f"{len(runs)}; in it, queued {summary['queued_median_s']:.3f} s and running {summary['running_median_s']:.2f}"
        " s (median)",
        flush=True,
    )
    return summary


class BusyWorker:
    """Keeps the job worker busy: heatmaps and comparisons of 4 posters submitted back to back, one at a time."""

    def __init__(self, url: str, posters: list[tuple[str, bytes]]) -> None:
        self.url = url
        self.posters = posters
        self.stop = threading.Event()
        self.done = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        session = requests.Session()
        session.trust_env = False
        number = 0
        while not self.stop.is_set():
            if number % 2:
                explain_once(session, self.url, self.posters[number % len(self.posters)])
            else:
                start = number % (len(self.posters) - 4)
                compare_once(session, self.url, self.posters[start : start + 4])
            number += 1
            self.done += 1

    def __enter__(self) -> BusyWorker:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=120)


def pooled(runs: list[Timings]) -> Timings:
    return Timings(
        [latency for run in runs for latency in run.latencies],
        [status for run in runs for status in run.failures],
        sum(run.seconds for run in runs),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_served_arguments(parser)
    with suppress(argparse.ArgumentError):  # unless bench.load's add_served_arguments has it
        parser.add_argument("--precision", choices=("auto", "float32", "int8"), default="auto", help="the ONNX export")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (make serve's default: 2)")
    parser.add_argument("--rounds", type=int, default=8, help="timed heatmaps, and comparisons")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=120, help="uploads per load round (4 rounds)")
    parser.add_argument("--seconds", type=float, default=40.0, help="at most, per load round")
    parser.add_argument("--job-threads", default="", help="POSTERBENCH_JOB_THREADS (empty: every core)")
    parser.add_argument("--job-nice", type=int, default=10, help="POSTERBENCH_JOB_NICE")
    parser.add_argument("--posters", type=int, default=24, help="catalog posters used as uploads")
    args = parser.parse_args(argv)
    args.url = None

    if args.precision != "auto":
        os.environ["POSTERBENCH_PRECISION"] = args.precision  # the yardstick's model too
    catalog = read_catalog(args.catalog)
    step = max(1, len(catalog.movies) // args.posters)
    movies = catalog.movies[::step][: args.posters]
    posters = [(movie.imdb_id, catalog.poster_path(movie).read_bytes()) for movie in movies]
    before = yardstick(args.model, posters[0][1])
    quiet = f"{YARDSTICK_MS:.0f} ms for a 128 x 128 model on the quiet machine"
    print(f"one forward pass, one thread, before: {before * 1000:.0f} ms ({quiet})", flush=True)
    with tempfile.TemporaryDirectory(prefix="posterbench-jobs-") as scratch:
        state = Path(scratch)
        settings = {
            **server_settings(args, state),
            "JOB_NICE": str(args.job_nice),
            "POSTERS_PER_CLIENT": "1000",  # every client is 127.0.0.1
            "JOBS_PER_CLIENT": "1000",
        }
        if args.precision != "auto":
            settings["PRECISION"] = args.precision  # POSTERBENCH_PRECISION: which ONNX export the app serves
        if args.job_threads:
            settings["JOB_THREADS"] = args.job_threads
        with gunicorn_server(settings, args.workers, log_dir=state, job_worker=True) as url:
            session = requests.Session()
            session.trust_env = False
            explain_once(session, url, posters[0])  # warm-up: the worker's first job imports what jobs need
            compare_once(session, url, posters[:4])
            heatmaps = [explain_once(session, url, posters[1 + r % (len(posters) - 1)]) for r in range(args.rounds)]
            comparisons = [
                compare_once(session, url, [posters[(r * 4 + k) % len(posters)] for k in range(4)])
                for r in range(args.rounds)
            ]
            database = state / "bench.sqlite"
            heatmap = timed(f"heatmap (1 poster, 1 genre, {DEFAULT_GRID} x {DEFAULT_GRID} grid)", heatmaps, database)
            comparison = timed("comparison of 4 uploaded posters", comparisons, database)

            rounds: dict[str, list[Timings]] = {"without jobs": [], "with jobs": []}
            busy_jobs = 0
            for condition in ("without jobs", "with jobs", "with jobs", "without jobs"):
                if condition == "with jobs":
                    with BusyWorker(url, posters) as busy:
                        time.sleep(1.0)  # the first job under way
                        timings = timed_requests(url, "upload", args.clients, args.requests, posters, args.seconds)
                    busy_jobs += busy.done
                else:
                    timings = timed_requests(url, "upload", args.clients, args.requests, posters, args.seconds)
                rounds[condition].append(timings)
                single = summarize("upload", timings)
                print(f"  /recommend uploads, {args.clients} clients, {condition}: p50 {single['p50_ms']:.0f} ms, "
                      f"p95 {single['p95_ms']:.0f} ms ({single['requests']} requests)", flush=True)  # fmt: skip
            load = {condition: summarize("upload", pooled(runs)) for condition, runs in rounds.items()}
            ratio = load["with jobs"]["p95_ms"] / load["without jobs"]["p95_ms"]
            for condition, summary in load.items():
                print(f"/recommend uploads, {args.clients} clients, {condition} (pooled): p50 {summary['p50_ms']:.0f}"
                      f" ms, p95 {summary['p95_ms']:.0f} ms, {summary['rps']:.1f} requests/s", flush=True)  # fmt: skip
            print(f"p95 with jobs / without: {ratio:.2f} ({busy_jobs} jobs done during the loaded rounds)")
    after = yardstick(args.model, posters[0][1])
    print(f"one forward pass, one thread, after: {after * 1000:.0f} ms", flush=True)
    result = {
        "yardstick_ms": {"before": round(before * 1000, 1), "after": round(after * 1000, 1), "quiet": YARDSTICK_MS},
        "heatmap": heatmap,
        "comparison_4": comparison,
        "upload_load": {**load, "p95_ratio": round(ratio, 2), "jobs_during_load": busy_jobs},
        "settings": {
            "workers": args.workers,
            "job_threads": args.job_threads or "all",
            "job_nice": args.job_nice,
            "precision": args.precision,
            "clients": args.clients,
        },
        "targets_met": {
            "heatmap_2s": heatmap["median_s"] <= 2.0,
            "comparison_1.5s": comparison["median_s"] <= 1.5,
            "p95_at_most_2x": ratio <= 2.0,
        },
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""A bounded load run against PosterBench: for each kind of request and each number of concurrent clients, at
most --requests requests or --seconds seconds. Each client has its own session (it loads the home page for its
CSRF token first, as a browser does). Kinds: upload (POST /recommend with a catalog poster as the file: the model
runs), sample (POST /recommend clicking a sample: the vectors come from the index), feedback (POST a good vote on
a fresh recommendation), bandit (GET /bandit). Prints requests per second and the p50 / p95 / p99 latency; the last
line is one JSON object {kind: {...}} (with several client counts: {kind: {clients: {...}}}).

Against a running server:

    python -m bench.load --url http://127.0.0.1:8000 --catalog var/demo-catalog

or let it start gunicorn (app/gunicorn_conf.py) on a free loopback port over a throwaway SQLite database, or over the
PostgreSQL database at --database-url (`make bench-load`):

    python -m bench.load --catalog DIR --model MODEL_DIR --index INDEX_DIR [--clems CLEMS_DIR] [--workers 2]
        [--runtime auto|keras|onnx] [--database-url postgresql://...]

The requests come from this script's own threads (`--tool python`, the default), or from wrk (`--tool wrk`,
Debian's package; bench/wrk_posterbench.lua sends the same requests from one session), whose client costs the
two cores far less; a cell ends once wrk's threads have sent their --requests, not at the end of --seconds.

The app serves a model directory's ONNX export (ONNX Runtime) when it has one, else its Keras weights (TensorFlow);
--runtime keras serves the Keras weights even when there is an export, to compare the two. --precision float32 or int8
chooses which export the app serves (POSTERBENCH_PRECISION; auto, the default: int8 when its check passed); several,
e.g. --precision float32,int8, start one server each, side by side, which take turns on every cell (the order
swapped from one cell to the next), in one run; their rows are named "upload float32", "upload int8" ...
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests

from catalog import read_catalog
from tools.serving import gunicorn_server

REPO_ROOT = Path(__file__).resolve().parents[1]

AUTHORS_APP = "bench.authors_app:create_app()"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
RUNTIMES = ("auto", "keras", "onnx")
RUNTIME_HELP = "serve the model's ONNX export if it has one (auto), the export (onnx) or its Keras weights (keras)"
PRECISION_HELP = "which ONNX export the app serves: auto (int8 when its check passed), float32 or int8"
WRK_SCRIPT = REPO_ROOT / "bench" / "wrk_posterbench.lua"
WRK_STOPPED = "wrk-thread-stopped-"
"""The files wrk's threads leave (bench/wrk_posterbench.lua, WRK_STOPPED) once each has sent its share."""
WRK_POLL_SECONDS = 0.05


def catches_sigint(pid: int) -> bool:
    """Whether process `pid` has its own SIGINT handler installed (Linux's /proc; elsewhere False)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), "0")
    return bool(int(caught, 16) & (1 << (signal.SIGINT - 1)))


def wrk_until_sent(command: list[str], environment: dict[str, str], folder: Path, threads: int) -> tuple[int, str]:
    """Run wrk and return its exit status and output. wrk sleeps out its whole --duration even when every thread has
    stopped at WRK_REQUESTS; once each of its `threads` has left its file in `folder` (WRK_STOPPED), it is sent
    SIGINT (as Ctrl+C), which ends that wait: it then reports, and calls the script's done(), as at the end of
    --duration. Where its handler cannot be seen (not Linux), it runs its whole --duration."""
    environment = {**environment, "WRK_STOPPED": str(folder / WRK_STOPPED)}
    with (folder / "wrk.out").open("w+") as output:
        wrk = subprocess.Popen(command, env=environment, stdout=output, stderr=subprocess.STDOUT)
        try:
            while wrk.poll() is None:
                stopped = len(list(folder.glob(WRK_STOPPED + "*")))
                if stopped >= threads and catches_sigint(wrk.pid):  # its handler is set once its threads run
                    wrk.send_signal(signal.SIGINT)  # again at the next poll if a thread got it before it exited
                time.sleep(WRK_POLL_SECONDS)
        finally:
            if wrk.poll() is None:
                wrk.kill()
                wrk.wait()
        output.seek(0)
        return wrk.returncode, output.read()


def model_for_runtime(model_dir: str, runtime: str, scratch: Path) -> str:
    """The model directory to serve so that the app runs `runtime`: "auto" (whatever the directory holds: its ONNX
    export, else Keras), "onnx" (its export, which must be there) or "keras" (a directory in `scratch` of links to
    all its files but the export, so that the app loads the Keras weights)."""
    from model.onnx_model import EXPORT_FILE, EXPORT_FILES, export_command, has_export

    source = Path(model_dir).resolve()
    if runtime == "onnx" and not (source / EXPORT_FILE).is_file():
        sys.exit(f"{source} has no ONNX export: {export_command(source)}")
    if runtime != "keras" or not has_export(source):
        return model_dir
    view = scratch / f"keras-{source.name}"
    view.mkdir()
    for path in source.iterdir():
        if path.name not in EXPORT_FILES:
            (view / path.name).symlink_to(path)
    return str(view)


def add_served_arguments(parser: argparse.ArgumentParser) -> None:
    """--catalog, --model, --index, --clems and --runtime, all a served app needs (bench/serving_memory.py,
    bench/upload_profile.py), and --precision."""
    from model.onnx_model import PRECISIONS

    parser.add_argument("--catalog", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--index", required=True)
    parser.add_argument("--clems")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto", help=RUNTIME_HELP)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)


def server_settings(args: argparse.Namespace, state: Path) -> dict[str, str]:
    """What a benchmark's gunicorn serves: --catalog, --model (as --runtime and --precision ask), --index and --clems,
    over a throwaway SQLite database in `state`, or the PostgreSQL one at --database-url when there is one."""
    settings = {
        "CATALOG": args.catalog,
        "MODEL": model_for_runtime(args.model, args.runtime, state),
        "INDEX": args.index,
        "SECRET_KEY": secrets.token_hex(16),
        "FEEDBACK_LIMIT": "1000000",  # every vote comes from 127.0.0.1
        "POSTERS_PER_CLIENT": "1000000",  # every upload too: the per-client limit would refuse concurrent clients
        "DATABASE": str(state / "bench.sqlite"),
    }
    if getattr(args, "database_url", None):
        settings["DATABASE_URL"] = args.database_url
    if args.clems:
        settings["CLEMS"] = args.clems
    if getattr(args, "precision", "auto") != "auto":
        settings["PRECISION"] = args.precision
    return settings


@contextmanager
def served(args: argparse.Namespace, app_target: str = "app:create_app()") -> Iterator[str]:
    """The running server at --url, or gunicorn started on --catalog/--model/--index (serving `app_target`:
    PosterBench, or the original authors' design for the baseline, which has no database)."""
    if args.url and app_target == "app:create_app()":
        yield args.url.rstrip("/")
        return
    with (
        tempfile.TemporaryDirectory(prefix="posterbench-load-") as state,
        gunicorn_server(server_settings(args, Path(state)), args.workers, app_target=app_target) as url,
    ):
        yield url


class Client:
    """One visitor: a session with its CSRF token. Each action returns (seconds, succeeded, status)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies from the environment for a local server
        page = self.session.get(url + "/", timeout=60)
        page.raise_for_status()
        self.token = TOKEN.search(page.text).group(1)

    def recommend(self, kind: str, imdb_id: str, poster: bytes) -> tuple[float, bool, int]:
        """POST /recommend (without following the 303 to the results page)."""
        data = {"csrf_token": self.token}
        files = None
        if kind == "sample":
            data["sample"] = imdb_id
        else:
            files = {"poster": (f"{imdb_id}.jpg", poster, "image/jpeg")}
        start = time.perf_counter()
        response = self.session.post(
            self.url + "/recommend", data=data, files=files, allow_redirects=False, timeout=120
        )
        return time.perf_counter() - start, response.status_code == 303, response.status_code

    def vote(self, feedback_path: str) -> tuple[float, bool, int]:
        """POST /results/<id>/feedback?key=<key>, a good vote (without following the 303)."""
        data = {"csrf_token": self.token, "rating": "good"}
        start = time.perf_counter()
        response = self.session.post(f"{self.url}{feedback_path}", data=data, allow_redirects=False, timeout=120)
        return time.perf_counter() - start, response.status_code == 303, response.status_code

    def bandit_page(self) -> tuple[float, bool, int]:
        """GET /bandit, the page with its table (its four plots are separate requests)."""
        start = time.perf_counter()
        response = self.session.get(self.url + "/bandit", timeout=120)
        return time.perf_counter() - start, response.status_code == 200, response.status_code


def unrated_recommendations(client: Client, count: int, posters: list[tuple[str, bytes]]) -> list[str]:
    """Recommendations made for the feedback runs (sample clicks, not timed): the addresses their votes go to,
    /results/<id>/feedback?key=<key> (the results page's address, which carries the key)."""
    paths = []
    for number in range(count):
        response = client.session.post(
            client.url + "/recommend",
            data={"csrf_token": client.token, "sample": posters[number % len(posters)][0]},
            allow_redirects=False,
            timeout=120,
        )
        page, _, key = response.headers["Location"].partition("?")
        paths.append(f"{page}/feedback?{key}")
    return paths


@dataclass
class Timings:
    """What a run of requests measured."""

    latencies: list[float]  # seconds, of each request that succeeded
    failures: list[int]  # the statuses of those that did not
    seconds: float  # the run's wall time


def timed_requests(
    url: str, kind: str, clients: int, n_requests: int, posters: list[tuple[str, bytes]], max_seconds: float
) -> Timings:
    """`n_requests` of one kind from `clients` concurrent visitors, stopping early after `max_seconds`."""
    visitors = [Client(url) for _ in range(clients)]
    to_rate = unrated_recommendations(visitors[0], n_requests + clients, posters) if kind == "feedback" else []

    def action(visitor: Client, number: int) -> tuple[float, bool, int]:
        if kind == "feedback":
            return visitor.vote(to_rate[number])
        if kind == "bandit":
            return visitor.bandit_page()
        imdb_id, poster = posters[number % len(posters)]
        return visitor.recommend(kind, imdb_id, poster)

    for number, visitor in enumerate(visitors):  # warm-up, not counted
        action(visitor, n_requests + number)
    latencies: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()
    next_request = iter(range(n_requests))
    deadline = time.perf_counter() + max_seconds

    def work(visitor: Client) -> None:
        while time.perf_counter() < deadline:
            with lock:
                number = next(next_request, None)
            if number is None:
                return
            seconds, succeeded, status = action(visitor, number)
            with lock:
                if succeeded:
                    latencies.append(seconds)
                else:
                    failures.append(status)

    threads = [threading.Thread(target=work, args=(visitor,)) for visitor in visitors]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Timings(latencies, failures, time.perf_counter() - start)


def summarize(kind: str, timings: Timings) -> dict[str, float]:
    """Requests, failures, requests per second and the latency's percentiles (ms) of `timings`."""
    if not timings.latencies:
        sys.exit(f"every {kind} request failed, with statuses {sorted(set(timings.failures))}")
    milliseconds = np.array(timings.latencies) * 1000
    return {
        "requests": len(timings.latencies) + len(timings.failures),
        "failed": len(timings.failures),
        "seconds": round(timings.seconds, 2),
        "rps": round(len(timings.latencies) / timings.seconds, 1),
        "p50_ms": round(float(np.percentile(milliseconds, 50)), 1),
        "p95_ms": round(float(np.percentile(milliseconds, 95)), 1),
        "p99_ms": round(float(np.percentile(milliseconds, 99)), 1),
        "max_ms": round(float(milliseconds.max()), 1),
    }


def run(
    url: str, kind: str, clients: int, n_requests: int, posters: list[tuple[str, bytes]], max_seconds: float
) -> dict[str, float]:
    """`n_requests` of one kind from `clients` concurrent visitors, stopping early after `max_seconds`, summarized."""
    return summarize(kind, timed_requests(url, kind, clients, n_requests, posters, max_seconds))


def run_wrk(
    url: str, kind: str, clients: int, n_requests: int, posters: list[tuple[str, bytes]], max_seconds: float
) -> dict[str, float]:
    """The same requests as `run`, sent by wrk: `clients` connections on as many threads, all in one session, at
    most about `n_requests` in all (each thread its share) and `max_seconds`."""
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is not installed: apt-get install wrk (Debian's package), or use --tool python")
    visitor = Client(url)
    with tempfile.TemporaryDirectory(prefix="posterbench-wrk-") as scratch:
        folder = Path(scratch)
        for imdb_id, poster in posters:
            (folder / f"{imdb_id}.jpg").write_bytes(poster)
        (folder / "posters.txt").write_text("\n".join(str(folder / f"{imdb_id}.jpg") for imdb_id, _ in posters))
        (folder / "samples.txt").write_text("\n".join(imdb_id for imdb_id, _ in posters))
        to_rate = unrated_recommendations(visitor, n_requests + clients, posters) if kind == "feedback" else []
        (folder / "votes.txt").write_text("\n".join(to_rate[clients:]))
        for number in range(clients):  # warm-up, not counted, as in `run`
            if kind == "feedback":
                visitor.vote(to_rate[number])
            elif kind == "bandit":
                visitor.bandit_page()
            else:
                visitor.recommend(kind, *posters[number % len(posters)])
        environment = {
            **os.environ,
            "WRK_KIND": kind,
            "WRK_COOKIE": "; ".join(f"{cookie.name}={cookie.value}" for cookie in visitor.session.cookies),
            "WRK_TOKEN": visitor.token,
            "WRK_POSTERS": str(folder / "posters.txt"),
            "WRK_SAMPLES": str(folder / "samples.txt"),
            "WRK_VOTES": str(folder / "votes.txt"),
            "WRK_THREADS": str(clients),
            "WRK_REQUESTS": str(math.ceil(n_requests / clients)),
            "WRK_OUT": str(folder / "figures.json"),
        }
        command = [wrk, "--threads", str(clients), "--connections", str(clients), "--duration"]
        command += [f"{math.ceil(max_seconds)}s", "--timeout", "120s", "--script", str(WRK_SCRIPT), url]
        returncode, output = wrk_until_sent(command, environment, folder, clients)
        if returncode != 0 or not (folder / "figures.json").is_file():
            sys.exit(f"wrk failed ({returncode}): {output[-2000:]}")
        figures = json.loads((folder / "figures.json").read_text())
    failed = figures["unexpected_status"] + figures["socket_errors"]
    if failed >= figures["requests"]:
        sys.exit(f"every {kind} request failed under wrk")
    return {
        "requests": figures["requests"],
        "failed": failed,
        "seconds": round(figures["seconds"], 2),
        "rps": round((figures["requests"] - failed) / figures["seconds"], 1),
        **{key: round(figures[key], 1) for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms")},
    }


def report(summary: dict, kind: str, clients: int, result: dict[str, float]) -> None:
    summary.setdefault(kind, {})[str(clients)] = result
    print(
        f"{kind:>14} x{clients:<3}: {result['rps']:6.1f} requests/s  p50 {result['p50_ms']:7.1f} ms  "
        f"p95 {result['p95_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms  "
        f"({result['requests']} requests, failed {result['failed']})"
    )


def compare_precisions(
    args: argparse.Namespace,
    precisions: list[str],
    kinds: list[str],
    client_counts: list[int],
    load: Callable[..., dict[str, float]],
    posters: list[tuple[str, bytes]],
    summary: dict,
) -> None:
    """One server per precision, side by side (started one after the other, then all running); each cell (kind and
    client count) runs on every server in turn, the order swapped from one cell to the next."""
    with ExitStack() as stack:
        urls = {}
        for precision in precisions:
            urls[precision] = stack.enter_context(served(argparse.Namespace(**{**vars(args), "precision": precision})))
        print(
            f"load: {', '.join(f'{precision} at {url}' for precision, url in urls.items())} (model runtime "
            f"{args.runtime}, {'PostgreSQL' if args.database_url else 'SQLite'}, requests sent by {args.tool}), "
            f"clients {args.clients}, at most {args.requests} requests or {args.seconds:g} s each, in turns"
        )
        cell = 0
        for kind in kinds:
            for clients in client_counts:
                for precision in precisions if cell % 2 == 0 else precisions[::-1]:
                    result = load(urls[precision], kind, clients, args.requests, posters, args.seconds)
                    report(summary, f"{kind} {precision}", clients, result)
                cell += 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running PosterBench; without it, start gunicorn on --catalog/--model/--index")
    parser.add_argument("--catalog", required=True, help="the catalog served (its posters are uploaded)")
    parser.add_argument("--model")
    parser.add_argument("--index")
    parser.add_argument("--clems")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers when starting one (default 2)")
    parser.add_argument("--clients", default="4", help="comma-separated concurrent clients, e.g. 1,4,16 (default 4)")
    parser.add_argument("--requests", type=int, default=200, help="requests per kind and client count (default 200)")
    parser.add_argument("--seconds", type=float, default=60, help="at most this long per kind and client count")
    parser.add_argument("--kinds", default="upload,sample", help="comma-separated: upload, sample, feedback, bandit")
    parser.add_argument(
        "--baseline", action="store_true", help="also upload to the original authors' design (bench/authors_app.py)"
    )
    parser.add_argument("--tool", choices=("python", "wrk"), default="python", help="who sends the requests")
    parser.add_argument(
        "--database-url", help="serve over this PostgreSQL database (postgresql://...) instead of a throwaway SQLite"
    )
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto", help=RUNTIME_HELP)
    parser.add_argument(
        "--precision", default="auto", help=PRECISION_HELP + "; several, e.g. float32,int8: one server each, in turns"
    )
    args = parser.parse_args(argv)
    from model.onnx_model import PRECISIONS

    precisions = [name.strip() for name in args.precision.split(",")]
    if set(precisions) - set(PRECISIONS) or len(set(precisions)) != len(precisions):
        parser.error(f"--precision takes {', '.join(PRECISIONS)}, or several of them once each, separated by commas")
    if len(precisions) > 1 and (args.url or args.baseline):
        parser.error("several --precision values start a server each: not with --url nor --baseline")
    if not args.url and not (args.model and args.index):
        parser.error("give --url, or --model and --index to start a server")
    if args.baseline and not (args.model and args.index):
        parser.error("--baseline starts the authors' design on --model and --index: give them")
    kinds = [kind.strip() for kind in args.kinds.split(",")]
    unknown = set(kinds) - {"upload", "sample", "feedback", "bandit"}
    if unknown:
        parser.error(f"unknown kinds {', '.join(sorted(unknown))}; choose upload, sample, feedback, bandit")
    client_counts = [int(count) for count in args.clients.split(",")]
    load = run_wrk if args.tool == "wrk" else run

    catalog = read_catalog(args.catalog)
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(catalog), size=min(100, len(catalog)), replace=False)
    posters = [(catalog.movies[i].imdb_id, catalog.poster_path(catalog.movies[i]).read_bytes()) for i in chosen]

    summary: dict[str, dict[str, dict[str, float]]] = {}
    if len(precisions) > 1:
        compare_precisions(args, precisions, kinds, client_counts, load, posters, summary)
        print(json.dumps(summary))
        return
    with served(args) as url:
        print(
            f"load: {url} (model runtime {args.runtime}, {'PostgreSQL' if args.database_url else 'SQLite'},"
            f" requests sent by {args.tool}), clients {args.clients}, at most {args.requests} requests or"
            f" {args.seconds:g} s each"
        )
        for kind in kinds:
            for clients in client_counts:
                report(summary, kind, clients, load(url, kind, clients, args.requests, posters, args.seconds))
    if args.baseline:
        with served(args, AUTHORS_APP) as url:
            print(f"baseline: the original authors' design ({AUTHORS_APP}) at {url}")
            for clients in client_counts:
                result = load(url, "upload", clients, args.requests, posters, args.seconds)
                report(summary, "authors_upload", clients, result)
    print(
        json.dumps(
            summary
            if len(client_counts) > 1
            else {kind: cells[str(client_counts[0])] for kind, cells in summary.items()}
        )
    )


if __name__ == "__main__":
    main()

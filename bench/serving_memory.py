"""Resident memory of gunicorn workers serving PosterBench: starts gunicorn (app/gunicorn_conf.py) with 1 and then 4
workers, warms every worker with poster uploads (the model runs), and reads each worker's resident set (RSS) and
proportional set (PSS: shared pages divided among the processes sharing them, so PSS adds up to the real total)
from /proc. The last line is one JSON object {workers: {"rss_mib": ..., "pss_mib": ..., "runtime": ...}}; runtime
is what the workers run the model with, seen in their memory maps: "onnx" (ONNX Runtime, no TensorFlow loaded) or
"keras" (TensorFlow).

    python -m bench.serving_memory --catalog DIR --model MODEL_DIR --index INDEX_DIR [--clems DIR] [--workers 1,4]
        [--runtime auto|keras|onnx] [--precision auto|float32|int8] [--clients 1]

--runtime keras serves the Keras weights of a model that has an ONNX export (see bench/load.py), --precision float32
or int8 the float32 or the int8 export (the weights' mapping counts whichever is served); --clients N sends
as many uploads again from N clients at once after the warm-up, so that workers run several inferences together.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.load import Client, add_served_arguments, server_settings
from catalog import read_catalog
from model.onnx_model import INT8_DATA_FILE, ONNX_DATA_FILE
from tools.serving import gunicorn_server

WARM_UPLOADS_PER_WORKER = 8


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


def memory_kib(pid: int, field: str) -> int:
    """A field of /proc/<pid>/smaps_rollup ("Rss", "Pss"), in KiB."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise ValueError(f"no {field} in /proc/{pid}/smaps_rollup")


def mapped_rss_kib(pid: int, file_name: str) -> int:
    """The resident KiB of a process's memory mappings of files called `file_name` (the ONNX weights, which the
    workers share), from /proc/<pid>/smaps."""
    total, inside = 0, False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5:  # a mapping's header line: range, perms, offset, ...
            inside = len(fields) >= 6 and Path(fields[-1]).name == file_name
        elif inside and fields[0] == "Rss:":
            total += int(fields[1])
    return total


def runtime(pid: int) -> str:
    """What the process runs the model with: "keras" once TensorFlow's libraries are mapped, else "onnx"."""
    return "keras" if "tensorflow" in Path(f"/proc/{pid}/maps").read_text() else "onnx"


def warm(url: str, uploads: int, clients: int, posters: list[tuple[str, bytes]]) -> None:
    """`uploads` poster uploads from `clients` concurrent clients, each upload on a new connection, so that the
    kernel spreads them over the workers."""

    def upload_from(first: int) -> None:
        client = Client(url)
        for number in range(first, uploads, clients):
            imdb_id, poster = posters[number % len(posters)]
            client.recommend("upload", imdb_id, poster)
            client.session.close()

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(upload_from, range(clients)))


def measure(args: argparse.Namespace, workers: int, posters: list[tuple[str, bytes]]) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory(prefix="posterbench-memory-") as state,
        gunicorn_server(server_settings(args, Path(state)), workers) as url,
    ):
        warm(url, WARM_UPLOADS_PER_WORKER * workers, 1, posters)  # one at a time: every worker gets some
        if args.clients > 1:
            warm(url, WARM_UPLOADS_PER_WORKER * workers, args.clients, posters)
        time.sleep(1)
        pids = children(url.pid)
        rss = [memory_kib(pid, "Rss") / 1024 for pid in pids]
        pss = [memory_kib(pid, "Pss") / 1024 for pid in pids]
        shared_weights = [
            (mapped_rss_kib(pid, ONNX_DATA_FILE) + mapped_rss_kib(pid, INT8_DATA_FILE)) / 1024 for pid in pids
        ]
        master_pss = memory_kib(url.pid, "Pss") / 1024
        runtimes = sorted({runtime(pid) for pid in pids})
    return {
        "workers": len(pids),
        "runtime": ",".join(runtimes),
        "rss_mib_each": [round(value) for value in rss],
        "rss_mib": round(sum(rss)),
        "pss_mib": round(sum(pss)),
        "weights_mapping_rss_mib_each": [round(value) for value in shared_weights],
        "master_pss_mib": round(master_pss),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_served_arguments(parser)
    parser.add_argument("--workers", default="1,4", help="comma-separated worker counts (default 1,4)")
    parser.add_argument("--clients", type=int, default=1, help="then as many uploads again from this many clients")
    args = parser.parse_args(argv)
    catalog = read_catalog(args.catalog)
    posters = [(movie.imdb_id, catalog.poster_path(movie).read_bytes()) for movie in catalog.movies[:20]]
    summary = {}
    for workers in (int(count) for count in args.workers.split(",")):
        summary[str(workers)] = result = measure(args, workers, posters)
        print(
            f"{workers} worker(s) ({result['runtime']}): RSS {result['rss_mib']:,} MiB in all "
            f"({result['rss_mib_each']} each), PSS {result['pss_mib']:,} MiB in all, "
            f"master {result['master_pss_mib']} MiB; the ONNX weights' shared mapping resident in each worker: "
            f"{result['weights_mapping_rss_mib_each']} MiB"
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    try:
        main()
    except requests.RequestException as error:
        sys.exit(f"the server stopped answering: {error}")

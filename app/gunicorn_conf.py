"""gunicorn settings for PosterBench: `gunicorn -c python:app.gunicorn_conf "app:create_app()"`, which `posterbench
serve`, the Docker image and tools/serving.py run. A module of the installed package, so that serving needs no checkout.
Each can be overridden on the command line or with GUNICORN_* / POSTERBENCH_* variables as below; the threads of
each request's numerical work (BLAS, OpenMP, ONNX Runtime) with OPENBLAS_NUM_THREADS, OMP_NUM_THREADS,
MKL_NUM_THREADS and POSTERBENCH_INFERENCE_THREADS (default: the request's share of the cores, see on_starting)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from typing import Any

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Each worker process loads the model, index and catalog once (no preload: neither TensorFlow nor ONNX Runtime's
# thread pools survive a fork). The ONNX export's weights are memory-mapped, so the workers share one copy of them.
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# Threads share their worker's model; ONNX Runtime (or TensorFlow) releases the GIL while it computes.
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
# A worker starting up loads the model (seconds with ONNX Runtime; tens of seconds for TensorFlow on a cold disk);
# a request may fetch a poster from IMDb (IMDB_TIMEOUT_SECONDS, 10 s per request, twice).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
# Bound memory growth: a worker is replaced after this many requests (staggered by the jitter).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = 200
limit_request_line = 8190
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
# gunicorn's default line, less the query string and the Referer: a results page's address carries its key
# (app.recommendations.recommendation_key), and whoever reads the log must not be able to open the upload.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s"'
KEY_IN_QUERY = re.compile(r"(?<=[?&]key=)[^&#\s\"']+")


class WithoutKeys(logging.Filter):
    """Blanks the `key=` of a query string in a log record: gunicorn's error log names a request by its whole URI
    when an error escapes the app ("Error handling request GET /results/1?key=..."), and no setting changes that."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = KEY_IN_QUERY.sub("(hidden)", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                KEY_IN_QUERY.sub("(hidden)", value) if isinstance(value, str) else value for value in record.args
            )
        return True


CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class PrintableFields(logging.Filter):
    """Escapes control characters (as \\xNN) in the access log's fields: %(U)s is the path as decoded, so a %0A in
    an address wrote a line of its own, a forged entry, and a %00 a NUL byte. gunicorn escapes only double quotes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):  # gunicorn's atoms, a dict subclass kept as it is
            for name, value in list(record.args.items()):
                if isinstance(value, str) and CONTROL_CHARACTERS.search(value):
                    record.args[name] = CONTROL_CHARACTERS.sub(lambda match: f"\\x{ord(match[0]):02x}", value)
        return True


for logger_name, log_filter in (("gunicorn.error", WithoutKeys), ("gunicorn.access", PrintableFields)):
    if not any(isinstance(existing, log_filter) for existing in logging.getLogger(logger_name).filters):
        logging.getLogger(logger_name).addFilter(log_filter())  # the master's, and so every forked worker's
# gunicorn 25's control socket (gunicornc) is not used; its fixed default path ($HOME/.gunicorn/gunicorn.ctl) would be
# taken over by a second server on the host and deleted when either stops.
control_socket_disable = True
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# The environment variables that bound each worker's numerical thread pools; a value already set is kept.
BLAS_VARIABLES = {"openblas": "OPENBLAS_NUM_THREADS", "mkl": "MKL_NUM_THREADS", "openmp": "OMP_NUM_THREADS"}
INFERENCE_VARIABLE = "POSTERBENCH_INFERENCE_THREADS"  # ONNX Runtime's intra-op threads (app config INFERENCE_THREADS)
JOB_WORKER_VARIABLE = "GUNICORN_JOB_WORKER"
"""Whether the master starts the job worker beside the web workers (default yes; `posterbench serve --no-job-worker`
and 0 / no / false say no: other hosts or containers run `posterbench worker`)."""
JOB_WORKER_COMMAND = (sys.executable, "-m", "posterbench.cli", "worker", "--restart")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or taskset's share), else all of them.
    model.index.available_cores's twin, kept here so that gunicorn's master reads its settings without importing the
    model's packages (NumPy, ONNX Runtime) before it forks."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity (macOS)
        return os.cpu_count() or 1


def threads_per_request(cores: int, workers: int, threads: int) -> int:
    """Threads one request's numerical work may use: the cores shared by all the requests that can run at once.

    Each gthread request runs its search (BLAS) and inference (ONNX Runtime) on its own thread, so a busy server runs
    `workers` x `threads` of them at once; a pool wider than its share then only adds threads that compete (and
    OpenBLAS's spin while they wait) for the cores the other requests are using: 2 workers of 4 threads on 2 cores
    get 1 each, on 32 cores 4 each."""
    return max(1, cores // max(1, workers * threads))


def thread_setting(name: str, default: int) -> int:
    """The whole number of threads in the environment variable `name`, else `default`."""
    try:
        return max(1, int(os.environ[name]))
    except (KeyError, ValueError):
        return default


def starts_job_worker() -> bool:
    return os.environ.get(JOB_WORKER_VARIABLE, "yes").strip().lower() not in ("0", "no", "false", "off")


def start_job_worker(server: Any) -> subprocess.Popen | None:
    """The job worker (`posterbench worker --restart`: restarted when it is killed) as a child of the master, with
    the master's environment as it was started (before the web workers' thread limits); the kernel stops it when the
    master exits (the parent-death signal), and it gives its running job back to the queue. None when
    GUNICORN_JOB_WORKER says no."""
    if not starts_job_worker():
        server.log.info("no job worker started here (%s=%s)", JOB_WORKER_VARIABLE, os.environ[JOB_WORKER_VARIABLE])
        return None
    from app.supervision import stop_with_parent

    process = subprocess.Popen(JOB_WORKER_COMMAND, env=dict(os.environ), preexec_fn=stop_with_parent(os.getpid()))
    server.log.info(
        "job worker started beside the web workers: %s (pid %d)", " ".join(JOB_WORKER_COMMAND[2:]), process.pid
    )
    return process


def on_starting(server: Any) -> None:
    """In the master, once the command line and config are read and before any worker forks and imports NumPy: the
    job worker is started (start_job_worker), then each web worker's BLAS, OpenMP and ONNX Runtime threads default
    to a request's share of the cores (the libraries read these variables when they load, in the workers)."""
    start_job_worker(server)
    share = threads_per_request(available_cores(), server.cfg.workers, server.cfg.threads)
    for name in (*BLAS_VARIABLES.values(), INFERENCE_VARIABLE):
        os.environ.setdefault(name, str(share))
    server.log.info(
        "threads per request: %s (%d cores, %d workers x %d threads)",
        ", ".join(f"{name}={os.environ[name]}" for name in (*BLAS_VARIABLES.values(), INFERENCE_VARIABLE)),
        available_cores(),
        server.cfg.workers,
        server.cfg.threads,
    )


def post_worker_init(worker: Any) -> None:
    """In each worker, with the app loaded: hold the BLAS and OpenMP pools to the variables' values even where a
    library was loaded before they were set (--preload), and log the threads the worker runs with."""
    from threadpoolctl import threadpool_info, threadpool_limits  # scikit-learn's dependency; a worker-only import

    share = threads_per_request(available_cores(), worker.cfg.workers, worker.cfg.threads)
    threadpool_limits({api: thread_setting(name, share) for api, name in BLAS_VARIABLES.items()})
    pools: dict[str, int] = {}
    for pool in threadpool_info():
        pools[pool["internal_api"]] = max(pools.get(pool["internal_api"], 0), pool["num_threads"])
    inference = inference_threads(worker.wsgi)
    worker.log.info(
        "worker %d threads: %s, onnxruntime=%s",
        worker.pid,
        ", ".join(f"{api}={count}" for api, count in sorted(pools.items())) or "no BLAS or OpenMP loaded",
        "not loaded" if inference is None else inference,
    )
    served = served_precision(worker.wsgi)
    if served is not None:
        worker.log.info("worker %d serves the %s model: %s", worker.pid, *served)


def served_model(application: Any) -> Any:
    """The model the served PosterBench app holds, None for another app (the load benchmark's baseline)."""
    resources = getattr(application, "extensions", {}).get("posterbench")
    return getattr(resources, "model", None)


def served_precision(application: Any) -> tuple[str, str] | None:
    """The served PosterBench app's model precision (int8 or float32) and why it was chosen; None for another app."""
    model = served_model(application)
    if model is None:
        return None
    reason = getattr(model, "precision_reason", "") or "Keras weights (no ONNX export: make onnx writes one)"
    return getattr(model, "precision", "float32"), reason


def inference_threads(application: Any) -> int | None:
    """ONNX Runtime's intra-op threads in the served PosterBench app, None when it serves no ONNX model (the Keras
    weights, or another app: the load benchmark's baseline)."""
    return getattr(served_model(application), "threads", None)

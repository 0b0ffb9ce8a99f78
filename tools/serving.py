"""Runs the app under gunicorn (app/gunicorn_conf.py) in a child process on a free loopback port, configured by
POSTERBENCH_* variables as `make serve` does, and, when asked, its job worker (`posterbench worker`) beside it: for
the browser tests and the load benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 180.0  # each worker loads the model (TensorFlow's start is the slow one)
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerURL(str):
    """The served app's URL, a plain str to its users, that also knows the gunicorn master's process id (`pid`),
    for tests that kill its workers."""

    pid: int
    worker: subprocess.Popen | None  # the job worker, when one was started

    def __new__(cls, url: str, pid: int, worker: subprocess.Popen | None = None) -> ServerURL:
        served = super().__new__(cls, url)
        served.pid = pid
        served.worker = worker
        return served


@contextmanager
def gunicorn_server(
    settings: Mapping[str, str],
    workers: int = 2,
    log_dir: Path | None = None,
    start_seconds: float = START_SECONDS,
    app_target: str = "app:create_app()",
    job_worker: bool = False,
) -> Iterator[ServerURL]:
    """Serve the app with `settings` (names without the POSTERBENCH_ prefix, e.g. {"CATALOG": ...}) and yield its
    URL (with the master's `pid`) once /healthz answers; stop it on exit. gunicorn's output goes to `log_dir`
    (default: a temporary one). `app_target` is what gunicorn serves (the benchmarks' baseline serves another).
    With `job_worker`, `posterbench worker` runs beside it with the same settings (its output in worker.log), ready
    before the URL is yielded, and is stopped first."""
    with tempfile.TemporaryDirectory(prefix="posterbench-gunicorn-") as scratch:
        logs = Path(log_dir or scratch)
        port = free_port()
        environment = {
            **os.environ,
            **{f"POSTERBENCH_{name}": value for name, value in settings.items()},
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_ACCESS_LOG": str(logs / "access.log"),
        }
        log = logs / "gunicorn.log"
        command = [sys.executable, "-m", "gunicorn", "-c", "python:app.gunicorn_conf", "--bind", f"127.0.0.1:{port}"]
        with log.open("w") as output:
            server = subprocess.Popen(
                [*command, app_target], cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
            )
        worker = start_job_worker(environment, logs / "worker.log") if job_worker else None
        url = ServerURL(f"http://127.0.0.1:{port}", server.pid, worker)
        try:
            wait_until_healthy(url, server, log, start_seconds)
            if worker is not None:
                wait_until_ready(worker, logs / "worker.log", start_seconds)
            yield url
        finally:
            if url.worker is not None and url.worker.poll() is None:
                url.worker.terminate()
                url.worker.wait(timeout=60)
            server.terminate()
            server.wait(timeout=60)


def start_job_worker(environment: Mapping[str, str], log: Path) -> subprocess.Popen:
    """`posterbench worker` (the job worker) with `environment`, its output appended to `log`."""
    with log.open("a") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "posterbench.cli", "worker"],
            cwd=ROOT,
            env=dict(environment),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait_until_ready(worker: subprocess.Popen, log: Path, seconds: float) -> None:
    """Wait until the job worker says it is ready (its log's "job worker ... ready" line)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the job worker exited with {worker.returncode}:\n{log.read_text()[-4000:]}")
        if f"job worker {worker.pid} ready" in log.read_text():
            return
        time.sleep(0.1)
    raise RuntimeError(f"the job worker was not ready within {seconds:g} s:\n{log.read_text()[-4000:]}")


def wait_until_healthy(url: str, server: subprocess.Popen, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with DIRECT.open(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"gunicorn did not answer /healthz within {seconds:g} s:\n{log.read_text()[-4000:]}")

"""Runs the app under gunicorn (app/gunicorn_conf.py) in a child process on a free loopback port, configured by
POSTERBENCH_* variables as `make serve` does, and, when asked, its job worker beside it as `posterbench serve` starts
it; and a lone job worker (`posterbench worker`): for the tests and the benchmarks."""

from __future__ import annotations

import os
import re
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

    def __new__(cls, url: str, pid: int) -> ServerURL:
        served = super().__new__(cls, url)
        served.pid = pid
        return served


JOB_WORKER_STARTED = re.compile(r"job worker started beside the web workers: .* \(pid (\d+)\)")
JOB_WORKER_READY = re.compile(r"job worker (\d+) ready")


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
    With `job_worker`, gunicorn's master starts the job worker as `posterbench serve` does (app/gunicorn_conf.py,
    its output in gunicorn.log too): ready before the URL is yielded, and gone before this returns."""
    with tempfile.TemporaryDirectory(prefix="posterbench-gunicorn-") as scratch:
        logs = Path(log_dir or scratch)
        port = free_port()
        environment = {
            **os.environ,
            **{f"POSTERBENCH_{name}": value for name, value in settings.items()},
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_ACCESS_LOG": str(logs / "access.log"),
            "GUNICORN_JOB_WORKER": "yes" if job_worker else "no",
        }
        log = logs / "gunicorn.log"
        command = [sys.executable, "-m", "gunicorn", "-c", "python:app.gunicorn_conf", "--bind", f"127.0.0.1:{port}"]
        with log.open("w") as output:
            server = subprocess.Popen(
                [*command, app_target], cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
            )
        url = ServerURL(f"http://127.0.0.1:{port}", server.pid)
        try:
            wait_until_healthy(url, server, log, start_seconds)
            if job_worker:
                wait_for_line(JOB_WORKER_READY, log, server, "gunicorn", start_seconds, "the job worker was not ready")
            yield url
        finally:
            server.terminate()
            server.wait(timeout=60)
            for supervisor in JOB_WORKER_STARTED.findall(log.read_text()):
                wait_until_gone(int(supervisor), 60)


def wait_for_line(
    pattern: re.Pattern, log: Path, process: subprocess.Popen, name: str, seconds: float, failure: str
) -> None:
    """Wait until `log` holds a line matching `pattern`; RuntimeError (`name` exited, or `failure`) with the log's end
    when `process` exits first or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pattern.search(log.read_text()):
            return
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"{failure} within {seconds:g} s:\n{log.read_text()[-4000:]}")


def is_running(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (Linux's /proc; elsewhere always False)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def wait_until_gone(pid: int, seconds: float) -> bool:
    """Wait up to `seconds` until process `pid` has exited (the job worker stops when gunicorn's master does);
    whether it did."""
    deadline = time.monotonic() + seconds
    while is_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


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
    ready = re.compile(rf"job worker {worker.pid} ready")
    wait_for_line(ready, log, worker, "the job worker", seconds, "the job worker was not ready")


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

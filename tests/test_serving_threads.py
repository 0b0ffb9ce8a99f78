"""Threads sized to the server: app/gunicorn_conf.py gives each request's numerical work (BLAS, OpenMP, ONNX Runtime)
its share of the cores, keeps what the environment already says, and real gunicorn workers run with those limits
(each logs them once the app is loaded)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from app import gunicorn_conf
from app.gunicorn_conf import BLAS_VARIABLES, INFERENCE_VARIABLE, available_cores, threads_per_request
from app.resources import inference_threads
from tools.serving import gunicorn_server

THREAD_VARIABLES = (*BLAS_VARIABLES.values(), INFERENCE_VARIABLE)
WORKER_LINE = re.compile(r"worker (\d+) threads: (.*)$", re.MULTILINE)


@pytest.fixture
def unset_thread_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of the thread variables set, and whatever a test sets in os.environ undone after it."""
    for name in THREAD_VARIABLES:
        monkeypatch.setenv(name, "0")  # recorded, so that the end of the test restores the original state
        monkeypatch.delenv(name)


def worker_threads(log: Path, workers: int, seconds: float = 30) -> dict[str, dict[str, str]]:
    """{worker pid: {pool: threads}} from the workers' log lines, once `workers` have logged."""
    deadline = time.monotonic() + seconds
    while True:
        found = WORKER_LINE.findall(log.read_text())
        if len(found) >= workers or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return {pid: dict(pair.split("=") for pair in pools.split(", ")) for pid, pools in found}


@pytest.mark.parametrize(
    ("cores", "workers", "threads", "share"),
    [(2, 2, 4, 1), (8, 2, 4, 1), (16, 2, 4, 2), (32, 2, 4, 4), (64, 1, 1, 64), (1, 8, 8, 1), (6, 1, 4, 1)],
)
def test_a_request_gets_its_share_of_the_cores(cores: int, workers: int, threads: int, share: int) -> None:
    assert threads_per_request(cores, workers, threads) == share


def test_the_master_sets_each_pool_to_the_share_and_keeps_what_is_set(
    unset_thread_variables: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gunicorn_conf, "available_cores", lambda: 16)
    monkeypatch.setenv(gunicorn_conf.JOB_WORKER_VARIABLE, "no")  # tests/test_cli.py starts it
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")  # the operator's own setting
    logged = []
    server = SimpleNamespace(
        cfg=SimpleNamespace(workers=2, threads=4), log=SimpleNamespace(info=lambda *args: logged.append(args))
    )
    gunicorn_conf.on_starting(server)
    assert {name: os.environ[name] for name in THREAD_VARIABLES} == {
        "OPENBLAS_NUM_THREADS": "3",
        "MKL_NUM_THREADS": "2",
        "OMP_NUM_THREADS": "2",
        "POSTERBENCH_INFERENCE_THREADS": "2",
    }
    assert "16 cores, 2 workers x 4 threads" in logged[-1][0] % logged[-1][1:]


@pytest.mark.parametrize(("setting", "threads"), [(None, None), ("", None), (3, 3), ("2", 2)])
def test_the_inference_threads_setting(setting: object, threads: int | None) -> None:
    assert inference_threads(setting) == threads


@pytest.mark.parametrize("setting", [0, "0", "two", True, 1.5, -1])
def test_a_bad_inference_threads_setting_stops_the_app(setting: object) -> None:
    with pytest.raises(RuntimeError, match="POSTERBENCH_INFERENCE_THREADS must be a whole number"):
        inference_threads(setting)


def test_the_app_runs_onnx_runtime_on_the_threads_it_is_given(app_settings: dict, onnx_model_dir: Path) -> None:
    from app import create_app
    from app.resources import EXTENSION

    default = create_app({**app_settings, "MODEL": str(onnx_model_dir)})
    given = create_app({**app_settings, "MODEL": str(onnx_model_dir), "INFERENCE_THREADS": 2})
    assert default.extensions[EXTENSION].model.threads == 1  # onnx_model.INTRA_OP_THREADS
    assert given.extensions[EXTENSION].model.threads == 2
    assert given.extensions[EXTENSION].search.threads == 2  # the exact search's Manhattan pass too
    one = create_app({**app_settings, "MODEL": str(onnx_model_dir), "INFERENCE_THREADS": 1})
    assert one.extensions[EXTENSION].search.threads == 1


def served_worker_threads(
    demo_catalog_dir: Path, onnx_model_dir: Path, index_dir: Path, state: Path, workers: int
) -> dict[str, dict[str, str]]:
    """Start gunicorn (app/gunicorn_conf.py) over the demo catalog and its ONNX model, and read what its workers
    logged of their threads."""
    settings = {
        "CATALOG": str(demo_catalog_dir),
        "MODEL": str(onnx_model_dir),
        "INDEX": str(index_dir),
        "DATABASE": str(state / "posterbench.sqlite"),
        "SECRET_KEY": "threads-test-secret",
    }
    with gunicorn_server(settings, workers=workers, log_dir=state, start_seconds=60):
        return worker_threads(state / "gunicorn.log", workers)


def test_gunicorn_workers_run_blas_and_onnx_runtime_on_their_share(
    unset_thread_variables: None, demo_catalog_dir: Path, onnx_model_dir: Path, index_dir: Path, tmp_path: Path
) -> None:
    """Two workers of four threads (the defaults): on fewer than 16 cores, one thread per request in every pool, where
    OpenBLAS alone would start one per core in each worker."""
    share = str(threads_per_request(available_cores(), 2, int(os.environ.get("GUNICORN_THREADS", "4"))))
    workers = served_worker_threads(demo_catalog_dir, onnx_model_dir, index_dir, tmp_path, workers=2)
    assert len(workers) == 2, (tmp_path / "gunicorn.log").read_text()[-3000:]
    for pools in workers.values():
        assert pools["openblas"] == share and pools["onnxruntime"] == share, pools
        assert pools.get("openmp", share) == share  # libgomp is loaded by scikit-learn, if at all
    log = (tmp_path / "gunicorn.log").read_text()
    assert f"OPENBLAS_NUM_THREADS={share}" in log
    for pid in workers:  # and which export it serves, and why (this model has no int8 export)
        assert f"worker {pid} serves the float32 model: no int8 export beside it (make onnx writes one)" in log


def test_gunicorn_workers_keep_the_threads_the_environment_sets(
    unset_thread_variables: None,
    monkeypatch: pytest.MonkeyPatch,
    demo_catalog_dir: Path,
    onnx_model_dir: Path,
    index_dir: Path,
    tmp_path: Path,
) -> None:
    """One worker of four threads would get one thread per pool on fewer than 8 cores; the operator's settings win."""
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    monkeypatch.setenv("POSTERBENCH_INFERENCE_THREADS", "3")
    workers = served_worker_threads(demo_catalog_dir, onnx_model_dir, index_dir, tmp_path, workers=1)
    blas = str(min(2, available_cores()))  # OpenBLAS runs no more threads than there are cores
    assert [(pools["openblas"], pools["onnxruntime"]) for pools in workers.values()] == [(blas, "3")]

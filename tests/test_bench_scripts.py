"""The benchmark scripts run end to end on small generated data (their figures are for real data;
here only that they work and print what they promise)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_script(*args: str) -> str:
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_posters_clems_compares_model_and_embedding(demo_catalog_dir, trained, index_dir) -> None:
    output = run_script(
        "bench/posters_clems.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(trained[1]), "--index", str(index_dir)),
        *("--trees", "20", "--costs", "hamming", "f1"),
    )
    last = json.loads(output.strip().splitlines()[-1])
    assert set(last) == {"model", "model+clems (hamming)", "model+clems (f1)"}
    assert 0 <= last["model+clems (hamming)"]["hamming"] <= 1
    assert "the paper's Table II" in output and "hamming" in output


def test_inference_benchmark_reports_latency_and_memory(demo_catalog_dir, trained) -> None:
    output = run_script(
        "bench/inference.py", "--model", str(trained[1]), "--catalog", str(demo_catalog_dir), "--runs", "5"
    )
    assert "one poster: median" in output and "batch of 32" in output and "resident memory" in output

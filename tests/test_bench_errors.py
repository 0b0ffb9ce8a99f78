"""A benchmark run as a script (`python -m bench.NAME`, what `posterbench bench NAME` runs) ends in one line, as the
project's commands do: a usage error for a bad option, "Error: ..." for an input the pipeline cannot use, "Aborted!"
on Ctrl-C; never a traceback for these (bench/__init__.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import popen_interruptible

ROOT = Path(__file__).resolve().parents[1]


def run_bench(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["bench.recommend_search", "--dim", "0"], "argument --dim: 0 is less than 1"),
        (["bench.recommend_search", "--sizes", "80000,abc"], "argument --sizes: 'abc' is not a whole number"),
        (["bench.recommend_search", "--seed", "-1"], "argument --seed: -1 is less than 0"),
        (["bench.bandit_simulation", "--plot", "regret.csv"], "argument --plot: 'regret.csv' does not end in .png"),
        (["bench.bandit_simulation", "--seeds", "0"], "argument --seeds: 0 is less than 1"),
        (["bench.inference", "--model", "m", "--catalog", "c", "--runs", "0"], "argument --runs: 0 is less than 1"),
    ],
)
def test_a_bad_option_is_a_usage_error(arguments: list[str], message: str) -> None:
    finished = run_bench(*arguments)
    assert finished.returncode == 2 and message in finished.stderr, finished.stderr
    assert "Traceback" not in finished.stderr


def test_an_input_the_pipeline_refuses_is_one_line(tmp_path: Path) -> None:
    finished = run_bench("bench.image_cost", "--catalog", str(tmp_path / "nowhere"))
    assert finished.returncode == 1 and "Traceback" not in finished.stderr
    assert finished.stderr.strip() == f"Error: {tmp_path / 'nowhere'}: catalog directory does not exist"


@pytest.mark.parametrize("jobs", ["1", "2"], ids=["in the process", "in a pool of two"])
def test_ctrl_c_ends_a_benchmark_in_one_line(tmp_path: Path, jobs: str) -> None:
    """With a pool, the workers too are gone at once (concurrent.futures' pool waited for every queued run)."""
    command = [sys.executable, "-m", "bench.bandit_simulation", "--rounds", "10000000", "--seeds", "50"]
    command += ["--jobs", jobs, "--plot", str(tmp_path / "regret.png")]
    running = popen_interruptible(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # past its imports, into the simulation
    running.send_signal(signal.SIGINT)
    _, stderr = running.communicate(timeout=20)
    assert running.returncode != 0 and stderr.strip() == "Aborted!", stderr

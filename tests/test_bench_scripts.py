"""The benchmark scripts run end to end on small generated data (their figures are for real data;
here only that they work and print what they promise)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_search_benchmark_agrees_with_the_authors_way(tmp_path) -> None:
    output = run_script(
        "bench/recommend_search.py",
        "--rows",
        "3000",
        "--scale",
        "1000,4000",
        "--queries",
        "3",
        "--baseline-queries",
        "1",
    )
    assert output.count("| yes |") == 3 and "| NO |" not in output
    last = json.loads(output.strip().splitlines()[-1])
    assert set(last) == {"manhattan", "euclidean", "cosine"}
    assert all(set(by_size) == {"1000", "4000"} and min(by_size.values()) > 0 for by_size in last.values())


def test_recommendation_quality_beats_random_picks(demo_catalog_dir, trained, index_dir) -> None:
    output = run_script(
        "bench/recommend_quality.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(trained[1]), "--index", str(index_dir)),
    )
    random_share = float(next(line for line in output.splitlines() if line.startswith("| random |")).split("|")[2])
    last = json.loads(output.strip().splitlines()[-1])
    assert set(last) == {"manhattan", "euclidean", "cosine"}
    for scores in last.values():
        assert set(scores) == {"genre_share", "genre_jaccard", "same_decade", "n"}
        assert scores["n"] > 0 and scores["genre_share"] > random_share + 0.1


def test_recommendation_quality_takes_a_second_catalog_as_queries(demo_catalog_dir, trained, index_dir) -> None:
    output = run_script(
        "bench/recommend_quality.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(trained[1]), "--index", str(index_dir)),
        *("--queries", str(demo_catalog_dir), "--queries-index", str(index_dir)),
    )
    last = json.loads(output.strip().splitlines()[-1])
    assert all(scores["n"] == 120 for scores in last.values())  # every demo movie is a query


def test_bandit_simulation_prints_regret_and_plots(tmp_path) -> None:
    plot = tmp_path / "regret.png"
    output = run_script("bench/bandit_simulation.py", "--rounds", "300", "--seeds", "2", "--plot", str(plot))
    last = json.loads(output.strip().splitlines()[-1])
    assert "epsilon-greedy, decay 50 (paper)" in last and len(last) == 6
    assert all(regret >= 0 for regret in last.values())
    assert plot.stat().st_size > 0


def test_load_benchmark_serves_every_request(demo_catalog_dir, trained, index_dir) -> None:
    output = run_script(
        "bench/load.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(trained[1]), "--index", str(index_dir)),
        *("--workers", "1", "--clients", "1,2", "--requests", "8", "--kinds", "upload,sample,feedback,bandit"),
        "--baseline",
    )
    last = json.loads(output.strip().splitlines()[-1])
    assert set(last) == {"upload", "sample", "feedback", "bandit", "authors_upload"}
    for cells in last.values():
        assert set(cells) == {"1", "2"}
        for figures in cells.values():
            assert figures["requests"] == 8 and figures["failed"] == 0
            assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"] and figures["rps"] > 0


@pytest.mark.skipif(not shutil.which("wrk") and not os.environ.get("CI"), reason="wrk is not installed")
def test_load_benchmark_under_wrk_over_postgres(demo_catalog_dir, trained, index_dir, postgres_url) -> None:
    output = run_script(
        "bench/load.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(trained[1]), "--index", str(index_dir)),
        *("--workers", "1", "--clients", "1,2", "--requests", "8", "--seconds", "5"),
        *("--kinds", "upload,sample,feedback,bandit", "--tool", "wrk", "--database-url", postgres_url),
    )
    assert "PostgreSQL, requests sent by wrk" in output
    last = json.loads(output.strip().splitlines()[-1])
    assert set(last) == {"upload", "sample", "feedback", "bandit"}
    for cells in last.values():
        assert set(cells) == {"1", "2"}
        for figures in cells.values():
            assert figures["requests"] == 8 and figures["failed"] == 0, figures
            assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"] and figures["rps"] > 0
    from app.db import open_database

    with open_database(postgres_url) as database:  # the votes went to PostgreSQL: 8 per cell, plus a warm-up each
        assert database.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 2 * 8 + (1 + 2)


def test_upload_profile_times_every_stage(demo_catalog_dir, trained, index_dir) -> None:
    output = run_script(
        "bench/upload_profile.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(trained[1]), "--index", str(index_dir)),
        *("--uploads", "6"),
    )
    last = json.loads(output.strip().splitlines()[-1])
    assert last["unprofiled_ms"] > 0 and last["network"] > 0 and last["database write"] > 0
    assert last["upload (whole request)"] >= last["network"] + last["database write"]


def test_serving_memory_reads_every_worker(demo_catalog_dir, trained, index_dir) -> None:
    output = run_script(
        "bench/serving_memory.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(trained[1]), "--index", str(index_dir)),
        *("--workers", "2"),
    )
    last = json.loads(output.strip().splitlines()[-1])
    figures = last["2"]
    assert figures["workers"] == 2 and len(figures["rss_mib_each"]) == 2
    assert figures["runtime"] == "keras"  # the model has no ONNX export (tests/test_onnx_serving.py serves one)
    assert abs(figures["rss_mib"] - sum(figures["rss_mib_each"])) <= 2  # each rounded on its own
    assert 100 < figures["pss_mib"] <= figures["rss_mib"] + 1  # shared pages count once in PSS


def test_scrape_replica_reproduces_a_small_replica() -> None:
    """`make scrape-replica` on a small replica (needs Debian's chromium and chromedriver, as CI has)."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")) and not os.environ.get("CI"):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    output = run_script("bench/scrape_replica.py", "--movies", "60", "--result-cap", "30")
    last = json.loads(output.strip().splitlines()[-1])
    assert last["differences"] == 0
    assert last["movies"] == last["posters"] > 0 and last["pages_per_second"] > 0
    assert "catalog valid" in output

"""The benchmark scripts run end to end on small generated data (their figures are for real data;
here only that they work and print what they promise)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def run_script(*args: str) -> str:
    """Run bench/NAME.py with ARGS as the module bench.NAME, as `posterbench bench NAME ARGS` does, and return what it
    printed; a non-zero exit fails the test. It runs in this process, from the repository's root, so that each script
    reuses the imports the tests already paid for (TensorFlow's alone takes seconds of CPU in a fresh Python); the
    working directory, sys.argv and os.environ are put back afterwards, and a script that changes other process-wide
    settings puts them back itself (bench/image_cost.py's builders_pillow). Meanwhile this process's BLAS and OpenMP
    run on one thread (threadpoolctl, put back afterwards): the suite runs 3 processes on 2 cores, where OpenBLAS's
    second thread mostly spins while it waits, up to twice the CPU seconds for the same figures. A script that sets
    its own limits still does (bench/serving_threads.py), and the servers the scripts start set theirs."""
    from threadpoolctl import threadpool_limits

    script, *arguments = args
    module = f"bench.{Path(script).stem}"
    saved_directory, saved_argv, saved_environment = Path.cwd(), sys.argv, dict(os.environ)
    printed = io.StringIO()
    sys.argv = [str(ROOT / script), *arguments]
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(printed), warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.filterwarnings("ignore", category=RuntimeWarning, module="runpy")  # bench.NAME imported before
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        assert exit_.code in (None, 0), f"{script} exited with {exit_.code!r}; it printed: {printed.getvalue()[-3000:]}"
    finally:
        os.chdir(saved_directory)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_environment)
    return printed.getvalue()


def test_posters_clems_compares_model_and_embedding(demo_catalog_dir, trained, index_dir) -> None:
    output = run_script(
        "bench/posters_clems.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(trained[1]), "--index", str(index_dir)),
        *("--trees", "5", "--costs", "hamming", "f1"),
    )
    last = json.loads(output.strip().splitlines()[-1])
    assert set(last) == {"model", "model+clems (hamming)", "model+clems (f1)"}
    assert 0 <= last["model+clems (hamming)"]["hamming"] <= 1
    assert "the paper's Table II" in output and "hamming" in output


def test_training_speed_times_the_naive_way_against_the_cached_one(small_catalog, training_weights: Path) -> None:
    output = run_script(
        *("bench/training_speed.py", "--catalog", str(small_catalog.directory), "--weights", str(training_weights)),
        *("--preset", "demo", "--posters", "4", "--epochs", "2"),
    )
    assert "4 posters from" in output and "preset demo (100 x 100 px)" in output
    naive = re.search(r"naive: ([\d.]+) s per epoch \(epochs: ([\d.]+), ([\d.]+) s\)", output)
    cached = re.search(r"cached: frozen layers once for 1 copies in ([\d.]+) s, then ([\d.]+) s per epoch", output)
    assert naive and cached, output
    assert float(naive.group(1)) == pytest.approx(float(naive.group(3)), abs=0.051)  # the first, tracing epoch untimed
    assert re.search(r"^\s+60 epochs: naive +[\d.]+ s +cached +[\d.]+ s +gain x[\d.]+$", output, re.MULTILINE)
    assert re.search(r"per-epoch gain once cached: x\d+", output)


def test_frozen_features_probe_scores_each_pooling_at_each_size(demo_catalog_dir, trained, training_weights) -> None:
    output = run_script(
        *("bench/frozen_features_probe.py", "--catalog", str(demo_catalog_dir), "--model", str(trained[1])),
        *("--weights", str(training_weights), "--sizes", "32", "48", "--train", "40"),
    )
    assert re.search(r"^40 training and \d+ validation posters", output, re.MULTILINE), output
    scores = re.findall(
        r"^(\d+) px, (avg\+max|avg|max) +pooling: validation macro ROC-AUC ([\d.]+)", output, re.MULTILINE
    )
    assert [(size, pooling) for size, pooling, _ in scores] == [
        (size, pooling) for size in ("32", "48") for pooling in ("avg", "max", "avg+max")
    ]
    assert all(0 <= float(auc) <= 1 for *_, auc in scores)


def test_inference_benchmark_reports_latency_and_memory(demo_catalog_dir, trained) -> None:
    output = run_script(
        "bench/inference.py", "--model", str(trained[1]), "--catalog", str(demo_catalog_dir), "--runs", "2"
    )
    assert "one poster: median" in output and "batch of 32" in output and "resident memory" in output


def test_search_benchmark_compares_exact_and_approximate_search() -> None:
    output = run_script("bench/recommend_search.py", "--quick")
    assert output.count("| yes |") == 3 and "| NO |" not in output
    last = json.loads(output.strip().splitlines()[-1])
    assert set(last) == {"manhattan", "euclidean", "cosine", "index"}
    for distance in ("manhattan", "euclidean", "cosine"):
        assert set(last[distance]) == {"1500", "3000"}
        for cell in last[distance].values():
            assert cell["exact_ms"] > 0 and cell["approximate_ms"] > 0 and cell["filtered_approximate_ms"] > 0
            assert 0.8 <= cell["recall_at_5"] <= 1 and 0.8 <= cell["filtered_recall_at_5"] <= 1
            assert 0.8 <= cell["recall_at_shortlist"] <= 1 and 0.8 <= cell["filtered_recall_at_shortlist"] <= 1
    assert all(sizes["build_s"] > 0 and sizes["disk_mb"] > 0 for sizes in last["index"].values())


RECOMMEND_KEYS = {"genre_share", "genre_jaccard", "same_decade", "year_gap_median", "rating_gap_mean", "n"}


def check_recommendation_scores(last: dict) -> None:
    """The last line of bench/recommend_quality.py: each distance and the random picks, every figure in range."""
    assert set(last) == {"manhattan", "euclidean", "cosine", "random"}
    for scores in last.values():
        assert set(scores) == RECOMMEND_KEYS
        assert scores["n"] > 0
        for key in ("genre_share", "genre_jaccard", "same_decade"):
            assert 0 <= scores[key] <= 1, (key, scores)
        assert 0 <= scores["year_gap_median"] <= 200  # the demo's years span a century
        assert 0 <= scores["rating_gap_mean"] <= 9  # IMDb ratings run from 1 to 10


def test_recommendation_quality_beats_random_picks(demo_catalog_dir, trained, index_dir) -> None:
    output = run_script(
        "bench/recommend_quality.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(trained[1]), "--index", str(index_dir)),
    )
    lines = output.splitlines()
    exact_random = next(line for line in lines if line.startswith("| random (exact expectation) |"))
    random_share = float(exact_random.split("|")[2])
    header = next(line for line in lines if line.startswith("| picks |"))
    assert "year gap median" in header and "rating gap mean" in header
    assert any(line.startswith("| random, model pool |") for line in lines)
    last = json.loads(output.strip().splitlines()[-1])
    check_recommendation_scores(last)
    assert last["random"]["n"] == last["manhattan"]["n"]  # the same queries
    for distance in ("manhattan", "euclidean", "cosine"):
        assert last[distance]["genre_share"] > random_share + 0.1
    validation = run_script(
        "bench/recommend_quality.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(trained[1]), "--index", str(index_dir)),
        *("--held-out", "validation"),
    )
    validated = json.loads(validation.strip().splitlines()[-1])
    assert "held-out validation movies" in validation and validated["manhattan"]["n"] != last["manhattan"]["n"]
    # the nearest five alone (--shortlist 5) score what the served picks' "nearest five" rows say
    nearest = run_script(
        "bench/recommend_quality.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(trained[1]), "--index", str(index_dir)),
        *("--shortlist", "5"),
    )
    plain = json.loads(nearest.strip().splitlines()[-1])
    assert "nearest five |" not in nearest and plain["random"] == last["random"]  # seeded
    for distance in ("manhattan", "euclidean", "cosine"):
        (row,) = [line for line in lines if line.startswith(f"| {distance}, model, nearest five |")]
        assert float(row.split("|")[2]) == plain[distance]["genre_share"]
        assert float(row.split("|")[4]) == plain[distance]["same_decade"]


def test_recommendation_quality_takes_a_second_catalog_as_queries(demo_catalog_dir, trained, index_dir) -> None:
    output = run_script(
        "bench/recommend_quality.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(trained[1]), "--index", str(index_dir)),
        *("--queries", str(demo_catalog_dir), "--queries-index", str(index_dir)),
    )
    last = json.loads(output.strip().splitlines()[-1])
    check_recommendation_scores(last)
    assert all(scores["n"] == 120 for scores in last.values())  # every demo movie is a query


def quality_side(labels, years, ratings, probabilities=None):
    from bench.recommend_quality import Side

    labels = np.array(labels, dtype=np.int8)
    return Side(
        ids=[f"tt{row:07d}" for row in range(len(labels))],
        labels=labels,
        years=np.array([np.nan if year is None else year for year in years], dtype=np.float64),
        ratings=np.array([np.nan if rating is None else rating for rating in ratings], dtype=np.float64),
        features=np.zeros((len(labels), 2), np.float32),
        probabilities=np.array(labels if probabilities is None else probabilities, dtype=np.float32),
    )


def test_recommendation_quality_scores_hand_made_picks() -> None:
    from bench.recommend_quality import pick_scores, summary

    # query 0: a 1995 comedy rated 7.0; query 1: a drama without year, rated 6.0
    query = quality_side([[0, 1, 0], [0, 0, 1]], [1995, None], [7.0, 6.0])
    catalog = quality_side(
        [[0, 1, 0], [1, 1, 0], [1, 0, 0], [0, 1, 1], [0, 0, 1], [1, 0, 0]],
        [1990, 1991, 1999, 1993, None, 2010],
        [6.0, 8.5, None, 7.0, 5.0, 9.0],
    )
    first = pick_scores(query, 0, catalog, [0, 1, 2, 3, 4])
    assert first.genre_share == pytest.approx(3 / 5)
    assert first.genre_jaccard == pytest.approx((1 + 1 / 2 + 0 + 1 / 2 + 0) / 5)
    assert first.same_decade == 1.0  # every dated pick is from the 1990s; the undated one is left out
    assert sorted(first.year_gaps) == [2, 4, 4, 5]
    assert sorted(first.rating_gaps) == [0.0, 1.0, 1.5, 2.0]  # the unrated pick is left out
    second = pick_scores(query, 1, catalog, [1, 2, 3, 4, 5])
    assert second.same_decade is None and len(second.year_gaps) == 0  # the query has no year
    assert sorted(second.rating_gaps) == [1.0, 1.0, 2.5, 3.0]
    scores = summary([first, second])
    assert scores == {
        "genre_share": pytest.approx((3 / 5 + 2 / 5) / 2, abs=1e-4),
        "genre_jaccard": pytest.approx((2 / 5 + (1 / 2 + 1) / 5) / 2, abs=1e-4),
        "same_decade": 1.0,
        "year_gap_median": 4.0,  # over every dated pair: 2, 4, 4, 5
        "rating_gap_mean": pytest.approx((1 + 1.5 + 0 + 2 + 1 + 1 + 2.5 + 3) / 8, abs=1e-4),
        "n": 2,
    }
    elsewhere = pick_scores(query, 0, catalog, [5])
    assert elsewhere.same_decade == 0.0 and list(elsewhere.year_gaps) == [15]


def test_recommendation_quality_random_picks_come_from_the_search_pool() -> None:
    from bench.recommend_quality import RandomPicks, evaluate_distance, histogram_median, random_baseline
    from recommend import candidate_mask

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=(60, 3))
    catalog = quality_side(labels, rng.integers(1950, 2020, 60), rng.uniform(1, 10, 60).round(1))
    query = quality_side(labels[:8], catalog.years[:8], catalog.ratings[:8], rng.uniform(0, 1, (8, 3)))
    picked: list[list[int]] = []

    class Recording(RandomPicks):
        def nearest(self, query_features, distance, k=5, allowed=None):
            rows = super().nearest(query_features, distance, k, allowed)
            picked.append(rows.tolist())
            return rows

    scores = evaluate_distance(query, catalog, Recording(len(catalog.ids), seed=0), "manhattan")
    assert scores["n"] == int(query.labels.any(axis=1).sum()) == len(picked)
    scored = [row for row in range(8) if query.labels[row].any()]
    for rows, row in zip(picked, scored, strict=True):
        pool = candidate_mask(query.probabilities[row], catalog.labels)
        pool[row] = False  # the query is catalog movie `row`: never its own pick
        assert len(rows) == 5 == len(set(rows)) and pool[rows].all()
    assert scores == evaluate_distance(query, catalog, RandomPicks(len(catalog.ids), seed=0), "manhattan")
    exact = random_baseline(query, catalog)
    assert set(exact) == RECOMMEND_KEYS and 0 <= exact["same_decade"] <= 1
    year_gaps = np.abs(query.years[:, None] - catalog.years[None, :]).ravel()
    assert exact["year_gap_median"] == np.median(year_gaps)
    rating_gaps = np.abs(query.ratings[:, None] - catalog.ratings[None, :])
    assert exact["rating_gap_mean"] == pytest.approx(rating_gaps.mean(), abs=1e-4)
    for sample in ([3], [1, 4], [0, 0, 2, 7], [5, 1, 1]):
        values = np.repeat(np.arange(len(sample)), sample)
        assert histogram_median(np.array(sample)) == np.median(values)


def test_bandit_simulation_prints_regret_and_plots(tmp_path) -> None:
    plot = tmp_path / "regret.png"
    output = run_script("bench/bandit_simulation.py", "--rounds", "300", "--seeds", "2", "--plot", str(plot))
    last = json.loads(output.strip().splitlines()[-1])
    assert "epsilon-greedy, decay 50 (paper)" in last and len(last) == 6
    assert all(regret >= 0 for regret in last.values())
    assert plot.stat().st_size > 0


def test_load_benchmark_serves_every_request(demo_catalog_dir, onnx_model_dir, index_dir) -> None:
    """PosterBench as the app serves it (the ONNX export), and the authors' design on the same Keras weights."""
    output = run_script(
        "bench/load.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(onnx_model_dir), "--index", str(index_dir)),
        *("--workers", "1", "--clients", "1,2", "--requests", "2", "--kinds", "upload,sample,feedback,bandit"),
        "--baseline",
    )
    last = json.loads(output.strip().splitlines()[-1])
    assert set(last) == {"upload", "sample", "feedback", "bandit", "authors_upload"}
    for cells in last.values():
        assert set(cells) == {"1", "2"}
        for figures in cells.values():
            assert figures["requests"] == 2 and figures["failed"] == 0
            assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"] and figures["rps"] > 0


@pytest.mark.skipif(not shutil.which("wrk") and not os.environ.get("CI"), reason="wrk is not installed")
def test_load_benchmark_under_wrk_over_postgres(demo_catalog_dir, onnx_model_dir, index_dir, postgres_url) -> None:
    """Each cell ends once wrk's threads have sent their share of the 4 requests (bench/load.py interrupts wrk's
    wait for the rest of its --duration), and at most after 2 s: a loaded machine may send fewer in that time. The
    model is the ONNX export (no TensorFlow to start)."""
    output = run_script(
        "bench/load.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(onnx_model_dir), "--index", str(index_dir)),
        *("--workers", "1", "--clients", "1,2", "--requests", "4", "--seconds", "2"),
        *("--kinds", "upload,sample,feedback,bandit", "--tool", "wrk", "--database-url", postgres_url),
    )
    assert "PostgreSQL, requests sent by wrk" in output
    last = json.loads(output.strip().splitlines()[-1])
    assert set(last) == {"upload", "sample", "feedback", "bandit"}
    for cells in last.values():
        assert set(cells) == {"1", "2"}
        for figures in cells.values():
            assert 1 <= figures["requests"] <= 4 and figures["failed"] == 0, figures
            assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"] and figures["rps"] > 0
    from app.db import open_database

    votes = sum(figures["requests"] for figures in last["feedback"].values())
    with open_database(postgres_url) as database:  # the votes went to PostgreSQL, plus a warm-up per client
        assert database.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == votes + (1 + 2)


def test_own_poster_counts_uploads_of_catalog_posters_recommended_their_own_movie(
    demo_catalog_dir, onnx_model_dir, index_dir
) -> None:
    output = run_script(
        *("bench/own_poster.py", "--catalog", str(demo_catalog_dir), "--model", str(onnx_model_dir)),
        *("--index", str(index_dir), "--posters", "6"),
    )
    assert json.loads(output.strip().splitlines()[-1]) == {"posters": 6, "own_first": 6, "own_shown": 6}
    assert "own movie first: 6; among the five: 6; not first: none" in output


def test_upload_profile_times_every_stage(demo_catalog_dir, onnx_model_dir, index_dir) -> None:
    output = run_script(
        "bench/upload_profile.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(onnx_model_dir), "--index", str(index_dir)),
        *("--uploads", "6"),
    )
    last = json.loads(output.strip().splitlines()[-1])
    assert last["unprofiled_ms"] > 0 and last["network"] > 0 and last["database write"] > 0
    assert last["upload (whole request)"] >= last["network"] + last["database write"]


def test_image_cost_measures_an_accepted_and_a_refused_image() -> None:
    output = run_script(
        "bench/image_cost.py", "--runs", "1", "--scale", "0.01", "--only", "PNG RGBA 8-bit", "PNG 1 x 39999999"
    )
    last = json.loads(output.strip().splitlines()[-1])
    assert set(last) == {"PNG RGBA 8-bit", "PNG 1 x 39999999"}
    assert last["PNG RGBA 8-bit"]["accepted"] and not last["PNG 1 x 39999999"]["accepted"]
    assert all(case["seconds"] > 0 and case["peak_mb"] >= 0 for case in last.values())
    assert "39,999,999 times as tall as it is wide" in output and "(UNEXPECTED)" not in output


def test_image_cost_checks_every_poster_of_a_catalog(demo_catalog_dir, tmp_path) -> None:
    output = run_script("bench/image_cost.py", "--catalog", str(demo_catalog_dir))
    last = json.loads(output.strip().splitlines()[-1])
    assert last["posters"] == last["passed"] > 0 and last["refused"] == {}
    catalog = shutil.copytree(demo_catalog_dir, tmp_path / "catalog")
    first = sorted((catalog / "posters").iterdir())[0]
    Image.new("RGB", (10, 200)).save(first, "JPEG")  # 1:20, beyond any poster's shape
    last = json.loads(run_script("bench/image_cost.py", "--catalog", str(catalog)).strip().splitlines()[-1])
    [message] = last["refused"].values()
    assert last["passed"] == last["posters"] - 1 and "times as tall as it is wide" in message


def test_serving_memory_reads_every_worker(demo_catalog_dir, onnx_model_dir, index_dir) -> None:
    output = run_script(
        "bench/serving_memory.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(onnx_model_dir), "--index", str(index_dir)),
        *("--workers", "2"),
    )
    last = json.loads(output.strip().splitlines()[-1])
    figures = last["2"]
    assert figures["workers"] == 2 and len(figures["rss_mib_each"]) == 2
    assert figures["runtime"] == "onnx"  # served as make serve serves it (tests/test_onnx_serving.py compares Keras)
    assert abs(figures["rss_mib"] - sum(figures["rss_mib_each"])) <= 2  # each rounded on its own
    assert 100 < figures["pss_mib"] <= figures["rss_mib"] + 1  # shared pages count once in PSS


def test_scrape_replica_reproduces_a_small_replica() -> None:
    """`make scrape-replica` on a small replica (needs Debian's chromium and chromedriver, as CI has)."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")) and not os.environ.get("CI"):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    output = run_script("bench/scrape_replica.py", "--movies", "8", "--result-cap", "10", "--genres", "Drama,Comedy")
    last = json.loads(output.strip().splitlines()[-1])
    assert last["differences"] == 0 and "2 genres searched" in output  # 9 year ranges each: 18 pages, not 162
    assert last["movies"] == last["posters"] > 0 and last["pages_per_second"] > 0
    assert "catalog valid" in output


def test_non_posters_are_flagged_and_demo_posters_are_not(demo_catalog_dir, trained, onnx_model_dir) -> None:
    """bench/non_posters.py on the demo model as the app serves it (its ONNX export): photos, noise, blanks, shapes,
    screenshots and charts are flagged as not posters, the demo catalog's held-out posters are not."""
    output = run_script("bench/non_posters.py", "--catalog", str(demo_catalog_dir), "--model", str(onnx_model_dir))
    last = json.loads(output.strip().splitlines()[-1])
    assert last["n_non_posters"] >= 200 and last["n_posters"] == len(trained[0].split.test)
    assert {"photo", "noise", "blank or gradient", "text screenshot", "chart"} <= set(last["per_kind"])
    assert last["detection"] >= 0.9, last
    assert last["false_alarms"] <= 0.2, last  # a dozen held-out posters: one false alarm is 8 %
    assert "(detection)" in output and "(false alarms)" in output


def test_genre_noise_measures_how_far_the_served_figures_move_by_chance(demo_catalog_dir, trained, index_dir) -> None:
    output = run_script(
        "bench/genre_noise.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(trained[1]), "--index", str(index_dir)),
        *("--draws", "200", "--tunings", "5", "--micro-f1-target", "0.99"),
    )
    last = json.loads(output.strip().splitlines()[-1])
    evaluated = json.loads((trained[1] / "report.json").read_text())["test"]
    assert last["n_test"] == len(trained[0].split.test) and last["n_validation"] == len(trained[0].split.validation)
    assert last["served"]["macro_auc"] == pytest.approx(evaluated["macro_roc_auc"], abs=0.02)
    for name, figures in last["test_posters_drawn_again"].items():
        assert figures["sd"] > 0 and figures["p5"] <= last["served"][name] <= figures["p95"], (name, figures)
    gap = last["micro_f1_gap"]
    assert gap["gap"] == pytest.approx(0.99 - last["served"]["micro_f1"], abs=1e-4) and gap["in_sds"] > 0
    assert "micro-F1 target 0.99: short by" in output


def test_genre_noise_counts_f1_as_scikit_learn_does() -> None:
    from sklearn.metrics import f1_score

    from bench.genre_noise import f1_scores

    rng = np.random.default_rng(3)
    truth, decisions = rng.random((300, 6)) < 0.3, rng.random((300, 6)) < 0.4
    truth[:, 5] = decisions[:, 5] = False  # a genre nobody has and nobody is given: F1 0, as zero_division=0 says
    micro, macro = f1_scores(truth, decisions)
    assert micro == pytest.approx(f1_score(truth, decisions, average="micro", zero_division=0))
    assert macro == pytest.approx(f1_score(truth, decisions, average="macro", zero_division=0))


def test_genre_ablation_scores_every_way_with_validation_tuned_thresholds(demo_catalog_dir, trained, index_dir) -> None:
    output = run_script(
        "bench/genre_ablation.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(trained[1]), "--index", str(index_dir)),
    )
    last = json.loads(output.strip().splitlines()[-1])
    names = list(last)
    assert names[0] == "model (stacked and calibrated, served)" and "model, poster and its mirror image" in names
    assert "fine-tuned head alone (feature vector)" in names and "probe alone (frozen pool)" in names
    assert any(name.startswith("genres of the") for name in names)
    assert any(name.startswith("model and") for name in names)
    for scores in last.values():
        assert set(scores) == {"micro_f1", "macro_f1", "macro_auc", "map", "ece_max"}
        assert all(0 <= value <= 1 for value in scores.values())
    assert last["model (stacked and calibrated, served)"]["macro_auc"] > 0.6  # the demo model ranks genres


def test_frozen_pool_probes_score_every_pooling_and_penalty_from_a_kept_cache(
    demo_catalog, trained, tmp_path: Path
) -> None:
    """On a copy of the demo model and the frozen outputs its training kept (tests/conftest.py `trained`)."""
    model_dir = shutil.copytree(trained[1], tmp_path / "model")
    work = f".{model_dir.name}.work"
    shutil.copytree(trained[1].parent / work, tmp_path / work)
    output = run_script(
        "bench/frozen_pool_probes.py",
        *("--model", str(model_dir), "--catalog", str(demo_catalog.directory)),
        *("--genre-c", "1.0", "--decade-c", "1.0", "0.1", "--alpha", "10"),
    )
    last = json.loads(output.strip().splitlines()[-1])
    assert set(last["genres"]) == {
        "average and maximum (kept)",
        "the same, square root",
        "the same, log1p",
        "with the 2 x 2 grid and the halves' maxima",
    }
    assert all(0 <= auc <= 1 for by_c in last["genres"].values() for auc in by_c.values())
    assert set(last["decade"]) == {"1.0", "0.1"} and all(0 <= value <= 1 for value in last["decade"].values())
    assert last["year"]["10.0"] >= 0 and -1 <= last["rating"]["10.0"] <= 1

    shutil.rmtree(model_dir.parent / f".{model_dir.name}.work")
    refused = subprocess.run(
        [sys.executable, "-m", "bench.frozen_pool_probes", "--model", str(model_dir), "--catalog", str(tmp_path)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "--keep-cache" in refused.stderr


def test_input_shape_probes_score_each_shape_alone_and_stacked(
    demo_catalog_dir, onnx_model_dir, training_weights
) -> None:
    output = run_script(
        "bench/input_shape_probes.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(onnx_model_dir), "--weights", str(training_weights)),
        *("--shapes", "64x96", "--blocks", "block4", "block5"),
    )
    last = json.loads(output.strip().splitlines()[-1])
    assert set(last) == {"fine-tuned head alone", "64x96 probe", "64x96 probe, stacked"}
    for row in last.values():
        assert set(row) == {"validation_auc", "auc", "micro_f1", "macro_f1"}
        assert all(0 <= value <= 1 for value in row.values())
    assert "| 64x96 probe, stacked |" in output


def test_serving_threads_compares_limited_and_unlimited_workers(demo_catalog_dir, onnx_model_dir, index_dir) -> None:
    output = run_script(
        "bench/serving_threads.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(onnx_model_dir), "--index", str(index_dir)),
        *("--rows", "300", "--workers", "1", "--clients", "1,2", "--requests", "2", "--search-queries", "3"),
    )
    last = json.loads(output.strip().splitlines()[-1])
    assert last["movies"] == 300 and last["blas_threads"]["unlimited"] == last["cores"]
    for mode in ("limited", "unlimited"):
        [line] = last["workers"][mode]  # one worker, which reported its threads
        assert f"openblas={last['blas_threads'][mode]}," in line, line
        assert re.search(r"onnxruntime=[1-9]\d*$", line), line  # the ONNX export: no TensorFlow to start
    assert set(last["search"]) == {"1", "2"} and set(last["requests"]) == {"1", "2"}
    for part in ("search", "requests"):
        for cells in last[part].values():
            for mode in ("limited", "unlimited"):
                assert 0 < cells[mode]["p50_ms"] <= cells[mode]["p95_ms"]
            assert cells["ratio"]["p50"] == round(cells["unlimited"]["p50_ms"] / cells["limited"]["p50_ms"], 2)
    for cells in last["requests"].values():  # two rounds of 2 sample clicks each
        assert all(cells[mode]["requests"] == 4 and cells[mode]["failed"] == 0 for mode in ("limited", "unlimited"))
    assert "| clients | limited p50 / p95 ms |" in output


def test_explain_speed_times_a_heatmap_and_compares_the_fills(demo_catalog_dir, onnx_model_dir) -> None:
    output = run_script(
        "bench/explain_speed.py",
        *("--model", str(onnx_model_dir), "--catalog", str(demo_catalog_dir), "--quick", "--compare"),
    )
    last = json.loads(output.strip().splitlines()[-1])
    [row] = last["speed"].values()
    assert set(last["speed"]) == {"threads=1 grid=4"} and row["passes"] == 17
    assert 0 < row["map_ms"] < row["total_ms"] and row["overlay_ms"] > 0 and last["yardstick_ms"] > 0
    assert set(last["compare"]["fills"]) == {"blur", "mean"} and set(last["compare"]["grids"]) == {"3"}
    assert -1 <= last["compare"]["grids"]["3"] <= 1
    assert "one poster on one thread" in output and "fill blur: mean of the map" in output


def test_jobs_benchmark_times_both_jobs_and_the_uploads_beside_them(
    demo_catalog_dir, onnx_model_dir, index_dir
) -> None:
    output = run_script(
        "bench/jobs.py",
        *("--catalog", str(demo_catalog_dir), "--model", str(onnx_model_dir), "--index", str(index_dir)),
        *("--workers", "1", "--rounds", "1", "--clients", "2", "--requests", "2", "--seconds", "10", "--posters", "6"),
    )
    last = json.loads(output.strip().splitlines()[-1])
    for job in ("heatmap", "comparison_4"):
        assert last[job]["runs"] == 1 and 0 < last[job]["running_median_s"] < last[job]["median_s"]
    load = last["upload_load"]
    assert load["without jobs"]["failed"] == load["with jobs"]["failed"] == 0 and load["p95_ratio"] > 0
    assert load["jobs_during_load"] >= 1 and last["yardstick_ms"]["before"] > 0
    assert "p95 with jobs / without" in output


def test_kept_images_compares_each_kept_image_with_the_upload(demo_catalog_dir, onnx_model_dir) -> None:
    output = run_script(
        "bench/kept_images.py", "--model", str(onnx_model_dir), "--catalog", str(demo_catalog_dir), "--posters", "4"
    )
    last = json.loads(output.strip().splitlines()[-1])
    assert len(last) == 3 and last["job poster (PNG)"]["max_points"] == 0  # the very pixels the network read
    for figures in last.values():
        assert 0 <= figures["median_points"] <= figures["max_points"] and figures["mean_kb"] > 0
    assert "4 posters of" in output and "genres within" in output

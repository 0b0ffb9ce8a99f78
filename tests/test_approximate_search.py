"""The approximate search of large catalogs (recommend/approximate.py), forced onto a small catalog where it must agree
with the exact search: the same five rows for every distance, only rows the genre and decade masks allow, the same
answers once saved and loaded in a fresh process, and chosen by catalog size when the index is built and served."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recommend import DISTANCES, NeighbourSearch, candidate_mask, decade_mask, recommend
from recommend.approximate import (
    DESCRIPTION_FILE,
    GRAPH_FILES,
    ApproximateSearch,
    ApproximateSearchError,
    load_search,
    save_search,
)

ROOT = Path(__file__).resolve().parents[1]
ROWS = 3000


def clustered(rows: int, seed: int) -> np.ndarray:
    """Rectified vectors in tight clusters around 60 centres (100 dimensions), far apart as the model's feature vectors
    of unlike posters are: each distance's five nearest are in the query's cluster, which the graph's shortlist (50
    rows by the Euclidean distance, for the Manhattan distance too) holds whole."""
    centres = np.maximum(np.random.default_rng(0).normal(0, 1, (60, 100)), 0)  # the same for catalog and queries
    rng = np.random.default_rng(seed)
    vectors = centres[rng.integers(0, 60, rows)] + rng.normal(0, 0.05, (rows, 100))
    return np.maximum(vectors, 0).astype(np.float32)


@pytest.fixture(scope="module")
def features() -> np.ndarray:
    return clustered(ROWS, 0)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return clustered(12, 1)


@pytest.fixture(scope="module")
def approximate(features) -> ApproximateSearch:
    # exact_rows=0: every mask goes through the graph search, however few rows it allows
    return ApproximateSearch(exact_rows=0, threads=1).fit(features)


@pytest.mark.parametrize("distance", DISTANCES)
def test_approximate_search_finds_the_exact_five(features, queries, approximate, distance: str) -> None:
    exact = NeighbourSearch(features)
    for query in queries:
        assert approximate.nearest(query, distance).tolist() == exact.nearest(query, distance).tolist()
    assert approximate.nearest(features[7], distance, k=1).tolist() == [7]


@pytest.mark.parametrize("distance", DISTANCES)
def test_approximate_search_keeps_to_the_allowed_rows(features, queries, approximate, distance: str) -> None:
    exact = NeighbourSearch(features)
    rng = np.random.default_rng(4)
    for share in (0.5, 0.1, 0.02):
        for query in queries[:6]:
            allowed = rng.random(ROWS) < share
            found = approximate.nearest(query, distance, 5, allowed)
            assert len(found) == 5 and allowed[found].all()
            if share >= 0.1:  # a few allowed rows in the query's cluster; at 2 %, the five may lie in five clusters
                assert found.tolist() == exact.nearest(query, distance, 5, allowed).tolist()
    few = np.zeros(ROWS, bool)
    few[[5, 900, 2999]] = True
    assert sorted(approximate.nearest(queries[0], distance, 5, few).tolist()) == [5, 900, 2999]
    assert approximate.nearest(queries[0], distance, 5, np.zeros(ROWS, bool)).tolist() == []


def test_recommendations_keep_to_the_genres_and_decades(features, queries, approximate) -> None:
    rng = np.random.default_rng(5)
    labels = rng.random((ROWS, 6)) < 0.2
    catalog_decades = rng.choice(np.array([1960, 1970, 1980, 1990, 2000, 2010, -1]), ROWS)
    decades = np.array([1960, 1970, 1980, 1990, 2000, 2010])
    exact = NeighbourSearch(features)
    for row, query in enumerate(queries):
        probabilities = rng.random(6)
        era = decade_mask(rng.dirichlet(np.ones(6)), decades, catalog_decades)
        pool = candidate_mask(probabilities, labels) & era
        pool[row] = False
        picked = recommend(approximate, labels, query, probabilities, "cosine", exclude_rows=[row], era=era)
        assert len(picked) == 5 and pool[picked].all() and row not in picked
        assert picked == recommend(exact, labels, query, probabilities, "cosine", exclude_rows=[row], era=era)


def test_few_allowed_rows_are_searched_exactly(features, queries) -> None:
    search = ApproximateSearch(exact_rows=100, threads=1).fit(features[:500])
    allowed = np.zeros(500, bool)
    allowed[::7] = True  # 72 rows, under exact_rows
    exact = NeighbourSearch(features[:500])
    for distance in DISTANCES:
        assert (
            search.nearest(queries[0], distance, 5, allowed).tolist()
            == exact.nearest(queries[0], distance, 5, allowed).tolist()
        )


def test_saved_search_gives_the_same_answers_in_a_fresh_process(tmp_path, features, queries, approximate) -> None:
    approximate.save(tmp_path)
    assert {path.name for path in tmp_path.iterdir()} == {DESCRIPTION_FILE, *GRAPH_FILES.values()}
    np.save(tmp_path / "features.npy", features)
    np.save(tmp_path / "queries.npy", queries)
    allowed = np.random.default_rng(6).random(ROWS) < 0.3
    np.save(tmp_path / "allowed.npy", allowed)
    script = (
        "import json, sys, numpy as np\n"
        "from recommend import DISTANCES\n"
        "from recommend.approximate import ApproximateSearch, load_search\n"
        "d = sys.argv[1]\n"
        "search = load_search(d, np.load(d + '/features.npy'))\n"
        "assert isinstance(search, ApproximateSearch)\n"
        "queries, allowed = np.load(d + '/queries.npy'), np.load(d + '/allowed.npy')\n"
        "print(json.dumps({m: [search.nearest(q, m).tolist() + search.nearest(q, m, 5, allowed).tolist()"
        " for q in queries] for m in DISTANCES}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expected = {
        distance: [
            approximate.nearest(query, distance).tolist() + approximate.nearest(query, distance, 5, allowed).tolist()
            for query in queries
        ]
        for distance in DISTANCES
    }
    assert json.loads(done.stdout) == expected


def test_saved_search_refuses_other_features(tmp_path, features, approximate) -> None:
    approximate.save(tmp_path)
    with pytest.raises(ApproximateSearchError, match="other feature vectors"):
        ApproximateSearch.load(tmp_path, features[::-1])
    (tmp_path / GRAPH_FILES["cosine"]).write_bytes(b"not a faiss index")
    with pytest.raises(ApproximateSearchError, match="damaged"):
        ApproximateSearch.load(tmp_path, features)


def test_catalog_size_chooses_the_search(tmp_path, features) -> None:
    small, large = tmp_path / "small", tmp_path / "large"
    small.mkdir()
    large.mkdir()
    assert not save_search(features[:400], small, above=400)
    assert list(small.iterdir()) == [] and isinstance(load_search(small, features[:400]), NeighbourSearch)
    assert save_search(features[:400], large, above=399)
    search = load_search(large, features[:400])
    assert isinstance(search, ApproximateSearch) and len(search) == 400


def test_the_app_serves_the_search_its_index_holds(tmp_path, features) -> None:
    from app.resources import load_approximate_or_exact

    assert isinstance(load_approximate_or_exact(str(tmp_path), features[:400]), NeighbourSearch)
    assert save_search(features[:400], tmp_path, above=100)
    assert isinstance(load_approximate_or_exact(str(tmp_path), features[:400]), ApproximateSearch)
    with pytest.raises(RuntimeError, match="built for other feature vectors; rebuild the index"):
        load_approximate_or_exact(str(tmp_path), features[400:800])


@pytest.mark.parametrize("distance", DISTANCES)
def test_ties_go_to_the_lower_rows_exactly_and_in_a_small_mask(distance: str) -> None:
    """Duplicate posters give tied vectors: a selection of k + 16 chose among the tied rows at random."""
    rng = np.random.default_rng(3)
    features = np.ones((1000, 8), np.float32)
    other = rng.random(1000) < 0.3
    features[other] = rng.random((int(other.sum()), 8)).astype(np.float32) * 5
    expected = np.flatnonzero(~other)[:5].tolist()
    assert NeighbourSearch(features).nearest(np.ones(8), distance, 5).tolist() == expected
    allowed = np.ones(1000, bool)  # all 1,000 rows, under exact_rows: the approximate search's exact pass
    search = ApproximateSearch(exact_rows=2000, threads=1).fit(features)
    assert search.nearest(np.ones(8, np.float32), distance, 5, allowed).tolist() == expected


def test_rows_whose_distance_is_not_a_number_never_crowd_out_the_others() -> None:
    """NaN sorts last: when the shortlist's last place held one, no row was at or below it and nothing came back."""
    features = np.vstack([np.full((30, 4), np.nan, np.float32), np.arange(12, dtype=np.float32).reshape(3, 4)])
    assert NeighbourSearch(features).nearest(np.zeros(4), "manhattan", 3).tolist() == [30, 31, 32]

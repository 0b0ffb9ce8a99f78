"""The demo catalog: deterministic metadata and posters, a readable catalog, and genre cues a model can learn."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from catalog import GENRES, read_catalog
from catalog.demo import POSTER_SIZE, demo_movies, generate_demo_catalog, render_poster


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.uint8)


def test_metadata_is_deterministic_and_depends_on_the_seed():
    assert demo_movies(50, seed=3) == demo_movies(50, seed=3)
    assert demo_movies(50, seed=3) != demo_movies(50, seed=4)
    assert demo_movies(10, seed=3) == demo_movies(50, seed=3)[:10]


def test_metadata_looks_like_imdb():
    movies = demo_movies(600)
    assert [movie.imdb_id for movie in movies[:3]] == ["tt99000001", "tt99000002", "tt99000003"]
    assert movies[-1].imdb_id == "tt99000600"
    for movie in movies:
        assert re.fullmatch(r"tt99\d{6}", movie.imdb_id)
        assert movie.poster == f"posters/{movie.imdb_id}.jpg"
        assert movie.title and movie.title == movie.title.strip()
        assert 1950 <= movie.year <= 2024
        assert 1.0 <= movie.rating <= 10.0 and round(movie.rating, 1) == movie.rating
        assert isinstance(movie.votes, int) and movie.votes > 0
    assert 5.9 <= statistics.mean(movie.rating for movie in movies) <= 6.5
    assert 0.7 <= statistics.stdev(movie.rating for movie in movies) <= 1.3
    assert statistics.median(movie.year for movie in movies) >= 1990
    assert len({movie.title for movie in movies}) >= 0.9 * len(movies)


def test_each_movie_has_one_to_three_known_genres_and_every_genre_is_common():
    movies = demo_movies(600)
    genre_counts = Counter(len(movie.genres) for movie in movies)
    assert set(genre_counts) == {1, 2, 3}
    assert 0.35 <= genre_counts[1] / len(movies) <= 0.55
    assert 0.08 <= genre_counts[3] / len(movies) <= 0.22
    for movie in movies:
        assert set(movie.genres) <= set(GENRES)
        assert len(set(movie.genres)) == len(movie.genres)
    for genre in GENRES:
        assert sum(genre in movie.genres for movie in movies) >= 0.15 * len(movies), genre


def test_posters_are_rgb_at_poster_size_and_deterministic():
    movies = demo_movies(4, seed=5)
    for index, movie in enumerate(movies):
        poster = render_poster(movie, np.random.default_rng([5, index]))
        assert poster.mode == "RGB"
        assert poster.size == POSTER_SIZE == (182, 268)
        again = render_poster(movie, np.random.default_rng([5, index]))
        assert np.array_equal(pixels(poster), pixels(again))
        other = render_poster(movie, np.random.default_rng([6, index]))
        assert not np.array_equal(pixels(poster), pixels(other))


@pytest.mark.parametrize(("n_movies", "seed"), [(0, 0), (1_000_000, 0), (10, -1)])
def test_rejects_bad_arguments(n_movies, seed):
    with pytest.raises(ValueError):
        demo_movies(n_movies, seed)


def test_generated_catalog_reads_back(tmp_path: Path):
    directory = generate_demo_catalog(tmp_path / "demo", n_movies=40, seed=1, progress=False)
    assert directory == tmp_path / "demo"
    catalog = read_catalog(directory)
    assert catalog.movies == demo_movies(40, seed=1)
    for movie in catalog.movies[:5]:
        with Image.open(catalog.poster_path(movie)) as poster:
            assert poster.format == "JPEG"
            assert poster.mode == "RGB"
            assert poster.size == POSTER_SIZE


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path: Path):
    first = generate_demo_catalog(tmp_path / "first", n_movies=12, seed=2, progress=False)
    second = generate_demo_catalog(tmp_path / "second", n_movies=12, seed=2, progress=False)
    other = generate_demo_catalog(tmp_path / "other", n_movies=12, seed=3, progress=False)
    assert (first / "movies.csv").read_bytes() == (second / "movies.csv").read_bytes()
    assert (first / "movies.csv").read_bytes() != (other / "movies.csv").read_bytes()
    for movie in demo_movies(12, seed=2)[:4]:
        with Image.open(first / movie.poster) as one, Image.open(second / movie.poster) as two:
            assert np.array_equal(pixels(one), pixels(two))
        with Image.open(first / movie.poster) as one, Image.open(other / movie.poster) as three:
            assert not np.array_equal(pixels(one), pixels(three))


def test_refuses_to_replace_an_existing_directory(tmp_path: Path):
    (tmp_path / "demo").mkdir()
    with pytest.raises(FileExistsError):
        generate_demo_catalog(tmp_path / "demo", n_movies=2, progress=False)


def test_progress_bar_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    generate_demo_catalog(tmp_path / "demo", n_movies=3, progress=True)
    assert "rendering posters" in capsys.readouterr().err
    generate_demo_catalog(tmp_path / "quiet", n_movies=3, progress=False)
    assert capsys.readouterr().err == ""


def poster_features(poster: Image.Image) -> np.ndarray:
    """A 12 x 18 thumbnail's pixels and a 4 x 4 x 4 joint RGB histogram."""
    thumbnail = pixels(poster.resize((12, 18), Image.Resampling.BILINEAR)).ravel() / 255
    levels = pixels(poster).astype(np.int64) // 64
    bins = (levels[..., 0] * 16 + levels[..., 1] * 4 + levels[..., 2]).ravel()
    histogram = np.bincount(bins, minlength=64) / bins.size
    return np.concatenate([thumbnail, histogram])


def test_genres_are_learnable_from_simple_poster_features():
    movies = demo_movies(300, seed=0)
    features = np.array(
        [poster_features(render_poster(movie, np.random.default_rng([0, i]))) for i, movie in enumerate(movies)]
    )
    labels = np.array([movie.label_vector() for movie in movies])
    train, test = slice(0, 200), slice(200, 300)
    model = make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(C=0.05, max_iter=2000)))
    model.fit(features[train], labels[train])
    predicted = model.predict(features[test])

    micro_f1 = f1_score(labels[test], predicted, average="micro")
    every_genre_f1 = f1_score(labels[test], np.ones_like(labels[test]), average="micro")
    per_genre_f1 = f1_score(labels[test], predicted, average=None)
    # Measured when written: micro-F1 0.77 here (0.77-0.79 for seeds 1-2, 0.84 on 600 posters) against 0.41 for
    # always predicting every genre, at least 0.69 for each genre, and 0.14 with shuffled labels; the
    # thresholds leave a margin below that.
    assert micro_f1 >= 0.62
    assert micro_f1 >= every_genre_f1 + 0.2
    assert min(per_genre_f1) >= 0.5, dict(zip(GENRES, per_genre_f1.round(2), strict=True))

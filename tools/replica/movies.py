"""The replica's synthetic movie set: demo posters under IMDb-like ids, genres skewed as IMDb's are, and titles
hard to parse."""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np

from catalog import Catalog, Movie, read_catalog, staged_directory, write_movies_csv
from catalog.demo import demo_movies, generate_demo_catalog
from scraper.search import PAPER_GENRES

_GENRE_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "Drama": 30,
        "Comedy": 16,
        "Action": 9,
        "Thriller": 8,
        "Romance": 6,
        "Crime": 6,
        "Horror": 5,
        "Adventure": 5,
        "Mystery": 3,
        "Sci-Fi": 3,
        "Fantasy": 3,
        "Family": 2.5,
        "Animation": 2,
        "Biography": 2,
        "History": 1.5,
        "War": 1.5,
        "Musical": 1,
        "Western": 1,
    }
)
"""Skewed like IMDb's features: Drama and Comedy outnumber the rest, so they exceed a small result cap first."""
_REPLICA_FIRST_YEAR, _REPLICA_LAST_YEAR = 1950, 2020
_UNRATED_SHARE = 0.03


def replica_movies(n_movies: int = 300, seed: int = 0) -> list[Movie]:
    """The replica's movies: the demo catalog's ids, titles and poster files (`demo_movies(n_movies, seed)`) with
    IMDb-like metadata: 1-3 of the paper's 18 genres, years 1950-2020, ratings, log-normal and distinct vote counts
    (a few unrated titles with 0 votes), and a few titles that are hard to parse (a leading "9. ", quotes, markup,
    non-ASCII). Deterministic given (n_movies, seed)."""
    movies: list[Movie] = []
    votes_taken: set[int] = set()
    for index, demo in enumerate(demo_movies(n_movies, seed)):
        rng = np.random.default_rng([seed, 7, index])
        rating: float | None = round(float(np.clip(rng.normal(6.3, 1.1), 1.0, 10.0)), 1)
        votes = max(5, round(math.exp(math.log(5_000) + 0.6 * (rating - 6.3) + rng.normal(0.0, 1.8))))
        while votes in votes_taken:
            votes += 1
        if rng.random() < _UNRATED_SHARE:
            rating, votes = None, 0
        else:
            votes_taken.add(votes)
        year = _REPLICA_FIRST_YEAR + round((_REPLICA_LAST_YEAR - _REPLICA_FIRST_YEAR) * rng.beta(2.0, 1.3))
        title = _hard_title(index, demo.title)
        movies.append(Movie(demo.imdb_id, title, year, _replica_genres(rng), rating, votes, demo.poster))
    return movies


def _replica_genres(rng: np.random.Generator) -> tuple[str, ...]:
    names = list(_GENRE_WEIGHTS)
    weights = np.array([_GENRE_WEIGHTS[name] for name in names])
    count = int(rng.choice((1, 2, 3), p=(0.45, 0.4, 0.15)))
    chosen = {names[i] for i in rng.choice(len(names), size=count, replace=False, p=weights / weights.sum())}
    return tuple(genre for genre in PAPER_GENRES if genre in chosen)


def _hard_title(index: int, title: str) -> str:
    variant = index % 29
    if variant == 3:
        return f"{index % 9 + 1}. {title}"
    if variant == 11:
        return f'{title}: Jane\'s "Case" & <Co>'
    if variant == 17:
        return f"Ünïcödé 東京 {title}"
    if variant == 23:
        return str(1900 + index % 100)
    return title


def write_replica_catalog(
    directory: str | Path, n_movies: int = 300, seed: int = 0, *, overwrite: bool = False
) -> Catalog:
    """Write the replica's movie set as a catalog (demo posters, `replica_movies` metadata) and return it read back.

    The directory appears whole or not at all; an existing one is replaced only with `overwrite=True`."""
    directory = Path(directory)
    if directory.exists() and not overwrite:
        raise FileExistsError(f"{directory} already exists; pass overwrite=True to replace it")
    with staged_directory(directory, "movies.csv") as staging:
        demo = generate_demo_catalog(staging / "demo", n_movies=n_movies, seed=seed, progress=False)
        (demo / "posters").rename(staging / "posters")
        shutil.rmtree(demo)
        write_movies_csv(staging, replica_movies(n_movies, seed))
    return read_catalog(directory)

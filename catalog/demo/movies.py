"""The demo catalog's metadata: ids, invented titles, years skewed to recent ones as IMDb's are, genres, ratings
and votes, each movie from its own random stream so that movie i does not depend on the catalog's size."""

from __future__ import annotations

import math

import numpy as np

from catalog import GENRES, Movie
from catalog.demo.styles import _PLACES, _SEQUELS, _STYLES, _TITLE_TEMPLATE_SHARES, _TITLE_TEMPLATES

JPEG_QUALITY = 90
MAX_DEMO_MOVIES = 999_999
"""Ids are "tt99" plus six digits, numbered from tt99000001."""

_METADATA_STREAM = 0
_POSTER_STREAM = 1

_GENRES_PER_MOVIE = (1, 2, 3)
_GENRES_PER_MOVIE_SHARES = (0.45, 0.40, 0.15)
_FIRST_YEAR, _LAST_YEAR = 1950, 2024
_YEARS_UNIFORM_SHARE = 0.45
"""Years: this share uniform over the whole span, the rest skewed to recent years like IMDb's, so that every decade
holds at least about 6% of the movies (the 1950s) and the median year is in the late 1990s."""
_RECENT_YEARS_BETA = (2.6, 1.2)
_MEAN_RATING, _RATING_SD = 6.2, 1.0
_MEDIAN_VOTES, _VOTES_LOG_SD = 4_000, 1.4


def demo_movies(n_movies: int = 600, seed: int = 0) -> list[Movie]:
    """The demo catalog's metadata alone: the same (n_movies, seed) always gives the same movies,
    and movie i does not depend on n_movies."""
    _check_arguments(n_movies, seed)
    return [_demo_movie(index, _rng(seed, _METADATA_STREAM, index)) for index in range(n_movies)]


def _check_arguments(n_movies: int, seed: int) -> None:
    if not 1 <= n_movies <= MAX_DEMO_MOVIES:
        raise ValueError(f"n_movies must be between 1 and {MAX_DEMO_MOVIES:,}, not {n_movies}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed}")


def _rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, index])


def _demo_movie(index: int, rng: np.random.Generator) -> Movie:
    genres = _draw_genres(rng)
    imdb_id = f"tt99{index + 1:06d}"
    rating_shift = float(np.mean([_STYLES[genre].rating_shift for genre in genres]))
    rating = round(float(np.clip(rng.normal(_MEAN_RATING + rating_shift, _RATING_SD), 1.0, 10.0)), 1)
    log_votes = math.log(_MEDIAN_VOTES) + 0.5 * (rating - _MEAN_RATING) + rng.normal(0.0, _VOTES_LOG_SD)
    return Movie(
        imdb_id=imdb_id,
        title=_invent_title(genres, rng),
        year=_draw_year(rng),
        genres=genres,
        rating=rating,
        votes=max(5, round(math.exp(log_votes))),
        poster=f"posters/{imdb_id}.jpg",
    )


def _draw_year(rng: np.random.Generator) -> int:
    uniform = rng.random() < _YEARS_UNIFORM_SHARE
    fraction = rng.random() if uniform else rng.beta(*_RECENT_YEARS_BETA)
    return _FIRST_YEAR + round((_LAST_YEAR - _FIRST_YEAR) * float(fraction))


def _draw_genres(rng: np.random.Generator) -> tuple[str, ...]:
    shares = np.array([_STYLES[genre].share for genre in GENRES])
    count = rng.choice(_GENRES_PER_MOVIE, p=_GENRES_PER_MOVIE_SHARES)
    chosen = rng.choice(len(GENRES), size=count, replace=False, p=shares / shares.sum())
    return tuple(GENRES[position] for position in sorted(chosen))


def _invent_title(genres: tuple[str, ...], rng: np.random.Generator) -> str:
    def word(pool: str) -> str:
        words = getattr(_STYLES[genres[rng.integers(len(genres))]], pool)
        return words[rng.integers(len(words))]

    template = _TITLE_TEMPLATES[rng.choice(len(_TITLE_TEMPLATES), p=_TITLE_TEMPLATE_SHARES)]
    noun, other = word("nouns"), word("nouns")
    return template.format(
        adjective=word("adjectives"),
        noun=noun,
        other=other if other != noun else word("nouns"),
        place=_PLACES[rng.integers(len(_PLACES))],
        sequel=_SEQUELS[rng.integers(len(_SEQUELS))],
    )

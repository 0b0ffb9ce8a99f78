"""Which movies train, validate and test a model: the paper's filters and a seeded, saved split."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from catalog import GENRES, Movie

SPLIT_FILE = "split.json"  # saved in the model directory
DRAMA_ONLY_CAP = 1000
DRAMA_COMEDY_CAP = 1000


@dataclass(frozen=True)
class Split:
    seed: int
    train: list[str]
    validation: list[str]
    test: list[str]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)) + "\n")

    @classmethod
    def load(cls, path: Path) -> Split:
        from model.artifacts import ModelArtifactError

        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as error:
            what = "missing" if isinstance(error, FileNotFoundError) else f"damaged ({error})"
            raise ModelArtifactError(f"{path} is {what}: train the model again (make train)") from error


def with_target_genres(movies: list[Movie], genres: tuple[str, ...] = GENRES) -> list[Movie]:
    """Only the movies tagged with at least one of `genres`."""
    return [movie for movie in movies if any(genre in genres for genre in movie.genres)]


def rebalance(movies: list[Movie], seed: int, genres: tuple[str, ...] = GENRES) -> list[Movie]:
    """The paper's rebalancing: at most 1,000 movies tagged Drama alone and 1,000 tagged exactly Drama and Comedy."""
    caps = {("Drama",): DRAMA_ONLY_CAP, ("Comedy", "Drama"): DRAMA_COMEDY_CAP}
    counts = dict.fromkeys(caps, 0)
    keep = np.ones(len(movies), dtype=bool)
    for row in np.random.default_rng(seed).permutation(len(movies)):  # a random subset survives each cap
        tags = tuple(sorted(genre for genre in movies[row].genres if genre in genres))
        if tags in caps:
            keep[row] = counts[tags] < caps[tags]
            counts[tags] += 1
    return [movie for movie, kept in zip(movies, keep, strict=True) if kept]


def split_movies(movies: list[Movie], seed: int, test_share: float = 0.1, validation_share: float = 0.1) -> Split:
    """10 % test, then 10 % of the rest for validation, shuffled with `seed`."""
    ids = np.array([movie.imdb_id for movie in movies])
    shuffled = ids[np.random.default_rng(seed).permutation(len(ids))]
    n_test = round(len(ids) * test_share)
    n_validation = round((len(ids) - n_test) * validation_share)
    return Split(
        seed=seed,
        test=sorted(shuffled[:n_test].tolist()),
        validation=sorted(shuffled[n_test : n_test + n_validation].tolist()),
        train=sorted(shuffled[n_test + n_validation :].tolist()),
    )

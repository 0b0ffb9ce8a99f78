"""One movie of a catalog, and the genres PosterBench predicts."""

from __future__ import annotations

import re
from dataclasses import dataclass

GENRES: tuple[str, ...] = ("Action", "Comedy", "Drama", "Horror", "Romance", "Thriller")
"""The six genres the model predicts, in the order of every label vector."""

COLUMNS: tuple[str, ...] = ("imdb_id", "title", "year", "genres", "rating", "votes", "poster")
"""The columns of `movies.csv`, in the order the writer puts them."""

IMDB_ID = re.compile(r"tt[0-9]{7,8}")  # ASCII digits only: \d also matches other scripts' digits


@dataclass(frozen=True)
class Movie:
    """A catalog row: IMDb metadata and the poster's path relative to the catalog directory."""

    imdb_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]
    rating: float | None
    votes: int | None
    poster: str

    @property
    def imdb_url(self) -> str:
        return f"https://www.imdb.com/title/{self.imdb_id}/"

    def label_vector(self, genres: tuple[str, ...] = GENRES) -> list[int]:
        """1 for each of `genres` the movie is tagged with, else 0."""
        return [int(genre in self.genres) for genre in genres]

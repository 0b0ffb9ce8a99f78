"""The feature index of a catalog: what every poster evokes (genre probabilities, feature vector, decade
probabilities, expected year and rating, poster score), computed once by a trained model and saved beside it, so
that serving never runs the network on the catalog."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from catalog import Catalog, staged_directory
from model.artifacts import WEIGHTS_FILE, GenreModel, Prediction
from model.images import load_posters
from recommend.approximate import save_search

FEATURES_FILE = "features.npy"
PROBABILITIES_FILE = "probabilities.npy"
EVOKED_FILE = "evoked.npz"  # decades, year, rating and poster_score, one row per poster
EVOKED = ("decades", "year", "rating", "poster_score")
DESCRIPTION_FILE = "index.json"
CHUNK = 256


class FeatureIndexError(RuntimeError):
    """An index that is missing, damaged, or does not match its catalog or model."""


@dataclass
class FeatureIndex:
    """Row i of every array belongs to `imdb_ids[i]`."""

    imdb_ids: list[str]
    features: np.ndarray  # (n, feature_size) float32
    probabilities: np.ndarray  # (n, n_genres) float32
    genres: tuple[str, ...]
    evoked: dict[str, np.ndarray]  # decades (n, n_decades), year, rating, poster_score (n,)

    def row(self, imdb_id: str) -> int:
        return self._rows[imdb_id]

    def prediction(self, rows: list[int]) -> Prediction:
        """What the posters of these rows evoke, as the model predicted it."""
        return Prediction(
            genres=self.probabilities[rows],
            features=self.features[rows],
            **{name: self.evoked[name][rows] for name in EVOKED},
        )

    def __post_init__(self) -> None:
        self._rows = {imdb_id: row for row, imdb_id in enumerate(self.imdb_ids)}

    @classmethod
    def load(cls, directory: str | Path, catalog: Catalog | None = None) -> FeatureIndex:
        directory = Path(directory)
        paths = [directory / name for name in (DESCRIPTION_FILE, FEATURES_FILE, PROBABILITIES_FILE, EVOKED_FILE)]
        for path in paths:
            if not path.is_file():
                raise FeatureIndexError(
                    f"{path} is missing: build the index first (make index / python -m model index)"
                )
        try:
            description = json.loads(paths[0].read_text())
            features = np.load(paths[1], allow_pickle=False)
            probabilities = np.load(paths[2], allow_pickle=False)
            with np.load(paths[3], allow_pickle=False) as stored:
                evoked = {name: stored[name] for name in EVOKED}
            index = cls(description["imdb_ids"], features, probabilities, tuple(description["genres"]), evoked)
        except (ValueError, KeyError, OSError) as error:
            raise FeatureIndexError(f"{directory}: damaged index ({error}); rebuild it with make index") from error
        if not all(len(index.imdb_ids) == len(rows) for rows in (features, probabilities, *evoked.values())):
            raise FeatureIndexError(
                f"{directory}: ids, features, probabilities and evoked values disagree in length; rebuild the index"
            )
        if catalog is not None and index.imdb_ids != [movie.imdb_id for movie in catalog]:
            raise FeatureIndexError(
                f"{directory} was built for another catalog than {catalog.directory}; rebuild the index"
            )
        return index


def model_fingerprint(model_dir: Path) -> str:
    return hashlib.sha256((model_dir / WEIGHTS_FILE).read_bytes()).hexdigest()[:16]


def build_index(
    catalog: Catalog, model: GenreModel, model_dir: Path, out_dir: Path, progress: bool = True
) -> FeatureIndex:
    """Run `model` over every poster of `catalog` (in chunks, with a progress bar) and save the index."""
    parts = []
    movies = catalog.movies
    with tqdm(total=len(movies), desc="indexing posters", unit="poster", disable=not progress) as bar:
        for start in range(0, len(movies), CHUNK):
            chunk = movies[start : start + CHUNK]
            posters = load_posters([catalog.poster_path(movie) for movie in chunk], model.input_size, progress=False)
            parts.append(model.predict(posters))
            bar.update(len(chunk))
    prediction = Prediction.concatenate(parts)
    index = FeatureIndex(
        imdb_ids=[movie.imdb_id for movie in movies],
        features=prediction.features,
        probabilities=prediction.genres,
        genres=model.genres,
        evoked={name: getattr(prediction, name) for name in EVOKED},
    )
    model_dir = Path(model_dir)
    description = {
        "catalog": str(catalog.directory.resolve()),
        "model": str(model_dir.resolve()),
        "model_fingerprint": model_fingerprint(model_dir),
        "genres": list(index.genres),
        "imdb_ids": index.imdb_ids,
    }
    with staged_directory(out_dir) as staging:
        np.save(staging / FEATURES_FILE, index.features)
        np.save(staging / PROBABILITIES_FILE, index.probabilities)
        with (staging / EVOKED_FILE).open("wb") as handle:
            np.savez(handle, **index.evoked)
        save_search(index.features, staging)  # the approximate search's graphs, for catalogs above APPROXIMATE_ABOVE
        (staging / DESCRIPTION_FILE).write_text(json.dumps(description) + "\n")
    return index

"""The feature index of a catalog: every poster's genre probabilities and feature vector, computed
once by a trained model and saved beside it, so that serving never runs the network on the catalog."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from catalog import Catalog, staged_directory
from model.artifacts import WEIGHTS_FILE, GenreModel
from model.images import load_posters

FEATURES_FILE = "features.npy"
PROBABILITIES_FILE = "probabilities.npy"
DESCRIPTION_FILE = "index.json"
CHUNK = 256


class FeatureIndexError(RuntimeError):
    """An index that is missing, damaged, or does not match its catalog or model."""


@dataclass
class FeatureIndex:
    """Row i of `features` and `probabilities` belongs to `imdb_ids[i]`."""

    imdb_ids: list[str]
    features: np.ndarray  # (n, feature_size) float32
    probabilities: np.ndarray  # (n, n_genres) float32
    genres: tuple[str, ...]

    def row(self, imdb_id: str) -> int:
        return self._rows[imdb_id]

    def __post_init__(self) -> None:
        self._rows = {imdb_id: row for row, imdb_id in enumerate(self.imdb_ids)}

    @classmethod
    def load(cls, directory: str | Path, catalog: Catalog | None = None) -> FeatureIndex:
        directory = Path(directory)
        paths = [directory / name for name in (DESCRIPTION_FILE, FEATURES_FILE, PROBABILITIES_FILE)]
        for path in paths:
            if not path.is_file():
                raise FeatureIndexError(
                    f"{path} is missing: build the index first (make index / python -m model index)"
                )
        try:
            description = json.loads(paths[0].read_text())
            features = np.load(paths[1], allow_pickle=False)
            probabilities = np.load(paths[2], allow_pickle=False)
            index = cls(description["imdb_ids"], features, probabilities, tuple(description["genres"]))
        except (ValueError, KeyError, OSError) as error:
            raise FeatureIndexError(f"{directory}: damaged index ({error}); rebuild it with make index") from error
        if not len(index.imdb_ids) == len(features) == len(probabilities):
            raise FeatureIndexError(
                f"{directory}: ids, features and probabilities disagree in length; rebuild the index"
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
    features, probabilities = [], []
    movies = catalog.movies
    with tqdm(total=len(movies), desc="indexing posters", unit="poster", disable=not progress) as bar:
        for start in range(0, len(movies), CHUNK):
            chunk = movies[start : start + CHUNK]
            posters = load_posters([catalog.poster_path(movie) for movie in chunk], model.input_size, progress=False)
            chunk_probabilities, chunk_features = model.predict(posters)
            probabilities.append(chunk_probabilities)
            features.append(chunk_features)
            bar.update(len(chunk))
    index = FeatureIndex(
        imdb_ids=[movie.imdb_id for movie in movies],
        features=np.concatenate(features),
        probabilities=np.concatenate(probabilities),
        genres=model.genres,
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
        (staging / DESCRIPTION_FILE).write_text(json.dumps(description) + "\n")
    return index

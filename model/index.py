"""The feature index of a catalog: what every poster evokes (genre probabilities, feature vector, decade
probabilities, expected year and rating, poster score), computed once by a trained model and saved beside it, so
that serving never runs the network on the catalog. `posterbench index` computes it with the network as the app
serves it (served_model: the ONNX export, int8 once its check passed, batched on every core; Keras only without an
export), and index.json records which precision did."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
from tqdm import tqdm

from catalog import Catalog, check_output, staged_directory
from model.artifacts import (
    EXPORT_FILE,
    WEIGHTS_FILE,
    GenreModel,
    ModelArtifactError,
    Prediction,
    file_sha256,
    is_same_weights,
)
from model.images import load_posters
from recommend.approximate import save_search

if TYPE_CHECKING:
    from model.onnx_model import OnnxGenreModel

IndexingModel = Union[GenreModel, "OnnxGenreModel"]

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
    precision: str = "float32"  # of the model that computed it: int8 or float32 (Keras, or the float32 export)

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
    def load(
        cls, directory: str | Path, catalog: Catalog | None = None, model_dir: str | Path | None = None
    ) -> FeatureIndex:
        """The index in `directory`; with `catalog` and `model_dir`, refused (FeatureIndexError) unless it was built
        for that catalog and by that model's weights."""
        directory = Path(directory)
        paths = [directory / name for name in (DESCRIPTION_FILE, FEATURES_FILE, PROBABILITIES_FILE, EVOKED_FILE)]
        for path in paths:
            if not path.is_file():
                raise FeatureIndexError(f"{path} is missing: build the index first (make index / posterbench index)")
        try:
            description = json.loads(paths[0].read_text())
            features = np.load(paths[1], allow_pickle=False)
            probabilities = np.load(paths[2], allow_pickle=False)
            with np.load(paths[3], allow_pickle=False) as stored:
                evoked = {name: stored[name] for name in EVOKED}
            genres = tuple(description["genres"])
            precision = str(description["precision"]) if "precision" in description else "float32"  # older: Keras
            index = cls(description["imdb_ids"], features, probabilities, genres, evoked, precision)
        except (ValueError, KeyError, OSError) as error:
            raise FeatureIndexError(f"{directory}: damaged index ({error}); rebuild it with make index") from error
        if not all(len(index.imdb_ids) == len(rows) for rows in (features, probabilities, *evoked.values())):
            raise FeatureIndexError(
                f"{directory}: ids, features, probabilities and evoked values disagree in length; rebuild the index"
            )
        if len(features) and not np.isfinite(features.sum(axis=1, dtype=np.float64)).any():
            raise FeatureIndexError(
                f"{directory}: no movie's feature vector is a vector of numbers (NaN or infinite values), so nothing "
                "could be recommended; rebuild the index (make index)"
            )
        if catalog is not None and index.imdb_ids != [movie.imdb_id for movie in catalog]:
            raise FeatureIndexError(
                f"{directory} was built for another catalog than {catalog.directory}; rebuild the index"
            )
        built_by = description.get("model_fingerprint")
        if model_dir is not None and built_by is not None and built_by != model_fingerprint(Path(model_dir)):
            raise FeatureIndexError(
                f"{directory} was built by other weights than {model_dir}'s (trained again since?): its vectors "
                "and the queries' would not compare; rebuild the index (make index)"
            )
        return index


def model_fingerprint(model_dir: Path) -> str:
    """The start of the SHA-256 of the model's weights, as its ONNX export recorded it when the weights are still
    those (a serving host may hold the export alone), else hashed from the weights: every worker that starts asks."""
    weights = model_dir / WEIGHTS_FILE
    try:
        recorded = json.loads((model_dir / EXPORT_FILE).read_text())["source"]
        digest = str(recorded["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        recorded = None
    if recorded is not None and (not weights.is_file() or is_same_weights(weights, recorded)):
        return digest[:16]
    if weights.is_file():
        return file_sha256(weights)[:16]
    raise ModelArtifactError(f"{weights} is missing, and no {EXPORT_FILE} records the weights")


def served_model(model_dir: str | Path, threads: int | None = None, precision: str | None = None) -> IndexingModel:
    """The model as the app serves it, to index with: its ONNX export (int8 when its check passed, see
    OnnxGenreModel.load; `precision` as there) on `threads` threads (None: every core this process may use), else
    (no export) the Keras model."""
    from model.onnx_model import OnnxGenreModel, PrecisionSettingError, has_export

    if not has_export(model_dir):
        if precision == "int8":
            raise PrecisionSettingError(f"{model_dir} has no ONNX export to quantize: export it first (make onnx)")
        return GenreModel.load(model_dir)
    return OnnxGenreModel.load(model_dir, threads=threads or available_cores(), precision=precision)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity (macOS)
        return os.cpu_count() or 1


def precision_of(model: IndexingModel) -> str:
    """What an index records of the model that built it: "int8" or "float32" (Keras and the float32 export)."""
    return getattr(model, "precision", "float32")


def predict_catalog(
    catalog: Catalog, models: Sequence[IndexingModel], progress: bool = True, desc: str = "indexing posters"
) -> list[Prediction]:
    """What every poster of `catalog` evokes, by each of `models` (all of one input size): the posters are decoded in
    chunks, each chunk on a second thread while the models run on the one before (ONNX Runtime and Keras release
    the interpreter while they compute), and each chunk predicted in batches."""
    movies = catalog.movies
    size = models[0].input_size
    starts = range(0, len(movies), CHUNK)

    def decode(start: int) -> np.ndarray:
        chunk = movies[start : start + CHUNK]
        return load_posters([catalog.poster_path(movie) for movie in chunk], size, progress=False)

    parts: list[list[Prediction]] = [[] for _ in models]
    with (
        tqdm(total=len(movies), desc=desc, unit="poster", disable=not progress) as bar,
        ThreadPoolExecutor(max_workers=1) as decoder,
    ):
        pending = decoder.submit(decode, starts[0]) if starts else None
        for number in range(len(starts)):
            posters = pending.result()
            pending = decoder.submit(decode, starts[number + 1]) if number + 1 < len(starts) else None
            for part, model in zip(parts, models, strict=True):
                part.append(model.predict(posters))
            bar.update(len(posters))
    return [
        Prediction.concatenate(part) if part else model.predict(np.zeros((0, size[1], size[0], 3), np.uint8))
        for part, model in zip(parts, models, strict=True)
    ]


def build_index(
    catalog: Catalog, model: IndexingModel, model_dir: Path, out_dir: Path, progress: bool = True
) -> FeatureIndex:
    """Run `model` over every poster of `catalog` (in chunks, with a progress bar) and save the index; `model` is
    the Keras model or, as `posterbench index` gives it, the served ONNX export (served_model)."""
    check_output(out_dir, DESCRIPTION_FILE)  # before the pass over the catalog
    model_dir = Path(model_dir)
    fingerprint = model_fingerprint(model_dir)  # the same: a directory it cannot fingerprint fails now
    movies = catalog.movies
    (prediction,) = predict_catalog(catalog, [model], progress)
    index = FeatureIndex(
        imdb_ids=[movie.imdb_id for movie in movies],
        features=prediction.features,
        probabilities=prediction.genres,
        genres=model.genres,
        evoked={name: getattr(prediction, name) for name in EVOKED},
        precision=precision_of(model),
    )
    description = {
        "catalog": str(catalog.directory.resolve()),
        "model": str(model_dir.resolve()),
        "model_fingerprint": fingerprint,
        "precision": index.precision,
        "genres": list(index.genres),
        "imdb_ids": index.imdb_ids,
    }
    with staged_directory(out_dir, DESCRIPTION_FILE) as staging:
        np.save(staging / FEATURES_FILE, index.features)
        np.save(staging / PROBABILITIES_FILE, index.probabilities)
        with (staging / EVOKED_FILE).open("wb") as handle:
            np.savez(handle, **index.evoked)
        save_search(index.features, staging)  # the approximate search's graphs, for catalogs above APPROXIMATE_ABOVE
        (staging / DESCRIPTION_FILE).write_text(json.dumps(description) + "\n")
    return index

"""What the app reads and never writes: the catalog, its feature index, the genre model and (optionally) the CLEMS
label embedding, loaded once per worker process and checked against each other at start-up."""

from __future__ import annotations

import importlib.util
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from flask import Flask, current_app

from app.settings import checked_number
from catalog import Catalog, read_catalog
from embedding import ARRAYS_FILE as CLEMS_ARRAYS_FILE
from embedding import DESCRIPTION_FILE as CLEMS_DESCRIPTION_FILE
from embedding import EmbeddingMismatchError, check_fitted_for
from model.artifacts import DESCRIPTION_FILE as MODEL_DESCRIPTION_FILE
from model.artifacts import EXPORT_FILE, GenreModel, ModelArtifactError
from model.index import DESCRIPTION_FILE as INDEX_DESCRIPTION_FILE
from model.index import EVOKED_FILE, FEATURES_FILE, PROBABILITIES_FILE, FeatureIndex, FeatureIndexError, precision_of
from model.onnx_model import INTRA_OP_THREADS, OnnxExportError, OnnxGenreModel, PrecisionSettingError, has_export
from recommend import NeighbourSearch
from recommend.approximate import ApproximateSearch, ApproximateSearchError, load_search

# embedding.clems imports scikit-learn and SciPy, a second of every worker's start: load_clems imports it when needed.
if TYPE_CHECKING:
    from embedding.clems import CLEMS

EXTENSION = "posterbench"
INDEX_FILES = (INDEX_DESCRIPTION_FILE, FEATURES_FILE, PROBABILITIES_FILE, EVOKED_FILE)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resources:
    catalog: Catalog
    index: FeatureIndex
    model: GenreModel | OnnxGenreModel  # the same interface: predict, genres, thresholds, preset, input_size
    clems: CLEMS | None  # refines the model's genre probabilities when configured
    labels: np.ndarray  # (n_movies, n_genres) true genre tags, in catalog order
    decades: np.ndarray  # (n_movies,) each movie's decade (1990 for 1994), -1 when its year is unknown
    search: NeighbourSearch | ApproximateSearch  # over index.features: approximate when make index built its graphs

    def genre_probabilities(self, features: np.ndarray, model_probabilities: np.ndarray) -> np.ndarray:
        """The genre probabilities the app shows and recommends by: CLEMS's from the feature vector (n, d) when
        it is configured, else the model's own (n, n_genres). A genre counts as predicted above 0.5."""
        if self.clems is None:
            return model_probabilities
        return self.clems.predict_proba(features).astype(np.float32)


def load(
    catalog_dir: str,
    model_dir: str,
    index_dir: str,
    clems_dir: str | None = None,
    inference_threads: int | None = None,
    precision: str | None = None,
) -> Resources:
    """Everything the app serves, checked against each other; `inference_threads` are ONNX Runtime's intra-op threads
    per inference (None: onnx_model.INTRA_OP_THREADS), `precision` which ONNX export to serve (auto, float32, int8;
    None: POSTERBENCH_PRECISION, else auto)."""
    catalog = read_catalog(catalog_dir)
    model = load_model(model_dir, inference_threads, precision)
    index = load_index(index_dir, catalog, model_dir)
    if index.genres != model.genres:
        raise RuntimeError(f"{index_dir} was built for genres {index.genres}, the model predicts {model.genres}")
    if index.precision != precision_of(model):
        logger.warning(
            "%s was computed by the %s model and the app serves %s: the catalog's features and the queries' differ "
            "slightly (int8's check allows one of the five recommendations in five to change); build the index "
            "again with the served model (make index)",
            index_dir,
            index.precision,
            precision_of(model),
        )
    clems = None
    if clems_dir:
        if not (Path(clems_dir) / CLEMS_DESCRIPTION_FILE).is_file():
            raise RuntimeError(f"{clems_dir} holds no CLEMS model: fit one (make clems) or unset POSTERBENCH_CLEMS")
        try:
            check_fitted_for(clems_dir, model_dir)
        except EmbeddingMismatchError as error:
            raise RuntimeError(str(error)) from error
        clems = load_clems(clems_dir)
        if clems.n_labels_ != len(model.genres):
            raise RuntimeError(f"{clems_dir} predicts {clems.n_labels_} genres, the model {len(model.genres)}")
    return Resources(
        catalog=catalog,
        index=index,
        model=model,
        clems=clems,
        labels=catalog.labels(model.genres),
        decades=catalog.decades(),
        search=load_approximate_or_exact(index_dir, index.features, inference_threads),
    )


# What a damaged JSON, .npy or .npz file raises while it is read (zipfile for a damaged .npz).
DAMAGED_FILE_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile)


def load_model(model_dir: str, threads: int | None = None, precision: str | None = None) -> GenreModel | OnnxGenreModel:
    """The model's ONNX export, served by ONNX Runtime without TensorFlow on `threads` threads per inference (None:
    INTRA_OP_THREADS), int8 or float32 as `precision` says (see OnnxGenreModel.load), when the directory has one
    (`make onnx`); else the Keras model. An export that is incomplete, damaged or older than the weights, or a
    precision setting that is none of auto, float32 and int8, stops the app."""
    try:
        if has_export(model_dir):
            threads = INTRA_OP_THREADS if threads is None else threads
            return OnnxGenreModel.load(model_dir, threads=threads, precision=precision or None)
        require_keras_model(Path(model_dir))
        return GenreModel.load(model_dir)
    except PrecisionSettingError as error:
        raise RuntimeError(str(error)) from error
    except OnnxExportError:
        raise  # names the export's file and the command that writes it again
    except ModelArtifactError as error:  # names the file and says what is wrong with it
        if "is missing" in str(error):
            raise
        raise RuntimeError(f"{error}; train the model again with `make train`") from error


def require_keras_model(model_dir: Path) -> None:
    """RuntimeError, before Keras is imported, when a directory without an ONNX export holds no model or the install
    has no Keras to serve one with (the serving install, the Docker image): the error says which, not "no keras"."""
    if not (model_dir / MODEL_DESCRIPTION_FILE).is_file():
        raise RuntimeError(
            f"{model_dir / MODEL_DESCRIPTION_FILE} is missing: no trained model in {model_dir} (make train / "
            "posterbench train)"
        )
    if importlib.util.find_spec("keras") is None:
        raise RuntimeError(
            f"{model_dir} has no ONNX export ({EXPORT_FILE}), which this install serves: write it with `posterbench "
            "export-onnx` (make onnx) where the model was trained"
        )


def load_index(index_dir: str, catalog: Catalog, model_dir: str | None = None) -> FeatureIndex:
    try:
        return FeatureIndex.load(index_dir, catalog, model_dir)
    except (FeatureIndexError, *DAMAGED_FILE_ERRORS) as error:
        # A FeatureIndexError without a cause is missing, or built for another catalog, and says so and what to do;
        # valid JSON of the wrong shape gets through FeatureIndex.load as a plain error.
        cause = error.__cause__ if isinstance(error, FeatureIndexError) else error
        if cause is None:
            raise
        raise damaged(Path(index_dir), INDEX_FILES, cause, "rebuild the index with `make index`") from error


def load_approximate_or_exact(
    index_dir: str, features: np.ndarray, threads: int | None = None
) -> NeighbourSearch | ApproximateSearch:
    """The index's approximate search (its graphs memory-mapped, shared by the workers) when `make index` built one
    (catalogs above recommend.approximate.APPROXIMATE_ABOVE), else the exact search on `threads` threads per query
    (a request's share of the cores under gunicorn, as its inference gets)."""
    try:
        return load_search(index_dir, features, threads)
    except ApproximateSearchError as error:
        raise RuntimeError(str(error)) from error


def load_clems(clems_dir: str) -> CLEMS:
    from embedding.clems import CLEMS

    try:
        return CLEMS.load(clems_dir)
    except DAMAGED_FILE_ERRORS as error:
        raise damaged(
            Path(clems_dir), (CLEMS_DESCRIPTION_FILE, CLEMS_ARRAYS_FILE), error, "fit it again with `make clems`"
        ) from error


def damaged(directory: Path, names: tuple[str, ...], error: BaseException, remedy: str) -> RuntimeError:
    """A RuntimeError naming the first of `names` in `directory` that cannot be read whole, else the description
    (names[0]): files that all parse but do not fit together have a description of the wrong shape."""
    culprit = first_unreadable(directory, names) or directory / names[0]
    return RuntimeError(f"{culprit} is damaged ({error!r}): {remedy}")


def first_unreadable(directory: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        path = directory / name
        try:
            if path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as arrays:
                    for key in arrays.files:
                        arrays[key]
            else:
                np.load(path, allow_pickle=False)
        except DAMAGED_FILE_ERRORS:
            return path
    return None


def init_app(app: Flask) -> None:
    from app.jobs import job_threads

    missing = [key for key in ("CATALOG", "MODEL", "INDEX") if not app.config.get(key)]
    if missing:
        names = ", ".join(f"POSTERBENCH_{key}" for key in missing)
        raise RuntimeError(f"set {names}: the catalog, model and index directories to serve (`make run` does)")
    app.extensions[EXTENSION] = load(
        app.config["CATALOG"],
        app.config["MODEL"],
        app.config["INDEX"],
        app.config.get("CLEMS"),
        job_threads(app.config)
        if app.config.get("JOB_WORKER")
        else inference_threads(app.config.get("INFERENCE_THREADS")),
        app.config.get("PRECISION"),
    )


def inference_threads(setting: object) -> int | None:
    """The INFERENCE_THREADS setting (POSTERBENCH_INFERENCE_THREADS, which app/gunicorn_conf.py sets to a request's
    share of the cores) as a count of threads, None when it is not set; RuntimeError when it is not a whole number
    of at least 1."""
    if setting is None or setting == "":
        return None
    return int(checked_number("INFERENCE_THREADS", setting, 1, int))


def get_resources() -> Resources:
    return current_app.extensions[EXTENSION]

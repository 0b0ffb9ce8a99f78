"""Evaluate a saved genre model on a catalog against constant baselines: on the model's own held-out
test split when the catalog is the one it was trained on, else on every movie with a target genre that the model
neither trained nor validated on."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from catalog import GENRES, Catalog, CatalogError, OutputInUseError, OutputNotWritableError, check_writable
from model.artifacts import DESCRIPTION_FILE, GenreModel, Prediction
from model.images import load_posters
from model.index import FeatureIndex
from model.metrics import (
    calibration_report,
    constant_predictors,
    era_report,
    format_report,
    genre_report,
    summary,
    tune_thresholds,
)
from model.split import SPLIT_FILE, Split, with_target_genres

PREDICT_CHUNK = 256
REPORT_PREFIX = "evaluation"
"""The commands' default report is REPORT_PREFIX-CATALOG.json in the model (or CLEMS) directory."""
SERVED = "served"
"""The report of what the app serves (the index's probabilities), beside the model's own."""


def evaluation_movies(catalog: Catalog, model_dir: Path) -> tuple[list[str], str]:
    """The ids to evaluate on, and a phrase saying which they are: the model's held-out test split when the catalog
    holds it all, else every movie with a target genre less those of the model's training and validation splits
    (none, possibly: checked_evaluation_movies refuses that)."""
    split_path = model_dir / SPLIT_FILE
    split = Split.load(split_path) if split_path.exists() else None
    if split is not None and split.test and all(imdb_id in catalog for imdb_id in split.test):
        return split.test, "the model's held-out test split"
    candidates = [movie.imdb_id for movie in with_target_genres(catalog.movies)]
    seen = set() if split is None else set(split.train) | set(split.validation)
    ids = [imdb_id for imdb_id in candidates if imdb_id not in seen]
    if len(ids) < len(candidates):
        left_out = len(candidates) - len(ids)
        return ids, f"every movie with a target genre, less the {left_out} the model trained or validated on"
    return ids, "every movie with a target genre"


def checked_evaluation_movies(catalog: Catalog, model_dir: Path) -> tuple[list[str], str]:
    """evaluation_movies, refused (CatalogError, saying why) when it leaves no movie to evaluate on: none has a
    target genre, or the model trained or validated on every one that has."""
    ids, which = evaluation_movies(catalog, model_dir)
    if ids:
        return ids, which
    if not with_target_genres(catalog.movies):
        raise CatalogError(
            [f"no movie of {catalog.directory} has a target genre ({', '.join(GENRES)}): there is nothing to evaluate"]
        )
    raise CatalogError(
        [
            f"every movie of {catalog.directory} with a target genre is one that {model_dir} trained or validated "
            "on: evaluate the model on a catalog holding its held-out test split, or on movies it never saw"
        ]
    )


def check_holds(catalog: Catalog, ids: list[str], what: str) -> None:
    """Raise CatalogError, naming how many are missing, unless the catalog holds every movie of `ids` (`what` names
    them: "the training split of var/model")."""
    missing = sum(imdb_id not in catalog for imdb_id in ids)
    if missing:
        raise CatalogError(
            [f"{catalog.directory} does not hold {what}: {missing} of its {len(ids)} movies are missing"]
        )


def predict_movies(model: GenreModel, catalog: Catalog, ids: list[str], progress: bool = True) -> Prediction:
    """What the listed catalog movies' posters evoke, read and predicted in chunks."""
    from tqdm import tqdm

    parts = []
    for start in tqdm(range(0, len(ids), PREDICT_CHUNK), desc="predicting", unit="chunk", disable=not progress):
        chunk = [catalog.poster_path(catalog.get(imdb_id)) for imdb_id in ids[start : start + PREDICT_CHUNK]]
        parts.append(model.predict(load_posters(chunk, model.input_size, progress=False)))
    return Prediction.concatenate(parts)


def known_values(catalog: Catalog, ids: list[str], field: str) -> np.ndarray:
    """The movies' years or ratings as float32, NaN where unknown."""
    return np.array([np.nan if getattr(m, field) is None else getattr(m, field) for m in map(catalog.get, ids)], "f4")


def full_report(model: GenreModel, catalog: Catalog, ids: list[str], prediction: Prediction) -> dict:
    """The genre report of `prediction` for the listed movies, with each genre's calibration, the decade, year and
    rating figures, and the share of these (real) posters the detector flags as not posters."""
    y_true = catalog.labels(model.genres, ids).astype(int)
    description = model.description
    report = genre_report(y_true, prediction.genres, model.thresholds, model.genres)
    report["calibration"] = calibration_report(y_true, prediction.genres, model.genres)
    report["era"] = era_report(
        known_values(catalog, ids, "year"),
        known_values(catalog, ids, "rating"),
        prediction.decades,
        description.decades,
        prediction.year,
        prediction.rating,
        description.rating_interval,
    )
    report["poster_false_alarms"] = float(np.mean(~model.detector.passes(prediction.poster_score)))
    return report


def validation_ids(catalog: Catalog, model_dir: Path) -> list[str]:
    """The model's validation split, which `catalog` must hold (ModelArtifactError, ValueError or CatalogError
    otherwise): read without loading the model."""
    validation = Split.load(model_dir / SPLIT_FILE).validation
    if not validation:
        raise ValueError(f"{catalog.directory} does not hold the validation split of {model_dir}: it has none")
    check_holds(catalog, validation, f"the validation split of {model_dir}")
    return validation


def retune_thresholds(catalog: Catalog, model_dir: Path, progress: bool = True) -> np.ndarray:
    """Tune a saved model's thresholds again on its own validation split and save them in model.json."""
    validation = validation_ids(catalog, model_dir)  # before the model loads: the split may be missing
    model = GenreModel.load(model_dir)
    probabilities = predict_movies(model, catalog, validation, progress).genres
    thresholds = tune_thresholds(catalog.labels(model.genres, validation), probabilities)
    description_path = model_dir / DESCRIPTION_FILE
    description = json.loads(description_path.read_text())
    description["thresholds"] = [float(t) for t in thresholds]
    temporary = description_path.with_name(f".{DESCRIPTION_FILE}.tmp")
    temporary.write_text(json.dumps(description, indent=2) + "\n")
    temporary.replace(description_path)
    return thresholds


def evaluate(
    catalog: Catalog, model_dir: Path, progress: bool = True, index: FeatureIndex | None = None
) -> tuple[dict, str]:
    """Reports for the model (its Keras network, as trained) and the constant baselines, keyed by predictor, and a
    text rendering. With the catalog's feature `index` (built by this model, with what the app serves: the int8
    export when its check passed), also `served`: the same report on the index's stored probabilities, which are
    what the app answers for these posters, with the model's thresholds."""
    ids, which = checked_evaluation_movies(catalog, model_dir)  # before the model is loaded: there may be none
    model = GenreModel.load(model_dir)  # names a missing or damaged model.json before training_counts reads it
    baselines = constant_predictors(*training_counts(model_dir))  # an older model's gap, before its passes
    y_true = catalog.labels(model.genres, ids).astype(int)
    reports = {"model": full_report(model, catalog, ids, predict_movies(model, catalog, ids, progress))}
    names = {"model": "model"}
    if index is not None:
        reports[SERVED] = full_report(model, catalog, ids, index.prediction([index.row(imdb_id) for imdb_id in ids]))
        names[SERVED] = f"{SERVED}: the index's probabilities, by the {index.precision} model the app serves"
    for name, (scores, decisions) in baselines.items():
        reports[name] = genre_report(
            y_true, np.tile(scores, (len(ids), 1)), model.thresholds, model.genres, np.tile(decisions, (len(ids), 1))
        )
    title = f"{catalog.directory}: {len(ids)} movies, {which}"
    text = "\n\n".join(format_report(report, f"{names.get(name, name)} ({title})") for name, report in reports.items())
    return reports, text


def training_counts(model_dir: Path) -> tuple[np.ndarray, int]:
    """Per-genre counts and size of the training split, as saved with the model."""
    description = json.loads((model_dir / DESCRIPTION_FILE).read_text())
    if "train_genre_counts" not in description or "train_size" not in description:
        raise ValueError(
            f"{model_dir / DESCRIPTION_FILE} does not record its training split's genre counts (a model saved by an"
            " older version): train it again to compare it with the baselines"
        )
    return np.asarray(description["train_genre_counts"]), int(description["train_size"])


def summaries(reports: dict) -> dict:
    return {name: summary(report) for name, report in reports.items()}


def check_report_path(
    out_file: Path, inputs: Mapping[str, Path | None] | None = None, report_dir: Path | None = None
) -> None:
    """Raise OutputNotWritableError unless the report can be written to `out_file`: not a directory, not a file that
    cannot be written, and in a directory that can be (check_writable); and OutputInUseError when `out_file` is one
    of the command's `inputs` (what each is, as "model directory", to its path; None: not given) or lies inside
    one, which writing the report would damage, save a report of this command (evaluation-*.json) right in
    `report_dir`, where it is written by default. Paths are compared resolved (links, ".."). Called before the
    evaluation, which a report that cannot be written would lose."""
    if out_file.is_dir():
        raise OutputNotWritableError(f"cannot write the report to {out_file}: it is a directory; name a file")
    if out_file.exists() and not os.access(out_file, os.W_OK):
        raise OutputNotWritableError(f"cannot write the report to {out_file}: the file is not writable")
    check_writable(out_file)
    target = out_file.resolve()
    if report_dir is not None and target.parent == report_dir.resolve() and is_report_name(target.name):
        return
    for what, directory in (inputs or {}).items():
        if directory is not None and target.is_relative_to(directory.resolve()):
            raise OutputInUseError(
                f"cannot write the report to {out_file}: it is inside the {what} {directory}, an input of this "
                "command, which it would damage; name a file elsewhere"
            )


def is_report_name(name: str) -> bool:
    """Whether `name` is that of an evaluation report, as the commands name theirs by default."""
    return name.startswith(f"{REPORT_PREFIX}-") and name.endswith(".json")


def report_name(catalog: Catalog) -> str:
    """The default report's file name for a catalog: evaluation-NAME.json, NAME its directory's."""
    return f"{REPORT_PREFIX}-{catalog.directory.resolve().name}.json"


def publish(reports: dict, text: str, out_file: Path) -> str:
    """Write the reports as JSON to `out_file` (and the directories it needs); the text to print, ending in the
    one-line JSON summary. A figure that cannot be computed (NaN: no movie has a rating) is null, which every JSON
    parser reads."""
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(without_nan(reports), indent=2, allow_nan=False) + "\n")
    return f"{text}\nreport written to {out_file}\n{json.dumps(without_nan(summaries(reports)), allow_nan=False)}"


def without_nan(value: object) -> object:
    """`value` (dicts, lists, numbers) with each NaN or infinite float replaced by None."""
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_nan(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

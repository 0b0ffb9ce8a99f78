"""CLEMS as a pipeline stage: fit on the genre model's feature vectors of its training split (read from
the catalog's index), saved beside the model, and evaluated in the same report as the model alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from catalog import Catalog, check_output, staged_directory
from embedding import DESCRIPTION_FILE, SOURCE_FILE
from embedding.clems import CLEMS
from model.evaluation import check_holds, evaluate, evaluation_movies
from model.index import FeatureIndex, model_fingerprint
from model.metrics import calibration_report, format_table, genre_report
from model.split import SPLIT_FILE, Split

PREDICTOR = "model+clems"


def rows_of(catalog: Catalog, ids: list[str], what: str = "these movies") -> np.ndarray:
    """The catalog rows of the movies `ids`; CatalogError, naming how many are missing, unless the catalog holds them
    all (`what` names them, for that message)."""
    check_holds(catalog, ids, what)
    return np.array([catalog.position(imdb_id) for imdb_id in ids], dtype=int)


def fit_clems(
    catalog: Catalog,
    model_dir: Path,
    index: FeatureIndex,
    out_dir: Path,
    cost: str = "hamming",
    n_estimators: int = 500,
    seed: int = 0,
) -> CLEMS:
    """Fit CLEMS on the index's features and the catalog's genres of the model's training split; save it, with the
    model's fingerprint (SOURCE_FILE), which the app checks against the model it serves."""
    check_output(out_dir, DESCRIPTION_FILE)  # replaceable and writable, before the forests, which take minutes
    fingerprint = model_fingerprint(model_dir)
    train = Split.load(model_dir / SPLIT_FILE).train
    rows = rows_of(catalog, train, f"the training split of {model_dir}")
    clems = CLEMS(cost, n_estimators=n_estimators, random_state=seed, n_jobs=-1)
    clems.fit(index.features[rows], catalog.labels(index.genres, train))
    with staged_directory(out_dir, DESCRIPTION_FILE) as staging:
        clems.save(staging)
        (staging / SOURCE_FILE).write_text(json.dumps({"model_fingerprint": fingerprint}) + "\n", encoding="utf-8")
    return clems


def evaluate_with_clems(
    catalog: Catalog, model_dir: Path, index: FeatureIndex, clems: CLEMS, progress: bool = True
) -> tuple[dict, str]:
    """The model's report (the paper's Table I) and the baselines, plus `model+clems` (Table II)."""
    reports, text = evaluate(catalog, model_dir, progress, index=index)  # refuses a catalog with none to evaluate
    ids, which = evaluation_movies(catalog, model_dir)
    y_true = catalog.labels(index.genres, ids).astype(int)
    predicted, probabilities = clems.predict_with_proba(index.features[rows_of(catalog, ids)])
    reports[PREDICTOR] = genre_report(y_true, probabilities, np.full(len(index.genres), 0.5), index.genres, predicted)
    reports[PREDICTOR]["calibration"] = calibration_report(y_true, probabilities, index.genres)
    title = f"{PREDICTOR}, {clems.cost} cost ({catalog.directory}: {len(ids)} movies, {which})"
    ece = reports[PREDICTOR]["calibration"]["ece_max"]
    return reports, text + "\n\n" + format_table(reports[PREDICTOR], title) + f"\nworst genre's ECE {ece:.3f}"

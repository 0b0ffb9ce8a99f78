"""What the app reads and never writes: the catalog, its feature index, the genre model and (optionally) the CLEMS
label embedding, loaded once per worker process and checked against each other at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flask import Flask, current_app

from app.recommender import NeighbourSearch
from catalog import Catalog, read_catalog
from embedding.clems import CLEMS
from model.artifacts import GenreModel
from model.index import FeatureIndex

EXTENSION = "posterbench"


@dataclass(frozen=True)
class Resources:
    catalog: Catalog
    index: FeatureIndex
    model: GenreModel
    clems: CLEMS | None  # refines the model's genre probabilities when configured
    labels: np.ndarray  # (n_movies, n_genres) true genre tags, in catalog order
    search: NeighbourSearch  # over index.features

    def genre_probabilities(self, features: np.ndarray, model_probabilities: np.ndarray) -> np.ndarray:
        """The genre probabilities the app shows and recommends by: CLEMS's from the feature vector (n, d) when
        it is configured, else the model's own (n, n_genres). A genre counts as predicted above 0.5."""
        if self.clems is None:
            return model_probabilities
        return self.clems.predict_proba(features).astype(np.float32)


def load(catalog_dir: str, model_dir: str, index_dir: str, clems_dir: str | None = None) -> Resources:
    catalog = read_catalog(catalog_dir)
    model = GenreModel.load(model_dir)
    index = FeatureIndex.load(index_dir, catalog)
    if index.genres != model.genres:
        raise RuntimeError(f"{index_dir} was built for genres {index.genres}, the model predicts {model.genres}")
    clems = None
    if clems_dir:
        if not (Path(clems_dir) / "clems.json").is_file():
            raise RuntimeError(f"{clems_dir} holds no CLEMS model: fit one (make clems) or unset POSTERBENCH_CLEMS")
        clems = CLEMS.load(clems_dir)
        if clems.n_labels_ != len(model.genres):
            raise RuntimeError(f"{clems_dir} predicts {clems.n_labels_} genres, the model {len(model.genres)}")
    return Resources(
        catalog=catalog,
        index=index,
        model=model,
        clems=clems,
        labels=catalog.labels(model.genres),
        search=NeighbourSearch(index.features),
    )


def init_app(app: Flask) -> None:
    missing = [key for key in ("CATALOG", "MODEL", "INDEX") if not app.config.get(key)]
    if missing:
        names = ", ".join(f"POSTERBENCH_{key}" for key in missing)
        raise RuntimeError(f"set {names}: the catalog, model and index directories to serve (`make run` does)")
    app.extensions[EXTENSION] = load(
        app.config["CATALOG"], app.config["MODEL"], app.config["INDEX"], app.config.get("CLEMS")
    )


def get_resources() -> Resources:
    return current_app.extensions[EXTENSION]

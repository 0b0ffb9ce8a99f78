"""What the app reads and never writes: the catalog, its feature index and the genre model,
loaded once per worker process and checked against each other at start-up."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from flask import Flask, current_app

from catalog import Catalog, read_catalog
from model.artifacts import GenreModel
from model.index import FeatureIndex

EXTENSION = "posterbench"


@dataclass(frozen=True)
class Resources:
    catalog: Catalog
    index: FeatureIndex
    model: GenreModel
    labels: np.ndarray  # (n_movies, n_genres) true genre tags, in catalog order


def load(catalog_dir: str, model_dir: str, index_dir: str) -> Resources:
    catalog = read_catalog(catalog_dir)
    model = GenreModel.load(model_dir)
    index = FeatureIndex.load(index_dir, catalog)
    if index.genres != model.genres:
        raise RuntimeError(f"{index_dir} was built for genres {index.genres}, the model predicts {model.genres}")
    return Resources(catalog=catalog, index=index, model=model, labels=catalog.labels(model.genres))


def init_app(app: Flask) -> None:
    missing = [key for key in ("CATALOG", "MODEL", "INDEX") if not app.config.get(key)]
    if missing:
        names = ", ".join(f"POSTERBENCH_{key}" for key in missing)
        raise RuntimeError(f"set {names}: the catalog, model and index directories to serve (`make run` does)")
    app.extensions[EXTENSION] = load(app.config["CATALOG"], app.config["MODEL"], app.config["INDEX"])


def get_resources() -> Resources:
    return current_app.extensions[EXTENSION]

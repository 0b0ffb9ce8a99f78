"""The original authors' serving design, as a baseline for `bench/load.py --baseline`: every request builds a
Keras function from the network's input to its feature layer (their per-request backend function) and walks the
catalog's feature vectors with a pandas `iterrows` loop, one scipy distance call per row. Same catalog, model and
index as PosterBench; no bandit, no database, no genres.

Served by gunicorn like the real app (`gunicorn -c python:app.gunicorn_conf "bench.authors_app:create_app()"`) with the
POSTERBENCH_CATALOG, POSTERBENCH_MODEL and POSTERBENCH_INDEX variables. It answers POST /recommend with a 303 to
its results, as the app does, and GET / with a form carrying a placeholder token, so the load client runs as is.
"""

from __future__ import annotations

import os

import numpy as np
from flask import Flask, Response, redirect, request

PLACEHOLDER_FORM = '<form><input type="hidden" name="csrf_token" value="none"></form>'


def create_app() -> Flask:
    import keras
    import pandas as pd

    from catalog import read_catalog
    from model.artifacts import GenreModel
    from model.images import decode_poster, poster_array, preprocess
    from model.index import FeatureIndex
    from model.network import FEATURES_LAYER

    catalog = read_catalog(os.environ["POSTERBENCH_CATALOG"])
    model = GenreModel.load(os.environ["POSTERBENCH_MODEL"])
    frame = pd.DataFrame(FeatureIndex.load(os.environ["POSTERBENCH_INDEX"], catalog).features)
    app = Flask(__name__)

    @app.get("/")
    def home() -> str:
        return PLACEHOLDER_FORM

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "movies": len(catalog)}

    @app.post("/recommend")
    def recommend() -> Response:
        from scipy.spatial import distance

        size = model.input_size
        image = decode_poster(request.files["poster"].read(), size)
        features_of = keras.Model(model.network.input, model.network.get_layer(FEATURES_LAYER).output)  # per request
        query = np.asarray(features_of(preprocess(poster_array(image, size)[np.newaxis]), training=False))[0]
        scored = [
            (distance.euclidean(query, row.to_numpy()), position) for position, (_, row) in enumerate(frame.iterrows())
        ]
        scored.sort()
        nearest = [catalog.movies[position].imdb_id for _, position in scored[:5]]
        return redirect("/results/" + ",".join(nearest), 303)

    return app

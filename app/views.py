"""Pages: the home page (upload or pick a sample), results and their feedback, catalog posters, health check."""

from __future__ import annotations

import io
import json
import sqlite3

import numpy as np
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from PIL import Image
from werkzeug.exceptions import RequestEntityTooLarge

from app.db import get_db
from app.feedback import (
    RATING_OF_REWARD,
    RATINGS,
    FeedbackError,
    Shown,
    choose,
    current_policy,
    rating_for,
    record_feedback,
    record_recommendation,
)
from app.recommender import candidate_genres, recommend
from app.resources import get_resources
from model.images import PosterImageError, decode_poster, poster_array

bp = Blueprint("main", __name__)
THUMBNAIL_SIZE = (182, 268)
POSTER_CACHE_SECONDS = 24 * 3600


@bp.get("/")
def index() -> str:
    resources = get_resources()
    movies = resources.catalog.movies
    count = min(current_app.config["SAMPLE_COUNT"], len(movies))
    samples = [movies[round(i * (len(movies) - 1) / max(count - 1, 1))] for i in range(count)]
    return render_template("index.html", samples=samples)


@bp.post("/recommend")
def recommend_view() -> Response:
    resources = get_resources()
    sample_id = request.form.get("sample")
    upload = request.files.get("poster")
    if sample_id:
        if sample_id not in resources.catalog:
            abort(404, f"no movie {sample_id} in the catalog")
        row = resources.catalog.position(sample_id)
        probabilities, features = resources.index.probabilities[row], resources.index.features[row]
        query = {"query_kind": "sample", "query_imdb_id": sample_id, "query_image": None}
    elif upload and upload.filename:
        size = resources.model.input_size
        try:
            image = decode_poster(upload.read(), (max(size, THUMBNAIL_SIZE[0]), max(size, THUMBNAIL_SIZE[1])))
        except PosterImageError as error:
            return home_with_error(f"We could not read {upload.filename}: {error}", 400)
        probabilities, features = (batch[0] for batch in resources.model.predict(poster_array(image, size)[np.newaxis]))
        query = {"query_kind": "upload", "query_imdb_id": None, "query_image": thumbnail(image)}
        row = None
    else:
        return home_with_error("Choose a poster image to upload, or click one of the sample posters.", 400)

    probabilities = resources.genre_probabilities(features[np.newaxis], probabilities[np.newaxis])[0]
    database = get_db()
    policy_name = current_app.config["BANDIT_POLICY"]
    choice = choose(current_policy(database, policy_name, current_app.config["BANDIT_PARAMS"]))
    rows = recommend(
        resources.search,
        resources.labels,
        features,
        probabilities,
        choice.arm,
        exclude_rows=[] if row is None else [row],
    )
    genres = {genre: round(float(p), 4) for genre, p in zip(resources.model.genres, probabilities, strict=True)}
    shown = Shown(**query, genres=genres, results=[resources.catalog.movies[r].imdb_id for r in rows])
    recommendation_id = record_recommendation(database, policy_name, choice, shown)
    return redirect(url_for("main.results", recommendation_id=recommendation_id), 303)


@bp.get("/results/<int:recommendation_id>")
def results(recommendation_id: int) -> str:
    shown = load_recommendation(recommendation_id)
    resources = get_resources()
    catalog = resources.catalog
    probability_of = json.loads(shown["genres"])
    pooled = candidate_genres(np.array(list(probability_of.values())))
    genres = [
        (genre, probability_of[genre], bool(pooled[position]))
        for position, genre in sorted(enumerate(probability_of), key=lambda item: -probability_of[item[1]])
    ]
    movies = [catalog.get(imdb_id) for imdb_id in json.loads(shown["results"]) if imdb_id in catalog]
    query_movie = catalog.get(shown["query_imdb_id"]) if shown["query_imdb_id"] in catalog else None
    return render_template(
        "results.html",
        shown=shown,
        genres=genres,
        movies=movies,
        query_movie=query_movie,
        ratings=RATINGS,
        rated=rating_for(get_db(), recommendation_id),
    )


@bp.post("/results/<int:recommendation_id>/feedback")
def feedback(recommendation_id: int) -> Response | tuple[str, int]:
    try:
        reward = record_feedback(get_db(), recommendation_id, request.form.get("rating"))
    except FeedbackError as error:
        flash(str(error), "error")
        if error.status == 404:
            return index(), 404
        return results(recommendation_id), error.status
    flash(f"Thank you: you rated these recommendations {RATING_OF_REWARD[reward]}.", "notice")
    return redirect(url_for("main.results", recommendation_id=recommendation_id), 303)


@bp.get("/results/<int:recommendation_id>/query.jpg")
def query_image(recommendation_id: int) -> Response:
    shown = load_recommendation(recommendation_id)
    if shown["query_image"] is None:
        abort(404)
    return Response(shown["query_image"], mimetype="image/jpeg")


@bp.get("/posters/<imdb_id>.jpg")
def poster(imdb_id: str) -> Response:
    catalog = get_resources().catalog
    if imdb_id not in catalog:
        abort(404)
    return send_from_directory(catalog.directory.resolve(), catalog.get(imdb_id).poster, max_age=POSTER_CACHE_SECONDS)


@bp.get("/healthz")
def healthz() -> dict:
    get_db().execute("SELECT 1").fetchone()
    return {"status": "ok", "movies": len(get_resources().catalog)}


@bp.app_errorhandler(RequestEntityTooLarge)
def too_large(_error: RequestEntityTooLarge) -> tuple[str, int]:
    limit = current_app.config["MAX_CONTENT_LENGTH"] / (1024 * 1024)
    return home_with_error(f"That file is too large: posters up to {limit:g} MB, please.", 413)


def load_recommendation(recommendation_id: int) -> sqlite3.Row:
    shown = get_db().execute("SELECT * FROM recommendations WHERE id = ?", (recommendation_id,)).fetchone()
    if shown is None:
        abort(404, f"no recommendation {recommendation_id}")
    return shown


def thumbnail(image: Image.Image) -> bytes:
    """A small JPEG of a decoded upload, kept with the recommendation to show it again."""
    small = image.copy()
    small.thumbnail(THUMBNAIL_SIZE)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def home_with_error(message: str, status: int) -> tuple[str, int]:
    flash(message)
    return index(), status

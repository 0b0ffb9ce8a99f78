"""Pages: the home page (upload, IMDb link or sample), results with their scatter plot and feedback, catalog
posters, health check."""

from __future__ import annotations

import json
from pathlib import Path

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

from app import MEGABYTE
from app.db import Row, get_db
from app.errors import RequestError, full_sentence
from app.limits import poster_work
from app.plots import THUMBNAIL_PIXELS, ScatterPoint, scatter_svg
from app.poster_pipeline import QueryError, imdb_query, recommend_for, sample_query, upload_query
from app.recommendations import (
    RATING_OF_REWARD,
    RATINGS,
    FeedbackError,
    RateLimit,
    find_recommendation,
    is_recommendation_key,
    rating_for,
    record_feedback,
)
from app.resources import get_resources
from app.security import client_key
from model.images import PosterImageError, decode_poster
from model.index import precision_of
from recommend import candidate_genres
from scraper.links import EXAMPLE_LINK

bp = Blueprint("main", __name__)
POSTER_CACHE_SECONDS = 24 * 3600
PLOT_THUMBNAIL_SIZE = (THUMBNAIL_PIXELS, THUMBNAIL_PIXELS)  # fits a poster at the height the plot draws


@bp.get("/")
def index() -> str:
    return home_page()


def home_page(link: str = "") -> str:
    """The home page, its IMDb link field filled in with `link` (the one just refused)."""
    resources = get_resources()
    movies = resources.catalog.movies
    count = min(current_app.config["SAMPLE_COUNT"], len(movies))
    samples = [movies[round(i * (len(movies) - 1) / max(count - 1, 1))] for i in range(count)]
    limit = current_app.config["MAX_CONTENT_LENGTH"] / MEGABYTE
    return render_template(
        "index.html", samples=samples, link=link, upload_limit=f"{limit:g} MB", example_link=EXAMPLE_LINK
    )


@bp.post("/recommend")
def recommend_view() -> Response | tuple[str, int, dict[str, str]]:
    resources = get_resources()
    sample_id = request.form.get("sample", "").strip()
    upload = request.files.get("poster")
    link = request.form.get("imdb_url", "").strip()
    try:
        if sample_id:
            query = sample_query(resources, sample_id)
        elif upload and upload.filename:
            with poster_work("upload"):
                query = upload_query(resources, upload.read(), upload.filename)
        elif link:
            with poster_work("imdb"):
                query = imdb_query(resources, link, current_app.config)
        else:
            raise QueryError("Choose a poster image to upload, paste an IMDb link, or click a sample poster.", 400)
    except RequestError as error:  # QueryError, or ImdbError from a link
        return home_with_error(error, link)
    shown = recommend_for(get_db(), resources, current_app.config, query)
    return redirect(results_url(shown.id, shown.key), 303)


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
    movies = shown_movies(shown)
    query_movie = catalog.get(shown["query_imdb_id"]) if shown["query_imdb_id"] in catalog else None
    return render_template(
        "results.html",
        shown=shown,
        genres=genres,
        evoked=json.loads(shown["evoked"]) if shown["evoked"] else None,
        movies=movies,
        query_movie=query_movie,
        ratings=RATINGS,
        rated=rating_for(get_db(), recommendation_id),
        key=request.args["key"],
    )


@bp.post("/results/<int:recommendation_id>/feedback")
def feedback(recommendation_id: int) -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    load_recommendation(recommendation_id)  # its key, before anything is written
    limit = RateLimit.from_config(current_app.config)
    try:
        reward = record_feedback(get_db(), recommendation_id, request.form.get("rating"), client_key(), limit)
    except FeedbackError as error:
        flash(full_sentence(str(error)), "error")
        if error.status == 404:
            return home_page(), 404
        return results(recommendation_id), error.status, error.headers
    flash(f"Thank you! You rated these suggestions {RATING_OF_REWARD[reward]}.", "notice")
    return redirect(results_url(recommendation_id, request.args["key"]), 303)  # the key load_recommendation checked


@bp.get("/results/<int:recommendation_id>/query.jpg")
def query_image(recommendation_id: int) -> Response:
    shown = load_recommendation(recommendation_id)
    if shown["query_image"] is None:
        abort(404)
    return Response(shown["query_image"], mimetype="image/jpeg")  # private, no-store: security.PRIVATE_ENDPOINTS


@bp.get("/results/<int:recommendation_id>/scatter.svg")
def scatter(recommendation_id: int) -> Response:
    """Year against IMDb rating of the recommended movies, each on its poster."""
    catalog = get_resources().catalog
    points = [
        ScatterPoint(movie.title, movie.year, movie.rating, plot_thumbnail(catalog.poster_path(movie)))
        for movie in shown_movies(load_recommendation(recommendation_id))
    ]
    headers = {"Cache-Control": "private, max-age=3600"}  # what was recommended to one person
    return Response(scatter_svg(points), mimetype="image/svg+xml", headers=headers)


@bp.get("/posters/<imdb_id>.jpg")
def poster(imdb_id: str) -> Response:
    catalog = get_resources().catalog
    if imdb_id not in catalog:
        abort(404)
    return send_from_directory(catalog.directory.resolve(), catalog.get(imdb_id).poster, max_age=POSTER_CACHE_SECONDS)


@bp.get("/healthz")
def healthz() -> dict:
    """200 when the database reads (its tables, not only the connection) and the model is loaded; 503 otherwise."""
    database = get_db()
    database.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    database.execute("SELECT id FROM recommendations ORDER BY id DESC LIMIT 1").fetchone()
    resources = get_resources()
    return {"status": "ok", "movies": len(resources.catalog), "precision": precision_of(resources.model)}


def results_url(recommendation_id: int, key: str, **options: object) -> str:
    """The results page of a recommendation, its key in the address."""
    return url_for("main.results", recommendation_id=recommendation_id, key=key, **options)


def load_recommendation(recommendation_id: int) -> Row:
    """The recommendation the request's address names, with its key (`?key=`); 404 alike for an unknown one and a
    wrong or missing key, so that the ids cannot be probed."""
    key = request.args.get("key")
    shown = find_recommendation(get_db(), recommendation_id)
    if not is_recommendation_key(current_app.config["SECRET_KEY"], shown, key):
        abort(404, f"no recommendation {recommendation_id} with that key: open it from the whole link you were given")
    return shown


def shown_movies(shown: Row) -> list:
    catalog = get_resources().catalog
    return [catalog.get(imdb_id) for imdb_id in json.loads(shown["results"]) if imdb_id in catalog]


def plot_thumbnail(path: Path) -> Image.Image | None:
    """A catalog poster small enough for the plot, decoded with the uploads' guards (upright, no bomb); None when it
    cannot be read (missing, damaged, refused), and the point is drawn without its poster."""
    try:
        small = decode_poster(path, PLOT_THUMBNAIL_SIZE)
    except PosterImageError:
        return None
    small.thumbnail(PLOT_THUMBNAIL_SIZE)
    return small


def home_with_error(error: RequestError, link: str = "") -> tuple[str, int, dict[str, str]]:
    flash(full_sentence(str(error)), "error")
    return home_page(link), error.status, error.headers

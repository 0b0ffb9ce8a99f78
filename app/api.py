"""The JSON API beside the pages (described by /api/openapi.json): recommend for a poster, rate a recommendation,
read the bandit's state. State-changing calls need the X-Requested-With header, or a bearer token when API_TOKEN
is set (security.check_api_request)."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, request, url_for

from app.dashboard import current_report
from app.db import get_db
from app.limits import poster_work
from app.poster_pipeline import QueryError, imdb_query, recommend_for, sample_query, upload_query
from app.recommendations import RATING_OF_REWARD, RateLimit, record_feedback
from app.resources import get_resources
from app.security import client_key
from catalog import Movie

bp = Blueprint("api", __name__, url_prefix="/api")
QUERY_FIELDS = ("image", "imdb_url", "sample")
QUERY_CHOICE = (
    "a poster as the multipart field 'image', an IMDb title link as 'imdb_url' or a catalog movie's id as 'sample'"
)
OPENAPI = json.loads(Path(__file__).with_name("openapi.json").read_text())  # read once; servers added per request


def movie_json(movie: Movie) -> dict[str, object]:
    return {
        "imdb_id": movie.imdb_id,
        "title": movie.title,
        "year": movie.year,
        "rating": movie.rating,
        "votes": movie.votes,
        "genres": list(movie.genres),
        "imdb_url": movie.imdb_url,
        "poster_url": url_for("main.poster", imdb_id=movie.imdb_id, _external=True),
    }


@bp.post("/recommend")
def recommend() -> tuple[dict, int]:
    resources = get_resources()
    # A QueryError, or an ImdbError from a link, is answered by errors.request_error.
    sent = [name for name in QUERY_FIELDS if name in request.files or name in request.form]
    if len(sent) != 1:
        raise QueryError(f"send exactly one of {QUERY_CHOICE}; this request sent {len(sent)}", 400)
    if sent == ["image"]:
        image = request.files.get("image")
        if image is None:
            raise QueryError("send the poster as a file: the multipart field 'image' with a filename", 400)
        with poster_work("upload"):
            query = upload_query(resources, image.read(), image.filename)
    elif sent == ["imdb_url"]:
        with poster_work("imdb"):
            query = imdb_query(resources, request.form["imdb_url"].strip(), current_app.config)
    else:
        query = sample_query(resources, request.form["sample"].strip())
    shown = recommend_for(get_db(), resources, current_app.config, query)
    answer = {
        "id": shown.id,
        "arm": shown.choice.arm,
        "explored": shown.choice.explored,
        "genres": shown.genres,
        **shown.evoked,
        "recommendations": [movie_json(movie) for movie in shown.movies],
        "results_url": url_for("main.results", recommendation_id=shown.id, _external=True),
    }
    return answer, 201


@bp.post("/feedback")
def feedback() -> dict:
    body = request.get_json(silent=True)
    recommendation_id = json_integer(body.get("id")) if isinstance(body, dict) else None
    if recommendation_id is None:
        abort(400, 'send a JSON object {"id": <recommendation id>, "rating": "good" | "okay" | "bad"}')
    limit = RateLimit.from_config(current_app.config)
    reward = record_feedback(get_db(), recommendation_id, body.get("rating"), client_key(), limit)  # errors.py
    return {"id": recommendation_id, "rating": RATING_OF_REWARD[reward], "reward": reward}


def json_integer(value: object) -> int | None:
    """A JSON number that is an integer, as JSON Schema counts them (7 and 7.0; not true, 7.5, NaN or a string)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@bp.get("/bandit")
def bandit() -> dict:
    report = current_report()
    return {
        "policy": report.policy,
        "epsilon": report.epsilon,
        "n_rated": report.n_rated,
        "n_recommendations": report.n_shown,
        "arms": [
            {
                "arm": arm.arm,
                "count": arm.shown,
                "rated": arm.rated,
                "good": arm.good,
                "okay": arm.okay,
                "bad": arm.bad,
                "value": arm.value,
                "probability": arm.probability,
            }
            for arm in report.arms
        ],
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    document = {**OPENAPI, "servers": [{"url": request.host_url.rstrip("/")}]}
    return Response(json.dumps(document, indent=2), mimetype="application/json")

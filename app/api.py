"""The JSON API beside the pages (described by /api/openapi.json): recommend for a poster, rate a recommendation,
read the bandit's state. State-changing calls need the X-Requested-With header, or a bearer token when API_TOKEN
is set (security.check_api_request)."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, request, url_for

from app.dashboard import current_report
from app.db import get_db
from app.poster_pipeline import QueryError, imdb_query, recommend_for, sample_query, upload_query
from app.recommendations import RATING_OF_REWARD, RateLimit, record_feedback
from app.resources import get_resources
from app.security import client_key
from catalog import Movie

bp = Blueprint("api", __name__, url_prefix="/api")
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
    image = request.files.get("image")
    link = request.form.get("imdb_url", "").strip()
    sample = request.form.get("sample", "").strip()
    # A QueryError, or an ImdbError from a link, is answered by errors.request_error.
    if image is not None:
        query = upload_query(resources, image.read(), image.filename)
    elif link:
        query = imdb_query(resources, link, current_app.config)
    elif sample:
        query = sample_query(resources, sample)
    else:
        raise QueryError("send a poster as the multipart field 'image', or an IMDb title link as 'imdb_url'", 400)
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
    if not isinstance(body, dict) or not isinstance(body.get("id"), int) or isinstance(body.get("id"), bool):
        abort(400, 'send a JSON object {"id": <recommendation id>, "rating": "good" | "okay" | "bad"}')
    limit = RateLimit.from_config(current_app.config)
    reward = record_feedback(get_db(), body["id"], body.get("rating"), client_key(), limit)  # FeedbackError: errors.py
    return {"id": body["id"], "rating": RATING_OF_REWARD[reward], "reward": reward}


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

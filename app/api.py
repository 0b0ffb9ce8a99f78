"""The JSON API beside the pages (described by /api/openapi.json): recommend for a poster, rate a recommendation,
read the bandit's state; compare drafts and explain a genre as background jobs (202 and the job's URL), and read a
job. State-changing calls need the X-Requested-With header, or a bearer token when API_TOKEN is set
(security.check_api_request)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request, url_for
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import RequestEntityTooLarge

from app.dashboard import current_report
from app.db import get_db
from app.job_requests import compare_request, explain_request
from app.job_store import Job, jobs_ahead, read_file, read_job, read_posters
from app.jobs import current_job, job_settings, submit
from app.limits import poster_work
from app.poster_pipeline import (
    QueryError,
    imdb_query,
    recommend_for,
    refuse_repeated,
    refuse_text_sent_as_files,
    sample_query,
    upload_query,
)
from app.recommendations import (
    RATING_OF_REWARD,
    RateLimit,
    find_recommendation,
    is_recommendation_key,
    record_feedback,
)
from app.resources import get_resources
from app.security import client_key
from app.views import results_url
from catalog import Movie

bp = Blueprint("api", __name__, url_prefix="/api")
QUERY_FIELDS = ("image", "imdb_url", "sample")
QUERY_CHOICE = (
    "a poster as the multipart field 'image', an IMDb title link as 'imdb_url' or a catalog movie's id as 'sample'"
)
MAX_SHOWN_TYPE = 80
"""A client's content type is quoted in an error up to this many characters."""
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
    refuse_text_sent_as_files(request.files)
    refuse_repeated(request.form, request.files, QUERY_FIELDS)
    sent = [name for name in QUERY_FIELDS if name in request.files or name in request.form]
    if len(sent) != 1:
        raise QueryError(f"send exactly one of {QUERY_CHOICE}; this request sent {len(sent)}{json_sent()}", 400)
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
        "key": shown.key,
        "arm": shown.choice.arm,
        "explored": shown.choice.explored,
        "genres": shown.genres,
        **shown.evoked,
        "recommendations": [movie_json(movie) for movie in shown.movies],
        "results_url": results_url(shown.id, shown.key, _external=True),
    }
    return answer, 201


def json_sent() -> str:
    """A hint for a request that sent its fields as JSON, which Werkzeug leaves out of the form: none were seen."""
    if not request.is_json:
        return ""
    return (
        f" (its body is {request.mimetype}: this endpoint reads multipart/form-data or "
        "application/x-www-form-urlencoded fields, not JSON)"
    )


class RequestJSONProvider(DefaultJSONProvider):
    """Flask's JSON, but a body nested too deeply for Python's decoder is a bad body (ValueError: a 400 wherever a
    view reads JSON) rather than a RecursionError that would reach the crash handler (a 500)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError as error:
            raise ValueError("the JSON is nested too deeply") from error


def init_app(app: Flask) -> None:
    app.json = RequestJSONProvider(app)


def json_body() -> object:
    """The request's JSON (None when it is none), refusing with 413 a chunked body (no Content-Length) that reached
    MAX_CONTENT_LENGTH: Werkzeug stops it at the limit without saying so, and the cut JSON read as a bad one. A
    declared length is Werkzeug's to judge (app.limits refuses one above the limit before it is read)."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and limit is not None and len(request.get_data(cache=True)) >= limit:
        raise RequestEntityTooLarge()
    return request.get_json(silent=True)


@bp.post("/feedback")
def feedback() -> dict:
    body = json_body()
    recommendation_id = json_integer(body.get("id")) if isinstance(body, dict) else None
    if recommendation_id is None or not isinstance(body.get("key"), str):
        abort(
            400,
            'send a JSON object {"id": <recommendation id>, "key": <its key>, "rating": "good" | "okay" | "bad"}, the'
            f" id and key as /api/recommend answered them{json_type_missing()}",
        )
    shown = find_recommendation(get_db(), recommendation_id)
    if not is_recommendation_key(current_app.config["SECRET_KEY"], shown, body["key"]):
        abort(404, f"there is no recommendation {recommendation_id} with that key to rate")
    limit = RateLimit.from_config(current_app.config)
    reward = record_feedback(get_db(), recommendation_id, body.get("rating"), client_key(), limit)  # errors.py
    return {"id": recommendation_id, "rating": RATING_OF_REWARD[reward], "reward": reward}


def json_type_missing() -> str:
    """A hint for a body sent without a JSON content type, which get_json does not read: no JSON was seen, whatever
    the body holds."""
    if request.is_json or not request.get_data(cache=True).strip():
        return ""
    sent = request.mimetype[:MAX_SHOWN_TYPE] or "no Content-Type"
    return f", with the header Content-Type: application/json (this request's body came as {sent}, not read)"


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


@bp.post("/compare")
def compare() -> tuple[dict, int, dict[str, str]]:
    """2 to 6 drafts and the intended genres, checked here as /api/recommend checks a poster; compared by a worker."""
    posters, params = compare_request(get_resources(), request.form, request.files, current_app.config)
    return accepted(submit("compare", params, posters, client_key()))


@bp.post("/explain")
def explain() -> tuple[dict, int, dict[str, str]]:
    """A poster and a genre, checked here; the heatmap is made by a worker."""
    posters, params = explain_request(get_resources(), request.form, request.files, current_app.config)
    return accepted(submit("explain", params, posters, client_key()))


def accepted(job_id: str) -> tuple[dict, int, dict[str, str]]:
    job_url = url_for("api.job", job_id=job_id, _external=True)
    page_url = url_for("jobs.page", job_id=job_id, _external=True)
    return {"job": job_id, "job_url": job_url, "page_url": page_url}, 202, {"Location": job_url}


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> tuple[dict, int, dict[str, str]]:
    found = current_job(job_id)
    if found is None:
        abort(404, f"no job {job_id[:40]!r}: unknown, or its result has expired")
    return job_json(found), 200, {"Cache-Control": "no-store"}


def job_json(job: Job) -> dict[str, Any]:
    """A job as the API answers it: status and progress, the result when done (with the URLs of its posters, files
    and recommended movies), the error when failed."""
    answer: dict[str, Any] = {
        "job": job.id,
        "kind": job.kind,
        "status": job.status,
        "progress": round(job.progress, 3),
        "params": job.params,
    }
    if job.status == "queued":
        answer["ahead"] = jobs_ahead(get_db(), job.id)
    if job.status == "done" and job.result is not None:
        answer["result"] = public_result(job)
    if job.status == "failed":
        answer["error"] = job.error or "the job failed"
    return answer


def public_result(job: Job) -> dict[str, Any]:
    """The job's stored result with what depends on the server added: image, file and movie URLs."""
    result = copy.deepcopy(job.result or {})
    catalog = get_resources().catalog
    if job.kind == "compare":
        for draft in result.get("posters", []):
            draft["image_url"] = job_poster_url(job.id, draft)
            draft["recommendations"] = [movie_json(catalog.get(i)) for i in draft["recommendations"] if i in catalog]
        result["sheet_url"] = url_for("api.job_sheet", job_id=job.id, _external=True)
    else:
        result["poster"]["image_url"] = job_poster_url(job.id, result["poster"])
        result["heatmap_url"] = url_for("api.job_heatmap", job_id=job.id, _external=True)
    return result


def job_poster_url(job_id: str, poster: dict[str, Any]) -> str:
    if poster.get("in_catalog") and poster.get("imdb_id"):
        return url_for("main.poster", imdb_id=poster["imdb_id"], _external=True)
    return url_for("api.job_poster", job_id=job_id, position=poster["position"], _external=True)


def live_job(job_id: str) -> Job:
    job = read_job(get_db(), job_id, job_settings(current_app.config)["JOB_EXPIRE_SECONDS"])
    if job is None:
        abort(404, f"no job {job_id[:40]!r}: unknown, or its result has expired")
    return job


@bp.get("/jobs/<job_id>/sheet.png")
def job_sheet(job_id: str) -> Response:
    """A finished comparison's sheet (PNG)."""
    return job_file(job_id, "sheet")


@bp.get("/jobs/<job_id>/heatmap.png")
def job_heatmap(job_id: str) -> Response:
    """A finished explanation's heatmap (PNG)."""
    return job_file(job_id, "heatmap")


def job_file(job_id: str, name: str) -> Response:
    job = live_job(job_id)
    found = read_file(get_db(), job.id, f"{name}.png")
    if found is None:
        abort(404, f"job {job.id} has no {name}" + ("" if job.status == "done" else f": it is {job.status}"))
    content_type, data = found
    filename = f"posterbench-{'comparison' if name == 'sheet' else 'heatmap'}-{job.id}.png"
    headers = {"Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "private, max-age=3600"}
    return Response(data, mimetype=content_type, headers=headers)


@bp.get("/jobs/<job_id>/posters/<int:position>.png")
def job_poster(job_id: str, position: int) -> Response:
    """Poster `position` (from 1) of a job, as the job keeps it (PNG; a JPEG for a job kept before PNGs); catalog
    movies have none here."""
    job = live_job(job_id)
    posters = read_posters(get_db(), job.id)
    if not 1 <= position <= len(posters) or posters[position - 1].image is None:
        abort(404, f"job {job.id} keeps no poster {position}")
    image = posters[position - 1].image
    mimetype = "image/png" if image.startswith(b"\x89PNG") else "image/jpeg"
    return Response(image, mimetype=mimetype, headers={"Cache-Control": "private, max-age=3600"})


@bp.get("/openapi.json")
def openapi() -> Response:
    # as the other links the API answers: request.host_url decodes the Host header as IDNA, and a Host it cannot
    # decode (xn--zz) raised UnicodeError, a 500
    document = {**OPENAPI, "servers": [{"url": url_for("main.index", _external=True).rstrip("/")}]}
    return Response(json.dumps(document, indent=2), mimetype="application/json")

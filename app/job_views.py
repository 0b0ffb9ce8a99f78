"""Pages of the background jobs: Compare (2 to 6 drafts of a poster, and the genres the designer intends), the job page
(a progress bar that static/jobs.js keeps up to date from GET /api/jobs/<id>, then the comparison or the heatmap),
and the Explain form that the results and comparison pages carry for each poster. They submit and read the same jobs
as the JSON API (app/api.py), with the page forms' CSRF token instead of the API's header."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from app import MEGABYTE
from app.api import job_json
from app.errors import RequestError, full_sentence
from app.job_requests import MAX_DRAFTS, MIN_DRAFTS, DraftCountError, compare_request, explain_request
from app.jobs import current_job, submit
from app.resources import get_resources
from app.security import client_key
from scraper.links import LinkError, imdb_id_from_link

bp = Blueprint("jobs", __name__)


@bp.get("/compare")
def compare_page() -> str:
    return compare_form()


def compare_form(links: str = "", targets: list[str] | None = None, chosen: list[str] | None = None) -> str:
    """The page, with the links, intended genres and ticked catalog posters of a refused submission kept."""
    resources = get_resources()
    movies = resources.catalog.movies
    count = min(current_app.config["SAMPLE_COUNT"], len(movies))
    samples = [movies[round(i * (len(movies) - 1) / max(count - 1, 1))] for i in range(count)]
    return render_template(
        "compare.html",
        samples=samples,
        genres=resources.model.genres,
        targets=targets or [],
        chosen=chosen or [],
        links=links,
        least=MIN_DRAFTS,
        most=MAX_DRAFTS,
        upload_limit=f"{current_app.config['MAX_CONTENT_LENGTH'] / MEGABYTE:g} MB",
    )


@bp.post("/compare")
def compare_submit() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    form = MultiDict(request.form)
    links = request.form.get("imdb_urls", "")
    chosen = [imdb_id for imdb_id in request.form.getlist("sample") if imdb_id.strip()]
    again = " Choose your files again: a browser does not keep them." if any(request.files.getlist("image")) else ""
    for number, line in enumerate(links.splitlines(), start=1):  # the page's one box of links, one per line
        if not line.strip():
            continue
        try:
            imdb_id_from_link(line)  # say which line of the box is not a link
        except LinkError as error:
            flash(f"Line {number} of the IMDb links: {full_sentence(str(error))}{again}", "error")
            return compare_form(links, request.form.getlist("target"), chosen), 400
        form.add("imdb_url", line.strip())
    try:
        posters, params = compare_request(get_resources(), form, request.files, current_app.config)
        job_id = submit("compare", params, posters, client_key())
    except DraftCountError as error:  # said in the page's words, not the API's field names
        flash(
            f"Choose {MIN_DRAFTS} to {MAX_DRAFTS} posters to compare (files, catalog posters or IMDb links); you chose "
            f"{error.count}.{again}",
            "error",
        )
        return compare_form(links, request.form.getlist("target"), chosen), error.status
    except RequestError as error:  # QueryError, ImdbError, a client's limit
        flash(full_sentence(str(error)) + again, "error")
        return compare_form(links, request.form.getlist("target"), chosen), error.status, error.headers
    return redirect(url_for("jobs.page", job_id=job_id), 303)


@bp.post("/explain")
def explain_submit() -> Response:
    """A heatmap for a poster of a recommendation or a comparison (or a sample) and a genre; errors are answered by
    the error page, with the same status as the API's."""
    posters, params = explain_request(get_resources(), request.form, request.files, current_app.config)
    return redirect(url_for("jobs.page", job_id=submit("explain", params, posters, client_key())), 303)


@bp.get("/jobs/<job_id>")
def page(job_id: str) -> str:
    job = current_job(job_id)
    if job is None:
        abort(404, "There is no such job: its address is wrong, or its result has expired.")
    answer = job_json(job)
    return render_template(
        "job.html",
        job=job,
        ahead=answer.get("ahead", 0),
        result=answer.get("result"),
        genres=get_resources().model.genres,
        status_url=url_for("api.job", job_id=job.id),
    )

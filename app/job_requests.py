"""What a request to compare drafts or to explain a genre sends, checked in the web request before any job is saved:
every poster is read exactly as POST /api/recommend reads one (the same size limit, formats, decoding guards, IMDb
fetcher, per-client limits, and the same 4xx), then kept re-encoded (app.poster_pipeline.job_image), so that a job
worker never sees an upload as it was sent and a bad input is answered at once, never as a failed job. Shared by the
JSON API and the pages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from werkzeug.datastructures import FileStorage, MultiDict

from app.db import get_db
from app.imdb import link_deadline
from app.job_store import JobPoster, read_job, read_posters
from app.limits import poster_work
from app.poster_pipeline import (
    QueryError,
    imdb_poster,
    job_image,
    refuse_repeated,
    refuse_text_sent_as_files,
    sample_poster,
    upload_poster,
)
from app.recommendations import find_recommendation, is_recommendation_key
from app.resources import Resources
from model.explain import DEFAULT_GRID, genre_index

MIN_DRAFTS = 2
MAX_DRAFTS = 6
MAX_GRID = 12
"""The finest heatmap grid a request may ask for: 12 x 12 cells, 145 forward passes (the default, 5 x 5, takes 26)."""
EXPLAIN_FIELDS = ("image", "sample", "imdb_url", "recommendation", "job_poster")
EXPLAIN_CHOICE = (
    "a poster as the multipart field 'image', a catalog movie's id as 'sample', an IMDb title link as 'imdb_url', a "
    "recommendation's id as 'recommendation' (with its key as 'recommendation_key'), or a poster of a comparison or "
    "heatmap as 'job_poster' (JOB_ID/POSITION)"
)


def genre_names(resources: Resources, names: list[str], what: str) -> list[str]:
    """`names` as the model spells its genres, in order, each once; 400 naming the genres for an unknown one."""
    genres = list(resources.model.genres)
    found: list[str] = []
    for name in names:
        try:
            genre = genres[genre_index(genres, name.strip())]
        except ValueError:
            raise QueryError(f"unknown {what} {name.strip()[:40]!r}: one of {', '.join(genres)}", 400) from None
        if genre not in found:
            found.append(genre)
    return found


def sent_files(files: MultiDict[str, FileStorage], name: str) -> list[tuple[str | None, bytes]]:
    """(file name, bytes) of the files sent as `name`, without the empty parts that a form's unused file input sends
    (no name, no bytes). The body is already read and bounded by MAX_CONTENT_LENGTH."""
    sent = [(file.filename, file.read()) for file in files.getlist(name)]
    return [(filename, data) for filename, data in sent if filename or data]


class DraftCountError(QueryError):
    """A comparison of fewer than MIN_DRAFTS or more than MAX_DRAFTS posters; `count` is how many were sent (the
    page says it in its own words)."""

    def __init__(self, count: int) -> None:
        super().__init__(
            f"send {MIN_DRAFTS} to {MAX_DRAFTS} posters to compare (files 'image', catalog ids 'sample', IMDb links "
            f"'imdb_url'); this request sent {count}",
            400,
        )
        self.count = count


def compare_request(
    resources: Resources, form: MultiDict[str, str], files: MultiDict[str, FileStorage], config: Mapping[str, Any]
) -> tuple[list[JobPoster], dict[str, Any]]:
    """The drafts (2 to 6: files 'image', catalog ids 'sample', IMDb links 'imdb_url', in that order) and the intended
    genres ('target', optional) of a comparison; QueryError (or ImdbError) with the status /api/recommend gives."""
    if "image" in form:
        raise QueryError("send each poster as a file: the multipart field 'image' with a filename", 400)
    refuse_text_sent_as_files(files)
    uploads = sent_files(files, "image")
    samples = [value.strip() for value in form.getlist("sample") if value.strip()]
    links = [value.strip() for value in form.getlist("imdb_url") if value.strip()]
    count = len(uploads) + len(samples) + len(links)
    if not MIN_DRAFTS <= count <= MAX_DRAFTS:
        raise DraftCountError(count)
    targets = genre_names(resources, [value for value in form.getlist("target") if value.strip()], "genre")
    posters = []
    for filename, data in uploads:
        with poster_work("upload"):
            posters.append(upload_poster(resources, data, filename))
    posters.extend(sample_poster(resources, imdb_id) for imdb_id in samples)
    ends_at = link_deadline(float(config["IMDB_TIMEOUT_SECONDS"]))  # one deadline for all the links, as for one
    for link in links:
        with poster_work("imdb"):
            posters.append(imdb_poster(resources, link, config, ends_at))
    return posters, {"targets": targets}


def explain_request(
    resources: Resources, form: MultiDict[str, str], files: MultiDict[str, FileStorage], config: Mapping[str, Any]
) -> tuple[list[JobPoster], dict[str, Any]]:
    """The poster (exactly one of EXPLAIN_FIELDS), the genre to explain ('genre') and the grid ('grid', optional,
    2 to MAX_GRID cells a side) of a heatmap; QueryError (or ImdbError) with the status /api/recommend gives."""
    refuse_text_sent_as_files(files)
    refuse_repeated(form, files, (*EXPLAIN_FIELDS, "recommendation_key", "genre", "grid"))
    sent = [name for name in EXPLAIN_FIELDS if name in files or name in form]
    if len(sent) != 1:
        raise QueryError(f"send exactly one of {EXPLAIN_CHOICE}; this request sent {len(sent)}", 400)
    genre_sent = form.get("genre", "").strip()
    if not genre_sent:
        raise QueryError(f"send the genre to explain as 'genre': one of {', '.join(resources.model.genres)}", 400)
    genre = genre_names(resources, [genre_sent], "genre")[0]
    grid = whole_number(form.get("grid", ""), "grid") if form.get("grid", "").strip() else DEFAULT_GRID
    if not 2 <= grid <= MAX_GRID:
        raise QueryError(f"grid must be 2 to {MAX_GRID} cells a side, not {grid}", 400)
    field = sent[0]
    if field == "image":
        image = files.get("image")
        if image is None:
            raise QueryError("send the poster as a file: the multipart field 'image' with a filename", 400)
        with poster_work("upload"):
            poster = upload_poster(resources, image.read(), image.filename)
    elif field == "sample":
        poster = sample_poster(resources, form["sample"].strip())
    elif field == "imdb_url":
        with poster_work("imdb"):
            poster = imdb_poster(resources, form["imdb_url"].strip(), config)
    elif field == "recommendation":
        recommendation_id = whole_number(form["recommendation"], "recommendation")
        if recommendation_id < 1:
            raise QueryError("recommendation must be a recommendation's id, 1 or more", 400)
        key = form.get("recommendation_key")
        poster = recommended_poster(resources, recommendation_id, key, config["SECRET_KEY"])
    else:
        poster = compared_poster(form["job_poster"].strip(), float(config["JOB_EXPIRE_SECONDS"]))
    return [poster], {"genre": genre, "grid": grid}


def whole_number(text: str, name: str) -> int:
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise QueryError(f"{name} must be a whole number, not {text[:40]!r}", 400)
    return int(text)


def recommended_poster(resources: Resources, recommendation_id: int, key: object, secret: str) -> JobPoster:
    """The query poster of a recommendation already shown, named with its key (app.recommendations
    .recommendation_key): its kept thumbnail, or its catalog movie. 404 alike for an unknown one and a wrong key."""
    if key is None:
        raise QueryError(
            "send the recommendation's key as 'recommendation_key' (its results page's address has it)", 400
        )
    shown = find_recommendation(get_db(), recommendation_id)
    if not is_recommendation_key(secret, shown, key):
        raise QueryError(f"no recommendation {recommendation_id} with that key", 404)
    if shown["query_image"] is not None:
        label = shown["query_imdb_id"] or "the poster you uploaded"
        image = job_image(
            resources, bytes(shown["query_image"]), f"the poster of recommendation {recommendation_id}", 500
        )
        return JobPoster(shown["query_kind"], label, shown["query_imdb_id"], image)
    if shown["query_imdb_id"] in resources.catalog:
        return sample_poster(resources, shown["query_imdb_id"], kind=shown["query_kind"])
    raise QueryError(f"recommendation {recommendation_id} kept no poster to explain", 404)


def compared_poster(reference: str, expire_seconds: float) -> JobPoster:
    """Poster POSITION (from 1) of the comparison or heatmap JOB_ID ('JOB_ID/POSITION'), as that job keeps it: a
    heatmap's page asks for another genre's heatmap of its one poster that way."""
    job_id, _, position = reference.partition("/")
    database = get_db()
    job = read_job(database, job_id, expire_seconds)
    if job is None or job.kind not in ("compare", "explain"):
        raise QueryError(f"no comparison or heatmap {job_id[:40]!r} (unknown, or its result has expired)", 404)
    posters = read_posters(database, job.id)
    number = whole_number(position, "the position in job_poster (JOB_ID/POSITION)")
    if not 1 <= number <= len(posters):
        raise QueryError(f"the job {job.id} has posters 1 to {len(posters)}, not {number}", 404)
    return posters[number - 1]

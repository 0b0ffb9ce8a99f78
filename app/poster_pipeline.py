"""The poster pipeline of a request, from a poster (an upload, a catalog sample or an IMDb title link) to a logged
recommendation: genre probabilities, the decade, year and rating the poster evokes, whether it looks like a poster at
all, the bandit's distance and the five recommended catalog movies. Shared by the pages and the JSON API."""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from werkzeug.datastructures import MultiDict

from app.bandit_state import choose, current_policy
from app.db import Database
from app.errors import RequestError
from app.imdb import ImdbPoster, fetch_imdb_poster
from app.job_store import JobPoster
from app.recommendations import Shown, recommendation_key, record_recommendation
from app.resources import Resources
from bandit import Choice
from catalog import Movie
from model.artifacts import RATING_INTERVAL_SHARE, Description, Prediction
from model.images import PosterImageError, decode_poster, poster_array
from model.poster_detector import PosterDetector
from recommend import candidate_decades, decade_mask, recommend

THUMBNAIL_SIZE = (182, 268)
THUMBNAIL_QUALITY = 95
"""The kept thumbnail's JPEG quality, its colours at full resolution: a heatmap of a recommendation's upload reads the
thumbnail, whose genres then stay closer to the results page's than at 85 with halved colour resolution, at about
twice the bytes (`posterbench bench kept_images`, bench/README.md)."""
UPLOAD_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
SHOWN_NAME_LENGTH = 60


class QueryError(RequestError):
    """A poster we cannot recommend for; `status` is the HTTP status that says why."""


YEAR_DECADE_MASS = 0.9
"""The shown year stays within the most probable decades that together hold this much of the decade probability."""
TEXT_FIELDS = ("sample", "imdb_url", "recommendation", "recommendation_key", "job_poster", "target", "genre", "grid")
"""The form fields the poster routes read as text: one sent as a file part is refused (refuse_text_sent_as_files)."""


def refuse_text_sent_as_files(files: Mapping[str, object]) -> None:
    """QueryError (400) naming a text field that came as a file part, which a view would otherwise not see at all
    (Werkzeug keeps file parts apart), or see missing with a message about something else."""
    for name in TEXT_FIELDS:
        if name in files:
            raise QueryError(f"send '{name}' as a form field, not as a file", 400)


def refuse_repeated(form: MultiDict, files: MultiDict, names: Sequence[str]) -> None:
    """QueryError (400) naming a field of `names` sent more than once (as fields, files or both): only the first
    was read, silently, where the request asks for exactly one."""
    for name in names:
        times = len(form.getlist(name)) + len(files.getlist(name))
        if times > 1:
            raise QueryError(f"send '{name}' once; this request sent it {times} times", 400)


@dataclass(frozen=True)
class Query:
    kind: str  # upload, sample or imdb
    imdb_id: str | None
    thumbnail: bytes | None  # a JPEG of a poster that is not in the catalog, kept to show it again
    prediction: Prediction  # the model's, for this one poster
    catalog_row: int | None  # the query's own catalog row, never recommended to itself


@dataclass(frozen=True)
class Recommendation:
    id: int
    choice: Choice
    genres: dict[str, float]
    evoked: dict[str, object]  # see evoked_json
    movies: list[Movie]
    key: str  # what its addresses carry and voting needs (app.recommendations.recommendation_key)


def evoked_json(prediction: Prediction, description: Description, detector: PosterDetector) -> dict[str, object]:
    """What one poster evokes besides its genres, as JSON: the probability of each decade, the expected year, the
    expected IMDb rating with the range that held RATING_INTERVAL_SHARE of held-out movies' ratings, and whether it
    looks like a movie poster (its score is the share of real held-out posters that look less like one).

    The year and rating heads are linear, so a picture unlike the catalog's posters can take them far out (a year 989,
    a rating 14): the year is kept within the decades that hold YEAR_DECADE_MASS of the decade probabilities, which
    the page shows beside it, and the rating within 1 to 10 before its range is added."""
    low, high = description.rating_interval
    expected = min(max(float(prediction.rating[0]), 1.0), 10.0)
    evoked = np.asarray(description.decades)[candidate_decades(prediction.decades[0], YEAR_DECADE_MASS)]
    year = min(max(float(prediction.year[0]), float(evoked.min())), float(evoked.max()) + 9)
    score = float(prediction.poster_score[0])
    return {
        "decade": {
            f"{decade}s": round(float(p), 4)
            for decade, p in zip(description.decades, prediction.decades[0], strict=True)
        },
        "year": round(year, 1),
        "rating": {
            "expected": round(expected, 2),
            "low": round(min(max(expected + low, 1.0), 10.0), 2),
            "high": round(min(max(expected + high, 1.0), 10.0), 2),
            "coverage": RATING_INTERVAL_SHARE,
        },
        "looks_like_poster": {"value": bool(detector.passes(score)), "score": round(score, 4)},
    }


def sample_query(resources: Resources, imdb_id: str, kind: str = "sample") -> Query:
    require_catalog_movie(resources, imdb_id)
    row = resources.catalog.position(imdb_id)
    return Query(kind, imdb_id, None, resources.index.prediction([row]), row)


def upload_query(resources: Resources, data: bytes, filename: str | None) -> Query:
    name = uploaded_name(data, filename)
    return image_query(resources, data, "upload", None, f"We could not read {name}")


def imdb_query(resources: Resources, link: str, config: Mapping[str, object]) -> Query:
    """A catalog movie's own poster and vectors when the link names one; else its poster fetched from IMDb."""
    poster = fetch_linked_poster(resources, link, config)
    if poster.image is None:
        return sample_query(resources, poster.imdb_id, kind="imdb")
    return image_query(resources, poster.image, "imdb", poster.imdb_id, f"IMDb's poster for {poster.imdb_id}")


def image_query(resources: Resources, data: bytes, kind: str, imdb_id: str | None, what: str) -> Query:
    """The poster decoded for the network exactly as training and indexing decode one (model.images.load_poster: a
    large JPEG at the reduced scale its input size allows), so that an upload of a catalog poster is the vector the
    index holds; decoded a second time for the thumbnail only when that decoding was smaller than it."""
    size = resources.model.input_size
    status = 400 if kind == "upload" else 502
    image = decode_query_image(data, size, what, status)
    prediction = resources.model.predict(poster_array(image, size)[np.newaxis])
    if image.width < THUMBNAIL_SIZE[0] and image.height < THUMBNAIL_SIZE[1]:
        image = decode_query_image(data, THUMBNAIL_SIZE, what, status)
    return Query(kind, imdb_id, thumbnail(image), prediction, None)


def recommend_for(
    database: Database, resources: Resources, config: Mapping[str, object], query: Query
) -> Recommendation:
    """Genres, the bandit's distance and the five recommended movies for `query`, logged; returns what was shown."""
    features = query.prediction.features
    probabilities = resources.genre_probabilities(features, query.prediction.genres)[0]
    policy_name = str(config["BANDIT_POLICY"])
    choice = choose(current_policy(database, policy_name, config["BANDIT_PARAMS"]))
    rows = recommend(
        resources.search,
        resources.labels,
        features[0],
        probabilities,
        choice.arm,
        exclude_rows=[] if query.catalog_row is None else [query.catalog_row],
        era=decade_mask(query.prediction.decades[0], resources.model.description.decades, resources.decades),
        own_first=query.catalog_row is None,  # a sample is its own catalog movie, left out: no copy of it to look for
    )
    if not rows:  # a catalog of one movie, and the query is that movie: nothing to show, nothing to rate
        raise QueryError("the catalog holds no other movie to recommend for this poster", 422)
    genres = {genre: round(float(p), 4) for genre, p in zip(resources.model.genres, probabilities, strict=True)}
    model = resources.model
    evoked = evoked_json(query.prediction, model.description, model.detector)
    movies = [resources.catalog.movies[row] for row in rows]
    shown = Shown(query.kind, query.imdb_id, query.thumbnail, genres, evoked, [movie.imdb_id for movie in movies])
    recommendation_id = record_recommendation(database, policy_name, choice, shown)
    key = recommendation_key(str(config["SECRET_KEY"]), recommendation_id, shown.key_salt)
    return Recommendation(recommendation_id, choice, genres, evoked, movies, key)


def require_catalog_movie(resources: Resources, imdb_id: str) -> None:
    if not imdb_id:
        raise QueryError("send a catalog movie's IMDb id as 'sample' (tt and 7 or 8 digits); this one is empty", 400)
    if imdb_id not in resources.catalog:
        # a long id is cut, and one with a control or format character (a NUL, a right-to-left override) is quoted
        # with those escaped, as Python writes them
        shown = (
            imdb_id if len(imdb_id) <= 40 and imdb_id.isprintable() else repr(imdb_id[:40] + "…" * (len(imdb_id) > 40))
        )
        raise QueryError(f"no movie {shown} in the catalog", 404)


def uploaded_name(data: bytes, filename: str | None) -> str:
    """The upload's name as shown (shown_name); an empty upload is refused (400)."""
    name = shown_name(filename)
    if not data:
        raise QueryError(f"{name} is empty: choose a poster image (JPEG, PNG, WebP or GIF).", 400)
    return name


def fetch_linked_poster(
    resources: Resources, link: str, config: Mapping[str, object], ends_at: float | None = None
) -> ImdbPoster:
    """The poster an IMDb title link names, fetched under the app's settings (app.imdb.fetch_imdb_poster: raises
    ImdbError, a RequestError like QueryError) by `ends_at` (default: the link's own deadline); no image when the
    catalog has the movie."""
    return fetch_imdb_poster(
        link,
        overrides=config.get("IMDB_OVERRIDES") or {},
        timeout=float(config["IMDB_TIMEOUT_SECONDS"]),
        max_bytes=int(config["MAX_CONTENT_LENGTH"]),
        known=resources.catalog,
        ends_at=ends_at,
    )


def decode_query_image(data: bytes, at_least: tuple[int, int], what: str, status: int) -> Image.Image:
    """A poster's bytes decoded (model.images.decode_poster, the upload formats only), or QueryError(`status`). A 4xx
    refuses the client's own upload: `what` ("We could not read poster.jpg") opens the message. A 5xx refuses bytes
    the client never sent (IMDb's poster, 502; a kept thumbnail, 500): `what` ("IMDb's poster for tt0000003") is
    what the message calls them, not "the uploaded file"."""
    own_upload = status < 500
    try:
        return decode_poster(data, at_least, formats=UPLOAD_FORMATS, name=None if own_upload else what)
    except PosterImageError as error:
        raise QueryError(f"{what}: {error}" if own_upload else str(error), status) from None


def shrunk_size(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """`size` (width, height) scaled to fit `box`, never enlarged, and rounded so that it is never more elongated than
    `size`: the app decodes its own stored images with the upload checks, and rounding the short side down took a
    poster at the aspect limit past it (1000 x 200 to 182 x 36)."""
    width, height = size
    scale = min(1.0, box[0] / width, box[1] / height)
    new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
    if width >= height:
        return max(1, min(new_width, new_height * width // height)), new_height
    return new_width, max(1, min(new_height, new_width * height // width))


def thumbnail(image: Image.Image, quality: int = THUMBNAIL_QUALITY, full_colour: bool = True) -> bytes:
    """A small JPEG of a decoded RGB poster (never enlarged), kept with the recommendation to show it again; resized
    straight from `image`, which is left as it is, without a copy of it. `full_colour`: no halved colour resolution
    (JPEG's 4:2:0 subsampling)."""
    size = shrunk_size(image.size, THUMBNAIL_SIZE)
    small = image if size == image.size else image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=quality, subsampling=0 if full_colour else 2)
    return buffer.getvalue()


def shown_name(filename: str | None) -> str:
    """The client's file name, only ever shown (escaped), never used as a path; shortened, and without any character
    of Unicode's "other" categories: control (a NUL, which PostgreSQL's text refuses), format (a right-to-left
    override), surrogate, private-use and unassigned."""
    name = "".join(character for character in filename or "" if unicodedata.category(character)[0] != "C")
    name = name.strip() or "the file"
    return name if len(name) <= SHOWN_NAME_LENGTH else name[: SHOWN_NAME_LENGTH - 1] + "…"


# ---------------------------------------------------------------- posters for background jobs (app/jobs.py)

JOB_IMAGE_SIDE = 512
"""The largest side of a job's kept poster (a catalog poster's, or an upload's in the rare case its decoding for the
network is larger)."""


def upload_poster(resources: Resources, data: bytes, filename: str | None) -> JobPoster:
    """An uploaded poster for a job, checked exactly as upload_query checks one (the same 400s)."""
    name = uploaded_name(data, filename)
    return JobPoster("upload", name, None, job_image(resources, data, f"We could not read {name}", 400))


def sample_poster(resources: Resources, imdb_id: str, kind: str = "sample") -> JobPoster:
    """A catalog movie for a job (404 when there is none, as sample_query); it keeps its own poster and vectors."""
    require_catalog_movie(resources, imdb_id)
    movie = resources.catalog.get(imdb_id)
    label = f"{movie.title} ({movie.year})" if movie.year else movie.title
    return JobPoster(kind, label, imdb_id, None)


def imdb_poster(
    resources: Resources, link: str, config: Mapping[str, object], ends_at: float | None = None
) -> JobPoster:
    """An IMDb title link's poster for a job, fetched and checked as imdb_query does (the same 4xx and 5xx), by
    `ends_at` (a comparison's links share one deadline)."""
    poster = fetch_linked_poster(resources, link, config, ends_at)
    if poster.image is None:
        return sample_poster(resources, poster.imdb_id, kind="imdb")
    what = f"IMDb's poster for {poster.imdb_id}"
    return JobPoster("imdb", poster.imdb_id, poster.imdb_id, job_image(resources, poster.image, what, 502))


def job_image(resources: Resources, data: bytes, what: str, status: int) -> bytes:
    """`data` decoded exactly as image_query decodes a poster for the network (refused with `status`), kept as a PNG:
    the worker reads back the very pixels the web request's network saw, so a draft's genres on a comparison or a
    heatmap are those of /recommend for the same file (`posterbench bench kept_images` checks it)."""
    image = decode_query_image(data, resources.model.input_size, what, status)
    size = shrunk_size(image.size, (JOB_IMAGE_SIDE, JOB_IMAGE_SIDE))
    image = image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()

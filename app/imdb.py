"""A pasted IMDb title link to its poster: the link is checked, the title page read with the scraper's reader and
the poster downloaded from IMDb's image hosts only, through scraper.fetch's guarded downloader. The page and the
poster share one deadline (twice the IMDb time-out), which several links of one request may share too."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Container, Mapping
from dataclasses import dataclass

from app.errors import RequestError
from scraper.fetch import FetchError, SafeFetcher
from scraper.links import IMDB_IMAGE_HOSTS, IMDB_PAGE_HOSTS, LinkError, imdb_id_from_link
from scraper.title_page import TitlePageError, read_title_page

PAGE_MAX_BYTES = 8 * 1024 * 1024  # IMDb's title pages are 1-2 MB
POSTER_WIDTH = 500  # wide enough for the model and the thumbnail, a fraction of the original's bytes
REFUSALS = frozenset({202, 403, 405, 429})  # IMDb's bot wall (AWS WAF) answers 202 or 405, or a plain 403
UPLOAD_INSTEAD = "Save the poster from IMDb and upload the image instead."
USER_AGENT = "PosterBench/0.1 (+poster similarity; one title page and one poster per request)"
DEADLINE_TIMEOUTS = 2
"""A link's page and poster, together, get this many IMDb time-outs (each read may take one)."""

log = logging.getLogger(__name__)


def link_deadline(timeout: float) -> float:
    """The time.monotonic() by which a link (or several links of one request) must have their posters."""
    return time.monotonic() + DEADLINE_TIMEOUTS * timeout


class ImdbError(RequestError):
    """Why a link gave no poster, with the HTTP status to answer: 400 not an IMDb title link, 404 no such title,
    422 a title without a poster, 502 IMDb refused or answered something unusable, 504 IMDb too slow."""


@dataclass(frozen=True)
class ImdbPoster:
    imdb_id: str
    image: bytes | None  # None when the title is in the catalog: its own poster is used, nothing is fetched


def fetch_imdb_poster(
    link: str,
    *,
    overrides: Mapping[str, str],
    timeout: float,
    max_bytes: int,
    known: Container[str] = (),
    ends_at: float | None = None,
) -> ImdbPoster:
    """The poster `link` names; its page and poster are fetched by `ends_at` (time.monotonic(); default: the link's
    own deadline, `link_deadline`), else ImdbError 504."""
    try:
        imdb_id = imdb_id_from_link(link)
    except LinkError as error:
        raise ImdbError(str(error), 400) from None
    if imdb_id in known:
        return ImdbPoster(imdb_id, None)
    ends_at = link_deadline(timeout) if ends_at is None else ends_at
    fetching = "page"
    try:
        pages = fetcher(IMDB_PAGE_HOSTS, overrides, timeout, PAGE_MAX_BYTES, seconds_left(ends_at, imdb_id, timeout))
        poster_url = find_poster_url(imdb_id, pages)
        fetching = "poster"
        images = fetcher(IMDB_IMAGE_HOSTS, overrides, timeout, max_bytes, seconds_left(ends_at, imdb_id, timeout))
        image = images.get(smaller(poster_url), accept="image/*")
    except FetchError as error:
        raise fetch_failure(imdb_id, error, timeout, fetching, ends_at) from None
    if image.status != 200:
        raise ImdbError(
            f"IMDb's image server answered {image.status} for the poster of {imdb_id}. {UPLOAD_INSTEAD}", 502
        )
    return ImdbPoster(imdb_id, image.body)


def find_poster_url(imdb_id: str, pages: SafeFetcher) -> str:
    page = pages.get(f"https://www.imdb.com/title/{imdb_id}/", accept="text/html")
    if page.status in (404, 410):
        raise ImdbError(f"IMDb has no title {imdb_id}: check the link.", 404)
    if page.status in REFUSALS:
        raise ImdbError(f"IMDb refused to show us {imdb_id} (it turns automated visits away). {UPLOAD_INSTEAD}", 502)
    if page.status != 200:
        raise ImdbError(f"IMDb answered {page.status} for {imdb_id}. {UPLOAD_INSTEAD}", 502)
    try:
        title = read_title_page(page.body.decode("utf-8", errors="replace"), imdb_id)
    except TitlePageError as error:
        raise ImdbError(f"We could not read IMDb's page for {imdb_id} ({error}). {UPLOAD_INSTEAD}", 502) from None
    except Exception as error:  # a page the reader has not met yet: it came from the network, so it is IMDb's fault
        log.exception("reading IMDb's page for %s failed", imdb_id)
        message = f"We could not read IMDb's page for {imdb_id} ({type(error).__name__}). {UPLOAD_INSTEAD}"
        raise ImdbError(message, 502) from None
    if title.poster_url is None:
        name = f"{title.title} ({imdb_id})" if title.title else imdb_id
        raise ImdbError(f"IMDb has no poster for {name}. Upload a poster image instead.", 422)
    return title.poster_url


def seconds_left(ends_at: float, imdb_id: str, timeout: float) -> float:
    left = ends_at - time.monotonic()
    if left <= 0:
        raise deadline_failure(imdb_id, timeout)
    return left


def fetcher(
    hosts: frozenset[str], overrides: Mapping[str, str], timeout: float, max_bytes: int, deadline: float
) -> SafeFetcher:
    return SafeFetcher(
        hosts,
        connect_timeout=min(timeout, 5.0),
        read_timeout=timeout,
        deadline=deadline,
        max_bytes=max_bytes,
        overrides=overrides,
        user_agent=USER_AGENT,
    )


def smaller(poster_url: str) -> str:
    """IMDb's poster URL resized to POSTER_WIDTH pixels: its `._V1_...` suffix names the size."""
    return re.sub(r"\._V1_.*$", f"._V1_QL75_UX{POSTER_WIDTH}_.jpg", poster_url)


def fetch_failure(imdb_id: str, error: FetchError, timeout: float, fetching: str, ends_at: float) -> ImdbError:
    """The ImdbError for a download of the `fetching` ("page" or "poster") of `imdb_id` that failed. A time-out names
    the limit that fired: the link's deadline once it has passed (a read cut short by the deadline ends at or after
    it), else the fetcher's own per-read (connect, look-up) time-out, whose message names its seconds."""
    if error.kind == "timeout":
        if time.monotonic() >= ends_at:
            return deadline_failure(imdb_id, timeout)
        message = (
            f"IMDb did not send the {fetching} of {imdb_id} in time: {error.message.rstrip('.')}. {UPLOAD_INSTEAD}"
        )
        return ImdbError(message, 504)
    if error.kind in ("dns", "connection"):
        return ImdbError(f"We could not reach IMDb ({str(error).rstrip('.')}). {UPLOAD_INSTEAD}", 502)
    return ImdbError(f"We did not download the poster of {imdb_id}: {error} {UPLOAD_INSTEAD}", 502)


def deadline_failure(imdb_id: str, timeout: float) -> ImdbError:
    """504: the link's deadline (link_deadline: DEADLINE_TIMEOUTS IMDb time-outs) passed before its page and poster
    came."""
    limit = DEADLINE_TIMEOUTS * timeout
    message = (
        f"IMDb did not send the page and poster of {imdb_id} within {limit:g} seconds (the time a request gives "
        f"IMDb, shared by its links). {UPLOAD_INSTEAD}"
    )
    return ImdbError(message, 504)

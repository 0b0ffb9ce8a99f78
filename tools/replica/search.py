"""The replica's advanced title search: its page templates, queries and cursors, the pages themselves, the bot
wall's answers and the failure modes, and the `_V1_` poster images."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from PIL import Image

from catalog import Movie
from tools.replica.pages import _NOT_FOUND_PAGE, _script_json

if TYPE_CHECKING:
    from tools.replica.server import ReplicaServer

WALL_KINDS: tuple[str, ...] = ("challenge", "captcha", "forbidden")
"""How the replica's bot wall answers: challenge: AWS WAF's 202 with an empty body and `x-amzn-waf-action:
challenge`; captcha: 405 with `x-amzn-waf-action: captcha` and a CAPTCHA page; forbidden: CloudFront's 403 page."""
DEFAULT_RESULT_CAP = 10_000
DEFAULT_PAGE_SIZE = 50
MAX_COUNT = 250
"""The largest `count` (search page) or `first` (GraphQL) honoured."""
SEE_MORE_SCRIPT_PATH = "/_next/static/chunks/see-more.js"
_SEE_MORE_SCRIPT = Path(__file__).with_name("static") / "see_more.js"
_SEARCH_PATH = re.compile(r"/search/title/?")
_V1_IMAGE = re.compile(r"(?P<key>[A-Za-z0-9]+)@{0,2}\._V1_(?P<modifiers>[A-Za-z0-9_,]*)\.jpg")
_PAGE_ROUTES = frozenset({"search", "graphql", "title"})
_POSTER_SIZES: tuple[tuple[int, str], ...] = (
    (140, "._V1_QL75_UX140_CR0,1,140,207_.jpg"),
    (210, "._V1_QL75_UX210_CR0,2,210,311_.jpg"),
    (280, "._V1_QL75_UX280_CR0,3,280,414_.jpg"),
)
"""The widths of a search result's srcset, and the `_V1_` suffix IMDb uses for each."""
_CERTIFICATES = ("G", "PG", "PG-13", "R", "Not Rated", "Approved")
_ACTORS = ("Jane Placeholder", "John Example", "Ada Lovelace-Smith", "Omar Fixture", "Mei Mock", "Rosa Stub")
_MEDIA_CLASSES = (
    "ipc-media ipc-media--poster-27x40 ipc-image-media-ratio--poster-27x40 ipc-media--media-radius ipc-media--base "
    "ipc-media--poster-s ipc-poster__poster-image ipc-media__img"
)
_MOVIE_ICON = (
    '<svg class="ipc-icon ipc-icon--movie ipc-media__icon" xmlns="http://www.w3.org/2000/svg" width="24" height="24" '
    'viewBox="0 0 24 24" fill="currentColor" role="presentation"><path d="M18 4v1h-2V4c0-.55-.45-1-1-1H9c-.55 0-1 '
    ".45-1 1v1H6V4c0-.55-.45-1-1-1s-1 .45-1 1v16c0 .55.45 1 1 1s1-.45 1-1v-1h2v1c0 .55.45 1 1 1h6c.55 0 1-.45 1-1v-1h2"
    'v1c0 .55.45 1 1 1s1-.45 1-1V4c0-.55-.45-1-1-1s-1 .45-1 1z"></path></svg>'
)
_TEMPLATE_TEXTS = {
    "item": (
        '<li class="ipc-metadata-list-summary-item"><div class="ipc-metadata-list-summary-item__c">'
        '<div class="ipc-metadata-list-summary-item__tc"><span class="ipc-metadata-list-summary-item__t '
        'ipc-btn--not-interactable" aria-disabled="false"></span><div class="sc-995e3276-1 ezXmtt dli-parent">'
        '<div class="sc-995e3276-0 cJGaoe"><div class="sc-e2db8066-0 eUSXjI dli-poster-container">'
        '<div class="ipc-poster ipc-poster--base ipc-poster--media-radius ipc-poster--wl-true '
        'ipc-poster--dynamic-width ipc-sub-grid-item ipc-sub-grid-item--span-2" role="group">{poster}'
        '<div data-testid="poster-watchlist-ribbon-add" class="ipc-watchlist-ribbon ipc-focusable '
        "ipc-watchlist-ribbon--m ipc-watchlist-ribbon--base "
        'ipc-watchlist-ribbon--onImage ipc-poster__watchlist-ribbon" aria-label="Add to Watchlist" role="button" '
        'tabindex="0"></div><a class="ipc-lockup-overlay ipc-focusable" href="/title/{id}/?ref_=sr_i_{n}" '
        'aria-label="View title page for {title}"><div class="ipc-lockup-overlay__screen"></div></a></div></div>'
        '<div class="sc-b189961a-0 iqHBGn"><div class="ipc-title ipc-title--base ipc-title--title '
        'ipc-title-link-no-icon ipc-title--on-textPrimary sc-b189961a-9 bnSrml dli-title">'
        '<a href="/title/{id}/?ref_=sr_t_{n}" class="ipc-title-link-wrapper" tabindex="0">'
        '<h3 class="ipc-title__text">{n}. {title}</h3></a></div>'
        '<div class="sc-b189961a-7 btCcOY dli-title-metadata">{metadata}</div><span class="sc-b189961a-1 kcRAsW">'
        '<div class="sc-e2dbc1a3-0 ajrIH sc-b189961a-2 fkPBP dli-ratings-container" '
        'data-testid="ratingGroup--container">{rating}<button aria-label="Rate {title}" class="ipc-rate-button '
        'sc-e2dbc1a3-1 HRgde ratingGroup--user-rating ipc-rate-button--unrated ipc-rate-button--base" '
        'data-testid="rate-button"><span class="ipc-rating-star ipc-rating-star--base ipc-rating-star--rate">'
        '<span class="ipc-rating-star--rate">Rate</span></span></button></div></span></div>'
        '<div class="sc-995e3276-2 hqHdtT dli-post-element">'
        '<button data-testid="title-summary-prompt-button-info-icon" class="ipc-icon-button li-info-icon '
        'ipc-icon-button--base ipc-icon-button--onAccent2" title="See more '
        'information about {title}" aria-label="See more information about {title}"></button></div></div>'
        '<div class="sc-9d52d06f-1 bDNbpf"><div class="ipc-html-content ipc-html-content--base sc-9d52d06f-0 bVMrTF '
        'title-description-plot-container" role="presentation"><div class="ipc-html-content-inner-div" '
        'role="presentation">{plot}</div></div></div></div></div></div></li>'
    ),
    "metadata": '<span class="sc-b189961a-8 hCbzGp dli-title-metadata-item">{text}</span>',
    "rating": (
        '<span aria-label="IMDb rating: {rating}" class="ipc-rating-star ipc-rating-star--base ipc-rating-star--imdb '
        'ratingGroup--imdb-rating" data-testid="ratingGroup--imdb-rating"><svg class="ipc-icon ipc-icon--star-inline" '
        'width="24" height="24" viewBox="0 0 24 24" role="presentation"></svg><span class="ipc-rating-star--rating">'
        '{rating}</span><span class="ipc-rating-star--voteCount">&nbsp;(<!-- -->{votes}<!-- -->)</span></span>'
    ),
    "poster_image": (
        f'<div class="{_MEDIA_CLASSES}" style="width:100%"><img alt="{{alt}}" class="ipc-image" loading="lazy" '
        'src="{src}" srcset="{srcset}" sizes="50vw, (min-width: 480px) 34vw, (min-width: 600px) 26vw, '
        '(min-width: 1024px) 16vw, (min-width: 1280px) 16vw" width="140"></div>'
    ),
    "poster_none": f'<div class="{_MEDIA_CLASSES}" style="width:100%">{_MOVIE_ICON}</div>',
}
SEARCH_TEMPLATES: Mapping[str, str] = MappingProxyType(_TEMPLATE_TEXTS)
"""The markup of one search result and its parts, `{name}` marking a value; the server and the "50 more" script
(which gets them through the page) fill them in the same way, so appended results are identical to rendered ones."""
_CAPTCHA_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Human Verification</title>
<script>window.awsWafCookieDomainList = []; window.gokuProps = {"key": "replica", "iv": "replica"};</script></head>
<body><div id="captcha-container"><h1>Let's confirm you are human</h1>
<p>Complete the security check before continuing. This step verifies that you are not a bot.</p>
<div id="captcha-widget" data-captcha="awswaf"></div></div></body></html>
"""
_FORBIDDEN_PAGE = """<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" "http://www.w3.org/TR/html4/loose.dtd">
<HTML><HEAD><META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=iso-8859-1">
<TITLE>ERROR: The request could not be satisfied</TITLE></HEAD><BODY>
<H1>403 ERROR</H1>
<H2>The request could not be satisfied.</H2>
<HR noshade size="1px">
Request blocked.
We can't connect to the server for this app or website at this time. There might be too much traffic or a
configuration error. Try again later, or contact the app or website owner.
<BR clear="all">
<HR noshade size="1px">
<PRE>
Generated by cloudfront (CloudFront)
Request ID: REPLICA-403
</PRE>
</BODY></HTML>
"""


def fill_template(template: str, values: Mapping[str, str]) -> str:
    """Replace each `{name}` of a SEARCH_TEMPLATES template with `values[name]` (already HTML-escaped)."""
    return re.sub(r"\{(\w+)\}", lambda match: values[match.group(1)], template)


def poster_key(imdb_id: str) -> str:
    """The replica's image id for a title's poster, shaped like IMDb's ("MV5B..."); it does not contain the title id."""
    return "MV5B" + hashlib.sha256(f"poster:{imdb_id}".encode()).hexdigest()[:32].upper()


def _hash(imdb_id: str, what: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{what}:{imdb_id}".encode()).digest()[:8], "big")


def _runtime_minutes(imdb_id: str) -> int | None:
    """Some titles have no runtime, so the metadata spans are not always year, runtime, certificate."""
    value = _hash(imdb_id, "runtime")
    return None if value % 10 == 0 else 70 + value % 111


def _certificate(imdb_id: str) -> str | None:
    value = _hash(imdb_id, "certificate")
    return None if value % 4 == 0 else _CERTIFICATES[value % len(_CERTIFICATES)]


def _runtime_text(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest}m"
    return f"{hours}h {rest}m" if rest else f"{hours}h"


def _caption(movie: Movie) -> str:
    lead = _ACTORS[_hash(movie.imdb_id, "actor") % len(_ACTORS)]
    return f"{lead} in {movie.title}" + (f" ({movie.year})" if movie.year is not None else "")


def _plot(movie: Movie) -> str:
    kinds = " and ".join(genre.lower() for genre in movie.genres) or "feature"
    return f"A {kinds} film with {_ACTORS[_hash(movie.imdb_id, 'actor') % len(_ACTORS)]}."


@dataclass(frozen=True)
class _Query:
    """One advanced title search: genres (all must match), release years (inclusive, None: open), sort order."""

    genres: tuple[str, ...]
    first_year: int | None
    last_year: int | None
    feature: bool
    descending: bool

    def matches(self, movie: Movie) -> bool:
        if not self.feature or not all(genre in movie.genres for genre in self.genres):
            return False
        if movie.year is None:
            return self.first_year is None and self.last_year is None
        return (self.first_year is None or movie.year >= self.first_year) and (
            self.last_year is None or movie.year <= self.last_year
        )

    def variables(self) -> dict[str, Any]:
        """The GraphQL variables (less `after` and `first`) that select the same results."""
        dates = {
            "start": f"{self.first_year}-01-01" if self.first_year is not None else None,
            "end": f"{self.last_year}-12-31" if self.last_year is not None else None,
        }
        return {
            "locale": "en-US",
            "sortBy": "NUM_VOTES",
            "sortOrder": "DESC" if self.descending else "ASC",
            "genreConstraint": {"allGenreIds": list(self.genres), "excludeGenreIds": []},
            "releaseDateConstraint": {"releaseDateRange": dates},
            "titleTypeConstraint": {"anyTitleTypeIds": ["movie"] if self.feature else []},
        }


def _year_of(date: Any) -> int | None:
    match = re.match(r"\s*(\d{4})", date) if isinstance(date, str) else None
    return int(match.group(1)) if match else None


def _encode_cursor(last_index: int) -> str:
    token = json.dumps({"esToken": [str(last_index + 1)], "resultIndex": last_index}, separators=(",", ":"))
    return base64.b64encode(token.encode()).decode()


def _decode_cursor(cursor: Any) -> int:
    """The index of the first result after `cursor` (0 for none); ValueError for a cursor we did not make."""
    if cursor is None:
        return 0
    try:
        return int(json.loads(base64.b64decode(str(cursor), validate=True))["resultIndex"]) + 1
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"bad cursor {cursor!r}") from error


@dataclass(frozen=True)
class FailureModes:
    """What the replica gets wrong on purpose; change them on a running server with `ReplicaServer.configure`."""

    wall: str | None = None
    """One of WALL_KINDS: answer every search, GraphQL, title and image request with IMDb's bot wall..."""
    wall_after: int = 0
    """...once this many more search, GraphQL and title page requests have been served normally."""
    delay: float = 0.0
    """Seconds to wait before answering any request."""
    graphql_latency: float = 0.0
    """Seconds to wait before answering a "50 more" (GraphQL) request."""
    no_poster: frozenset[str] = frozenset()
    """Titles shown without a poster everywhere (no <img>, no primaryImage, 404 for their images)."""
    malformed_next_data: bool = False
    """Serve search pages whose `__NEXT_DATA__` is cut short (not valid JSON)."""

    def __post_init__(self) -> None:
        if self.wall is not None and self.wall not in WALL_KINDS:
            raise ValueError(f"unknown wall {self.wall!r}; expected one of {', '.join(WALL_KINDS)}")
        if self.wall_after < 0 or self.delay < 0 or self.graphql_latency < 0:
            raise ValueError("wall_after, delay and graphql_latency must not be negative")
        object.__setattr__(self, "no_poster", frozenset(self.no_poster))


Answer = tuple[int, dict[str, str], bytes]
"""(status, headers, body) of one response."""


def _not_found() -> Answer:
    return 404, {"Content-Type": "text/html; charset=utf-8"}, _NOT_FOUND_PAGE.encode("utf-8")


def _json_answer(status: int, data: Any) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(data, ensure_ascii=False).encode("utf-8")


def _wall_answer(kind: str) -> Answer:
    if kind == "challenge":
        return 202, {"Content-Type": "text/html; charset=utf-8", "x-amzn-waf-action": "challenge"}, b""
    if kind == "captcha":
        headers = {"Content-Type": "text/html; charset=utf-8", "x-amzn-waf-action": "captcha"}
        return 405, headers, _CAPTCHA_PAGE.encode("utf-8")
    headers = {"Content-Type": "text/html", "X-Cache": "Error from cloudfront"}
    return 403, headers, _FORBIDDEN_PAGE.encode("iso-8859-1")


def _is_browser_user_agent(user_agent: str) -> bool:
    return user_agent.startswith("Mozilla/5.0") and not any(
        marker in user_agent for marker in ("HeadlessChrome", "python-requests", "python-urllib", "curl/")
    )


class _SearchPage:
    """The HTML of one search results page (section 7 of the IMDb spec)."""

    def __init__(
        self, replica: ReplicaServer, query: _Query, movies: list[Movie], total: int, more: bool, failures: FailureModes
    ) -> None:
        self.replica, self.query, self.movies, self.total, self.more = replica, query, movies, total, more
        self.failures = failures
        self.end_cursor = _encode_cursor(len(movies) - 1) if movies else None

    def html(self) -> str:
        items = "".join(
            self.replica._item_html(movie, position, self.failures)
            for position, movie in enumerate(self.movies, start=1)
        )
        return f"""<!DOCTYPE html>
<html lang="en-US">
<head>
  <meta charset="utf-8">
  <title>Advanced title search</title>
  <meta property="imdb:pageType" content="advsearch">
</head>
<body id="styleguide-v2">
<div id="__next">
 <main>
  <section class="ipc-page-section ipc-page-section--base sc-13add9d7-1 dNfhtF">
   <div class="sc-13add9d7-3 fwjHEn">{self._header()}</div>
   <ul class="ipc-metadata-list ipc-metadata-list--dividers-between sc-748571c8-0 jmWPOZ detailed-list-view \
ipc-metadata-list--base" role="presentation">{items}</ul>
{self._see_more()}  </section>
 </main>
</div>
<script id="__NEXT_DATA__" type="application/json">{self._next_data()}</script>
<script id="replica-search-state" type="application/json">{self._state()}</script>
<script src="{SEE_MORE_SCRIPT_PATH}" defer></script>
</body>
</html>
"""

    def _header(self) -> str:
        if not self.movies:
            return "No results"
        return f"1-{len(self.movies)} of {self.total:,}"

    def _see_more(self) -> str:
        if not self.more:
            return ""
        return f"""   <div class="sc-13add9d7-0 ipc-see-more sc-f09bd1f5-0 eGwEbh">
    <button class="ipc-btn ipc-btn--single-padding ipc-btn--center-align-content ipc-btn--default-height \
ipc-btn--core-base ipc-btn--theme-base ipc-btn--button-radius ipc-btn--on-accent2 ipc-text-button \
ipc-see-more__button" tabindex="0" aria-disabled="false"><span class="ipc-btn__text"><span class="ipc-see-more__text">\
{self.replica.page_size} more</span></span></button>
   </div>
"""

    def _next_data(self) -> str:
        results = {
            "titleListItems": [self.replica._next_data_item(movie, self.failures) for movie in self.movies],
            "total": self.total,
            "endCursor": self.end_cursor,
        }
        data = {
            "props": {"pageProps": {"searchResults": {"titleResults": results}}},
            "page": "/search/title",
            "query": {"title_type": "feature", "genres": ",".join(genre.lower() for genre in self.query.genres)},
            "buildId": "replica",
        }
        text = _script_json(data)
        return text[: len(text) // 2] if self.failures.malformed_next_data else text

    def _state(self) -> str:
        state = {
            "after": self.end_cursor,
            "rendered": len(self.movies),
            "pageSize": self.replica.page_size,
            "variables": self.query.variables(),
            "templates": dict(SEARCH_TEMPLATES),
            "posterSizes": [{"width": width, "suffix": suffix} for width, suffix in _POSTER_SIZES],
        }
        return _script_json(state)


def _transformed_jpeg(path: Path, modifiers: str) -> bytes:
    """The image at `path` as a JPEG transformed by `_V1_` modifiers: UX/SX<w> scale to a width, UY/SY<h> to a height,
    CR<x>,<y>,<w>,<h> crop, QL<q> quality; other modifiers (FMjpg, AL) are accepted and ignored."""
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    quality = 90
    for token in filter(None, modifiers.split("_")):
        if match := re.fullmatch(r"(?:UX|SX)(\d+)", token):
            width = max(1, int(match.group(1)))
            image = image.resize((width, max(1, round(image.height * width / image.width))), Image.Resampling.LANCZOS)
        elif match := re.fullmatch(r"(?:UY|SY)(\d+)", token):
            height = max(1, int(match.group(1)))
            image = image.resize((max(1, round(image.width * height / image.height)), height), Image.Resampling.LANCZOS)
        elif match := re.fullmatch(r"CR(\d+),(\d+),(\d+),(\d+)", token):
            x, y, width, height = map(int, match.groups())
            left, top = min(x, image.width - 1), min(y, image.height - 1)
            image = image.crop((left, top, min(x + width, image.width), min(y + height, image.height)))
        elif match := re.fullmatch(r"QL(\d+)", token):
            quality = min(95, max(1, int(match.group(1))))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()

"""An offline replica of IMDb on loopback HTTP, rendered from a catalog, for testing the scraper without the network:
advanced title search pages with a working "50 more" button and its GraphQL endpoint, title pages, poster images
under the `_V1_` URL scheme, a result cap, and switchable failure modes (bot wall, 403, CAPTCHA, slow responses,
missing posters, malformed JSON). `write_replica_catalog` makes its synthetic movie set."""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import io
import json
import math
import mimetypes
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image

from catalog import Catalog, Movie, read_catalog, staged_directory, write_movies_csv
from catalog.demo import demo_movies, generate_demo_catalog
from catalog.movie import IMDB_ID
from scraper.search import PAPER_GENRES

VARIANTS: tuple[str, ...] = ("full", "no_poster", "unrated", "json_ld_only", "og_image_only")
"""full: every source; no_poster: no primaryImage nor JSON-LD image, og:image is IMDb's logo; unrated: no rating;
json_ld_only: no __NEXT_DATA__; og_image_only: neither __NEXT_DATA__ nor JSON-LD."""
DEFAULT_IMAGE_BASE = "https://m.media-amazon.com"
LOGO_IMAGE = "https://m.media-amazon.com/images/G/01/imdb/images/social/imdb_logo.png"
"""IMDb's og:image for a title without a poster."""
_TITLE_PATH = re.compile(rf"/title/({IMDB_ID.pattern})(?:/(?:reference/?)?)?")
_NOT_FOUND_PAGE = """<!DOCTYPE html>
<html lang="en-US"><head><meta charset="utf-8"><title>404 Error - IMDb</title></head>
<body id="styleguide-v2"><div id="__next"><main role="main"><div class="error-page">
<h1>404 Error</h1><p>The requested URL was not found on our server.</p></div></main></div></body></html>
"""


def title_page_html(movie: Movie, image_url: str | None, *, variant: str = "full") -> str:
    """A title page shaped like IMDb's (head meta, JSON-LD, hero DOM, `__NEXT_DATA__`) for a catalog movie.

    `image_url` is the poster's URL (None: the title has no poster); `variant` is one of VARIANTS.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown title page variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    poster = None if variant == "no_poster" else image_url
    rated = variant != "unrated" and movie.rating is not None
    parts = [_head(movie, poster, rated, with_json_ld=variant != "og_image_only"), _hero(movie, poster, rated)]
    if variant not in ("json_ld_only", "og_image_only"):
        parts.append(_next_data_script(movie, poster, rated))
    parts.append("</body>\n</html>\n")
    return "".join(parts)


def _head(movie: Movie, poster: str | None, rated: bool, *, with_json_ld: bool) -> str:
    title_url = movie.imdb_url
    year = f" ({movie.year})" if movie.year is not None else ""
    og_title = movie.title + year + (f" ⭐ {movie.rating}" if rated else "")
    og_title += f" | {', '.join(movie.genres)}" if movie.genres else ""
    description = f"{movie.title}{year}: a {', '.join(movie.genres).lower() or 'feature'} film."
    og_image = poster or LOGO_IMAGE
    json_ld = f"  {_json_ld_script(movie, poster, rated)}\n" if with_json_ld else ""
    return f"""<!DOCTYPE html>
<html lang="en-US" xmlns:og="http://opengraphprotocol.org/schema/">
<head>
  <meta charset="utf-8">
  <title>{escape(movie.title + year, quote=False)} - IMDb</title>
  <meta name="description" content="{escape(description)}">
  <meta property="og:url" content="{escape(title_url)}">
  <meta property="og:site_name" content="IMDb">
  <meta property="og:title" content="{escape(og_title)}">
  <meta property="og:type" content="video.movie">
  <meta property="og:image" content="{escape(og_image)}">
  <meta property="og:image:height" content="{1500 if poster else 1000}">
  <meta property="og:image:width" content="1000">
  <meta property="og:locale" content="en_US">
  <meta property="twitter:image" content="{escape(og_image)}">
  <link rel="canonical" href="{escape(title_url)}">
  <meta property="imdb:pageType" content="title">
  <meta property="imdb:subPageType" content="main">
  <meta property="imdb:pageConst" content="{escape(movie.imdb_id)}">
{json_ld}</head>
"""


def _json_ld_script(movie: Movie, poster: str | None, rated: bool) -> str:
    """IMDb's JSON-LD, whose strings are HTML-entity-escaped; datePublished is a (later) regional release date."""
    work: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Movie",
        "url": movie.imdb_url,
        "name": _entities(movie.title),
    }
    if poster:
        work["image"] = _entities(poster)
    work["description"] = _entities(f"{movie.title}, a replica of an IMDb title page.")
    if rated:
        work["aggregateRating"] = {"@type": "AggregateRating", "bestRating": 10, "worstRating": 1}
        work["aggregateRating"]["ratingValue"] = movie.rating
        if movie.votes is not None:
            work["aggregateRating"]["ratingCount"] = movie.votes
    work["genre"] = [_entities(genre) for genre in movie.genres]
    if movie.year is not None:
        work["datePublished"] = f"{movie.year + 1}-03-02"
    return f'<script type="application/ld+json">{_script_json(work)}</script>'


def _next_data_script(movie: Movie, poster: str | None, rated: bool) -> str:
    genres = {"genres": [{"text": genre, "id": genre} for genre in movie.genres]}
    if rated:
        ratings = {"aggregateRating": movie.rating, "voteCount": movie.votes}
    else:
        ratings = {"aggregateRating": None, "voteCount": movie.votes if movie.rating is None else 0}
    image = None
    if poster:
        caption = {"plainText": movie.title + (f" ({movie.year})" if movie.year is not None else "")}
        image = {"id": _media_id(movie), "url": poster, "caption": caption}
    above = {
        "id": movie.imdb_id,
        "titleText": {"text": movie.title},
        "originalTitleText": {"text": movie.title},
        "titleType": {"id": "movie", "text": "Movie", "isSeries": False, "isEpisode": False, "canHaveEpisodes": False},
        "releaseYear": {"year": movie.year, "endYear": None} if movie.year is not None else None,
        "ratingsSummary": ratings,
        "genres": genres,
        "primaryImage": image,
    }
    page_props = {"tconst": movie.imdb_id, "aboveTheFoldData": above, "mainColumnData": {"id": movie.imdb_id}}
    page_props["mainColumnData"]["genres"] = genres
    data = {"props": {"pageProps": page_props}, "page": "/title/[tconst]", "query": {"tconst": movie.imdb_id}}
    data["buildId"] = "replica"
    return f'<script id="__NEXT_DATA__" type="application/json">{_script_json(data)}</script>\n'


def _hero(movie: Movie, poster: str | None, rated: bool) -> str:
    """The visible hero section: title, year, rating bar, poster (or a placeholder icon) and genre chips."""
    id_ = escape(movie.imdb_id)
    year = (
        ""
        if movie.year is None
        else (
            '     <li role="presentation" class="ipc-inline-list__item"><a class="ipc-link ipc-link--baseAlt '
            f'ipc-link--inherit-color" href="/title/{id_}/releaseinfo?ref_=tt_ov_rdat">{movie.year}</a></li>\n'
        )
    )
    chips = "".join(
        f'       <a class="ipc-chip ipc-chip--on-baseAlt" href="/interest/in{index:07d}/?ref_=tt_ov_in_{index}">'
        f'<span class="ipc-chip__text">{escape(genre)}</span></a>\n'
        for index, genre in enumerate(movie.genres, start=1)
    )
    return f"""<body id="styleguide-v2">
<div id="__next">
 <main role="main">
  <section class="ipc-page-background ipc-page-background--base sc-c41b9732-0 NeSef" data-testid="hero-parent">
   <div class="sc-491663c0-3 bdjVSf">
    <h1 textlength="{len(movie.title)}" data-testid="hero__pageTitle" class="sc-d8941411-0 dxeMrU"><span \
class="hero__primary-text" data-testid="hero__primary-text">{escape(movie.title)}</span></h1>
    <ul class="ipc-inline-list ipc-inline-list--show-dividers sc-d8941411-2 cdJsTz baseAlt" role="presentation">
{year}    </ul>
{_rating_bar(movie) if rated else ""}   </div>
   <div class="sc-491663c0-4 yjUiO">
{_poster(movie, poster)}    <div class="sc-491663c0-10 rbXFE">
     <div class="ipc-chip-list--baseAlt ipc-chip-list sc-e6498a9c-4 dfXgRi" data-testid="interests">
      <div class="ipc-chip-list__scroller">
{chips}      </div>
     </div>
    </div>
   </div>
  </section>
 </main>
</div>
"""


def _rating_bar(movie: Movie) -> str:
    return f"""    <div data-testid="hero-rating-bar__aggregate-rating" class="sc-3a4309f8-0 fjtZsE">
     <a class="ipc-btn ipc-btn--single-padding ipc-btn--center-align-content ipc-btn--default-height ipc-text-button \
sc-acdbf0f3-2 bEFqOO" aria-label="View User Ratings" href="/title/{escape(movie.imdb_id)}/ratings/?ref_=tt_ov_rat">
      <span class="ipc-btn__text"><div class="sc-acdbf0f3-3 dTiYRw">
       <div data-testid="hero-rating-bar__aggregate-rating__score" class="sc-acdbf0f3-1 kCTJoV"><span \
class="sc-acdbf0f3-0 haeNJV">{movie.rating}</span><span>/<!-- -->10</span></div>
       <div class="sc-acdbf0f3-4 eVZpvn"></div><div class="sc-acdbf0f3-6 kzGfxd">{abbreviate_votes(movie.votes or 0)}\
</div>
      </div></span>
     </a>
    </div>
"""


def _poster(movie: Movie, poster: str | None) -> str:
    classes = "ipc-media ipc-media--poster-27x40 ipc-image-media-ratio--poster-27x40 ipc-media--baseAlt"
    if poster:
        alt = movie.title + (f" ({movie.year})" if movie.year is not None else "")
        media = (
            f'<img alt="{escape(alt)}" class="ipc-image" loading="eager" src="{escape(poster)}" '
            f'srcset="{escape(poster)} 190w" sizes="50vw, (min-width: 480px) 34vw" width="190">'
        )
    else:
        media = '<svg class="ipc-icon ipc-icon--movie ipc-media__icon" width="24" height="24" role="presentation"/>'
    overlay = (
        f'<a class="ipc-lockup-overlay ipc-focusable" href="/title/{escape(movie.imdb_id)}/mediaviewer/'
        f'{_media_id(movie)}/?ref_=tt_ov_i" aria-label="{escape(f"View ’{movie.title}’ Poster")}">'
        '<div class="ipc-lockup-overlay__screen"></div></a>'
        if poster
        else ""
    )
    return f"""    <div class="ipc-poster ipc-poster--baseAlt ipc-poster--dynamic-width ipc-sub-grid-item \
ipc-sub-grid-item--span-2" role="group" data-testid="hero-media__poster">
     <div class="{classes} ipc-media--poster-l ipc-poster__poster-image ipc-media__img" style="width:100%">{media}</div>
     {overlay}
    </div>
"""


def _media_id(movie: Movie) -> str:
    return "rm" + movie.imdb_id[2:].rjust(9, "0")


def _entities(text: str) -> str:
    """HTML-entity-escape a string the way IMDb's JSON-LD does (&apos; and &quot; included)."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")).replace(
        "'", "&apos;"
    )


def _script_json(data: Any) -> str:
    """JSON safe inside <script>: no "</" (so no "</script>") and no "<!--"; both only occur inside strings."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\u0021--")


# -- search pages ----------------------------------------------------------------------------------------------------

WALL_KINDS: tuple[str, ...] = ("challenge", "captcha", "forbidden")
"""How the replica's bot wall answers: challenge: AWS WAF's 202 with an empty body and `x-amzn-waf-action:
challenge`; captcha: 405 with `x-amzn-waf-action: captcha` and a CAPTCHA page; forbidden: CloudFront's 403 page."""
DEFAULT_RESULT_CAP = 10_000
DEFAULT_PAGE_SIZE = 50
MAX_COUNT = 250
"""The largest `count` (search page) or `first` (GraphQL) honoured."""
SEE_MORE_SCRIPT_PATH = "/_next/static/chunks/see-more.js"
_SEE_MORE_SCRIPT = Path(__file__).with_name("replica_static") / "see_more.js"
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


def abbreviate_votes(votes: int) -> str:
    """IMDb's rounded vote count as search results show it: 850, 7.4K, 105K, 1M, 2.9M (halves round up)."""
    if votes < 1_000:
        return str(votes)
    scale, suffix = (1_000_000, "M") if votes >= 999_500 else (1_000, "K")
    tenths = (votes * 10 + scale // 2) // scale
    if tenths < 100:
        whole, decimal = divmod(tenths, 10)
        return (f"{whole}.{decimal}" if decimal else str(whole)) + suffix
    return str((votes + scale // 2) // scale) + suffix


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


# -- the replica's movie set -----------------------------------------------------------------------------------------

_GENRE_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "Drama": 30,
        "Comedy": 16,
        "Action": 9,
        "Thriller": 8,
        "Romance": 6,
        "Crime": 6,
        "Horror": 5,
        "Adventure": 5,
        "Mystery": 3,
        "Sci-Fi": 3,
        "Fantasy": 3,
        "Family": 2.5,
        "Animation": 2,
        "Biography": 2,
        "History": 1.5,
        "War": 1.5,
        "Musical": 1,
        "Western": 1,
    }
)
"""Skewed like IMDb's features: Drama and Comedy outnumber the rest, so they exceed a small result cap first."""
_REPLICA_FIRST_YEAR, _REPLICA_LAST_YEAR = 1950, 2020
_UNRATED_SHARE = 0.03


def replica_movies(n_movies: int = 300, seed: int = 0) -> list[Movie]:
    """The replica's movies: the demo catalog's ids, titles and poster files (`demo_movies(n_movies, seed)`) with
    IMDb-like metadata: 1-3 of the paper's 18 genres, years 1950-2020, ratings, log-normal and distinct vote counts
    (a few unrated titles with 0 votes), and a few titles that are hard to parse (a leading "9. ", quotes, markup,
    non-ASCII). Deterministic given (n_movies, seed)."""
    movies: list[Movie] = []
    votes_taken: set[int] = set()
    for index, demo in enumerate(demo_movies(n_movies, seed)):
        rng = np.random.default_rng([seed, 7, index])
        rating: float | None = round(float(np.clip(rng.normal(6.3, 1.1), 1.0, 10.0)), 1)
        votes = max(5, round(math.exp(math.log(5_000) + 0.6 * (rating - 6.3) + rng.normal(0.0, 1.8))))
        while votes in votes_taken:
            votes += 1
        if rng.random() < _UNRATED_SHARE:
            rating, votes = None, 0
        else:
            votes_taken.add(votes)
        year = _REPLICA_FIRST_YEAR + round((_REPLICA_LAST_YEAR - _REPLICA_FIRST_YEAR) * rng.beta(2.0, 1.3))
        title = _hard_title(index, demo.title)
        movies.append(Movie(demo.imdb_id, title, year, _replica_genres(rng), rating, votes, demo.poster))
    return movies


def _replica_genres(rng: np.random.Generator) -> tuple[str, ...]:
    names = list(_GENRE_WEIGHTS)
    weights = np.array([_GENRE_WEIGHTS[name] for name in names])
    count = int(rng.choice((1, 2, 3), p=(0.45, 0.4, 0.15)))
    chosen = {names[i] for i in rng.choice(len(names), size=count, replace=False, p=weights / weights.sum())}
    return tuple(genre for genre in PAPER_GENRES if genre in chosen)


def _hard_title(index: int, title: str) -> str:
    variant = index % 29
    if variant == 3:
        return f"{index % 9 + 1}. {title}"
    if variant == 11:
        return f'{title}: Jane\'s "Case" & <Co>'
    if variant == 17:
        return f"Ünïcödé 東京 {title}"
    if variant == 23:
        return str(1900 + index % 100)
    return title


def write_replica_catalog(
    directory: str | Path, n_movies: int = 300, seed: int = 0, *, overwrite: bool = False
) -> Catalog:
    """Write the replica's movie set as a catalog (demo posters, `replica_movies` metadata) and return it read back.

    The directory appears whole or not at all; an existing one is replaced only with `overwrite=True`."""
    directory = Path(directory)
    if directory.exists() and not overwrite:
        raise FileExistsError(f"{directory} already exists; pass overwrite=True to replace it")
    with staged_directory(directory) as staging:
        demo = generate_demo_catalog(staging / "demo", n_movies=n_movies, seed=seed, progress=False)
        (demo / "posters").rename(staging / "posters")
        shutil.rmtree(demo)
        write_movies_csv(staging, replica_movies(n_movies, seed))
    return read_catalog(directory)


# -- the server ------------------------------------------------------------------------------------------------------


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


class ReplicaServer:
    """Serves a catalog as IMDb would over http://127.0.0.1:<port> (a daemon thread); a context manager.

    Routes: `GET /search/title/?title_type=feature&genres=<slug>&sort=num_votes,desc[&release_date=A,B][&count=N]`:
    an advanced title search page (the first `count`, default `page_size`, results, `__NEXT_DATA__` and a "50 more"
    button whose script pages through `GET /graphql?operationName=AdvancedTitleSearch&variables=<json>`); no
    result past `result_cap` is ever returned. `GET /title/<id>/` (also without the slash, with a query string, and
    `/title/<id>/reference`): the title page of a catalog movie, 404 for other ids, and for ids in `bot_wall` the AWS
    WAF challenge (202, empty body, `x-amzn-waf-action: challenge`). `GET <image_host_path><id>.jpg`: the poster file;
    `GET <image_host_path><key>@._V1_<modifiers>.jpg` (`poster_key`): the poster as a JPEG, scaled to the `UX<w>`
    / `UY<h>` (or `SX`/`SY`) and cropped to the `CR<x>,<y>,<w>,<h>` asked for. Title pages name posters as
    `image_base + image_host_path + <id>.jpg`, search pages as `image_base + image_host_path + <key>@._V1_....jpg`
    (IMDb's image host by default, which a client maps to this server). `variants` maps ids to a `title_page_html`
    variant (default "full"). `failures` (see FailureModes) can be changed while serving with `configure`;
    `require_browser_user_agent` answers 403 to clients that do not send a desktop browser's User-Agent.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        image_host_path: str = "/images/M/",
        bot_wall: Iterable[str] = (),
        variants: Mapping[str, str] | None = None,
        image_base: str | None = None,
        port: int = 0,
        result_cap: int = DEFAULT_RESULT_CAP,
        page_size: int = DEFAULT_PAGE_SIZE,
        failures: FailureModes | None = None,
        require_browser_user_agent: bool = False,
    ) -> None:
        if not (image_host_path.startswith("/") and image_host_path.endswith("/")):
            raise ValueError(f"image_host_path {image_host_path!r} must start and end with '/'")
        if result_cap < 1 or not 1 <= page_size <= MAX_COUNT:
            raise ValueError(f"result_cap must be positive and page_size between 1 and {MAX_COUNT}")
        self.variants = dict(variants or {})
        unknown = sorted({variant for variant in self.variants.values() if variant not in VARIANTS})
        if unknown:
            raise ValueError(f"unknown variant(s) {', '.join(unknown)}; expected one of {', '.join(VARIANTS)}")
        self.catalog = catalog
        self.image_host_path = image_host_path
        self.image_base = (image_base or DEFAULT_IMAGE_BASE).rstrip("/")
        """Read per request, so it may be set to `url` once started (see `main`)."""
        self.bot_wall = frozenset(bot_wall)
        self.port = port
        self.result_cap = result_cap
        self.page_size = page_size
        self.require_browser_user_agent = require_browser_user_agent
        self._image_path = re.compile(re.escape(image_host_path) + rf"({IMDB_ID.pattern})\.jpg")
        self._keys = {poster_key(movie.imdb_id): movie.imdb_id for movie in catalog}
        self._genre_names = {genre.lower(): genre for genre in (*PAPER_GENRES, *(g for m in catalog for g in m.genres))}
        self._see_more_script = _SEE_MORE_SCRIPT.read_bytes()
        self._failures = failures or FailureModes()
        self._wall_from = self._failures.wall_after
        self._page_requests = 0
        self._requests: list[str] = []
        self._counts: Counter[str] = Counter()
        self._results: dict[_Query, list[Movie]] = {}
        self._images: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`, once started."""
        if self._server is None:
            raise RuntimeError("the replica server is not running; call start() or use it in a with block")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[str]:
        """The paths (with query strings) of the requests served so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def request_counts(self) -> dict[str, int]:
        """How many requests each route got: "search", "graphql", "title", "image", "script" and "other"."""
        with self._lock:
            return dict(self._counts)

    @property
    def failures(self) -> FailureModes:
        with self._lock:
            return self._failures

    def configure(self, **changes: Any) -> FailureModes:
        """Change failure modes (FailureModes fields) while serving; `wall_after` counts page requests from now."""
        with self._lock:
            self._failures = dataclasses.replace(self._failures, **changes)
            if "wall" in changes or "wall_after" in changes:
                self._wall_from = self._page_requests + self._failures.wall_after
            return self._failures

    def poster_url(self, imdb_id: str) -> str:
        """The poster URL the title pages name (on `image_base`, not necessarily this server)."""
        return f"{self.image_base}{self.image_host_path}{imdb_id}.jpg"

    def original_image_url(self, imdb_id: str) -> str:
        """The full-size `_V1_` URL of a title's poster, as search results and `__NEXT_DATA__` name it."""
        at = "@@" if _hash(imdb_id, "at") % 7 == 0 else "@"
        return f"{self.image_base}{self.image_host_path}{poster_key(imdb_id)}{at}._V1_.jpg"

    def search_results(self, genre: str, first_year: int | None = None, last_year: int | None = None) -> list[Movie]:
        """Every catalog movie a feature search for `genre` (and years) matches, by votes, before the result cap."""
        name = self._genre_names.get(genre.lower(), genre)
        return list(self._matching(_Query((name,), first_year, last_year, feature=True, descending=True)))

    def start(self) -> ReplicaServer:
        if self._server is None:
            self._server = _Server(("127.0.0.1", self.port), _Handler, self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="imdb-replica", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> ReplicaServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # -- routing -----------------------------------------------------------------------------------------------------

    def _route(self, path: str) -> str:
        if _SEARCH_PATH.fullmatch(path):
            return "search"
        if path == "/graphql":
            return "graphql"
        if _TITLE_PATH.fullmatch(path):
            return "title"
        if path == SEE_MORE_SCRIPT_PATH:
            return "script"
        if path.startswith(self.image_host_path):
            return "image"
        return "other"

    def _admit(self, target: str, route: str, user_agent: str) -> tuple[FailureModes, Answer | None]:
        """Record a request; the failure modes to serve it under, and the wall's answer when the wall is up."""
        with self._lock:
            self._requests.append(target)
            self._counts[route] += 1
            failures = self._failures
            walled = failures.wall is not None and self._page_requests >= self._wall_from
            if route in _PAGE_ROUTES:
                self._page_requests += 1
        if route in ("script", "other"):
            return failures, None
        if walled and failures.wall is not None:
            return failures, _wall_answer(failures.wall)
        if self.require_browser_user_agent and not _is_browser_user_agent(user_agent):
            return failures, _wall_answer("forbidden")
        return failures, None

    def _answer(self, target: str, user_agent: str = "") -> tuple[Answer, float]:
        """The response to a GET of `target` (path and query), and how long to wait before sending it."""
        parts = urlsplit(target)
        route = self._route(parts.path)
        failures, wall = self._admit(target, route, user_agent)
        delay = failures.delay + (failures.graphql_latency if route == "graphql" else 0.0)
        if wall is not None:
            return wall, delay
        return self._respond(parts.path, parts.query, failures), delay

    def _respond(self, path: str, query: str, failures: FailureModes) -> Answer:
        """(status, headers, body) for a GET of `path` with `query`, wall aside."""
        if _SEARCH_PATH.fullmatch(path) and query:
            return self._search_page(parse_qs(query, keep_blank_values=True), failures)
        if path == "/graphql":
            return self._graphql(parse_qs(query, keep_blank_values=True), failures)
        if path == SEE_MORE_SCRIPT_PATH:
            headers = {"Content-Type": "application/javascript; charset=utf-8", "Cache-Control": "max-age=600"}
            return 200, headers, self._see_more_script
        if match := _TITLE_PATH.fullmatch(path):
            return self._title(match.group(1), failures)
        if match := self._image_path.fullmatch(path):
            return self._image(match.group(1), failures)
        if path.startswith(self.image_host_path) and (match := _V1_IMAGE.fullmatch(path[len(self.image_host_path) :])):
            return self._sized_image(match.group("key"), match.group("modifiers"), failures)
        return _not_found()

    # -- title pages and images --------------------------------------------------------------------------------------

    def _title(self, imdb_id: str, failures: FailureModes) -> Answer:
        if imdb_id in self.bot_wall:
            return _wall_answer("challenge")
        if imdb_id not in self.catalog:
            return _not_found()
        movie = self.catalog.get(imdb_id)
        variant = "no_poster" if imdb_id in failures.no_poster else self.variants.get(imdb_id, "full")
        page = title_page_html(movie, self.poster_url(imdb_id), variant=variant)
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode("utf-8")

    def _image(self, imdb_id: str, failures: FailureModes) -> Answer:
        if imdb_id not in self.catalog or imdb_id in failures.no_poster:
            return _not_found()
        path = self.catalog.poster_path(self.catalog.get(imdb_id))
        try:
            body = path.read_bytes()
        except OSError:
            return _not_found()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return 200, {"Content-Type": content_type, "Cache-Control": "max-age=31536000"}, body

    def _sized_image(self, key: str, modifiers: str, failures: FailureModes) -> Answer:
        imdb_id = self._keys.get(key, key)
        if imdb_id not in self.catalog or imdb_id in failures.no_poster:
            return _not_found()
        with self._lock:
            body = self._images.get((imdb_id, modifiers))
        if body is None:
            try:
                body = _transformed_jpeg(self.catalog.poster_path(self.catalog.get(imdb_id)), modifiers)
            except OSError:
                return _not_found()
            with self._lock:
                if len(self._images) >= 512:
                    self._images.clear()
                self._images[(imdb_id, modifiers)] = body
        return 200, {"Content-Type": "image/jpeg", "Cache-Control": "max-age=31536000"}, body

    # -- search ------------------------------------------------------------------------------------------------------

    def _matching(self, query: _Query) -> list[Movie]:
        with self._lock:
            cached = self._results.get(query)
        if cached is None:
            found = [movie for movie in self.catalog if query.matches(movie)]
            sign = -1 if query.descending else 1
            cached = sorted(found, key=lambda movie: (sign * (movie.votes or 0), movie.imdb_id))
            with self._lock:
                self._results[query] = cached
        return cached

    def _query_from_url(self, params: dict[str, list[str]]) -> _Query:
        genres = tuple(
            self._genre_names.get(slug.strip().lower(), slug.strip())
            for value in params.get("genres", [])
            for slug in value.split(",")
            if slug.strip()
        )
        dates = (params.get("release_date", [""])[0].split(",") + [""])[:2]
        title_types = {kind for value in params.get("title_type", ["feature"]) for kind in value.split(",")}
        sort = params.get("sort", ["num_votes,desc"])[0].lower()
        first_year, last_year = _year_of(dates[0]), _year_of(dates[1])
        return _Query(genres, first_year, last_year, "feature" in title_types, not sort.endswith("asc"))

    def _query_from_variables(self, variables: Mapping[str, Any]) -> _Query:
        genres = (variables.get("genreConstraint") or {}).get("allGenreIds") or []
        dates = (variables.get("releaseDateConstraint") or {}).get("releaseDateRange") or {}
        types = (variables.get("titleTypeConstraint") or {}).get("anyTitleTypeIds") or []
        return _Query(
            tuple(self._genre_names.get(str(genre).lower(), str(genre)) for genre in genres),
            _year_of(dates.get("start")),
            _year_of(dates.get("end")),
            "movie" in types,
            str(variables.get("sortOrder", "DESC")).upper() != "ASC",
        )

    def _page(self, query: _Query, start: int, size: int) -> tuple[list[Movie], int, bool]:
        """(results from `start`, at most `size`, never past the cap; the uncapped total; whether more follow)."""
        matching = self._matching(query)
        reachable = matching[: self.result_cap]
        page = reachable[start : start + size]
        return page, len(matching), start + len(page) < len(reachable)

    def _search_page(self, params: dict[str, list[str]], failures: FailureModes) -> Answer:
        query = self._query_from_url(params)
        try:
            count = min(MAX_COUNT, max(1, int(params.get("count", [str(self.page_size)])[0])))
        except ValueError:
            count = self.page_size
        movies, total, more = self._page(query, 0, count)
        page = _SearchPage(self, query, movies, total, more, failures)
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page.html().encode("utf-8")

    def _graphql(self, params: dict[str, list[str]], failures: FailureModes) -> Answer:
        if params.get("operationName", [""])[0] != "AdvancedTitleSearch":
            return _json_answer(400, {"errors": [{"message": "unknown operationName"}]})
        try:
            variables = json.loads(params.get("variables", ["{}"])[0])
            if not isinstance(variables, dict):
                raise ValueError("variables must be an object")
            start = _decode_cursor(variables.get("after"))
            first = min(MAX_COUNT, max(1, int(variables.get("first") or self.page_size)))
        except (ValueError, TypeError) as error:
            return _json_answer(400, {"errors": [{"message": f"bad variables: {error}"}]})
        query = self._query_from_variables(variables)
        movies, total, more = self._page(query, start, first)
        edges = [{"node": {"title": self._graphql_title(movie, failures)}} for movie in movies]
        end_cursor = _encode_cursor(start + len(movies) - 1) if movies else None
        search = {"edges": edges, "pageInfo": {"hasNextPage": more, "endCursor": end_cursor}, "total": total}
        return _json_answer(200, {"data": {"advancedTitleSearch": search}})

    def _image_of(self, movie: Movie, failures: FailureModes) -> dict[str, Any] | None:
        if movie.imdb_id in failures.no_poster:
            return None
        return {"url": self.original_image_url(movie.imdb_id), "width": 1000, "height": 1473}

    def _graphql_title(self, movie: Movie, failures: FailureModes) -> dict[str, Any]:
        """A result as IMDb's GraphQL names its fields (`titleText.text`, `ratingsSummary`, `titleGenres`...)."""
        image = self._image_of(movie, failures)
        runtime, certificate = _runtime_minutes(movie.imdb_id), _certificate(movie.imdb_id)
        return {
            "id": movie.imdb_id,
            "titleText": {"text": movie.title},
            "originalTitleText": {"text": movie.title},
            "titleType": {"id": "movie", "text": "Movie", "canHaveEpisodes": False},
            "releaseYear": {"year": movie.year, "endYear": None} if movie.year is not None else None,
            "runtime": {"seconds": runtime * 60} if runtime else None,
            "certificate": {"rating": certificate} if certificate else None,
            "ratingsSummary": {"aggregateRating": movie.rating, "voteCount": movie.votes or 0},
            "titleGenres": {"genres": [{"genre": {"text": genre}} for genre in movie.genres]},
            "plot": {"plotText": {"plainText": _plot(movie)}},
            "primaryImage": image and {**image, "caption": {"plainText": _caption(movie)}},
        }

    def _next_data_item(self, movie: Movie, failures: FailureModes) -> dict[str, Any]:
        """A result as the search page's `__NEXT_DATA__` has it (flat: `titleText`, `ratingSummary`, `genres`...)."""
        image = self._image_of(movie, failures)
        runtime, certificate = _runtime_minutes(movie.imdb_id), _certificate(movie.imdb_id)
        return {
            "titleId": movie.imdb_id,
            "titleText": movie.title,
            "originalTitleText": movie.title,
            "titleType": {"id": "movie", "text": "Movie", "canHaveEpisodes": False},
            "releaseYear": movie.year,
            "endYear": None,
            "releaseDate": {"day": 1 + _hash(movie.imdb_id, "day") % 28, "month": 1 + _hash(movie.imdb_id, "m") % 12}
            | {"year": movie.year},
            "runtime": runtime * 60 if runtime else None,
            "certificate": certificate,
            "ratingSummary": {"aggregateRating": movie.rating, "voteCount": movie.votes or 0},
            "metascore": None,
            "genres": list(movie.genres),
            "plot": _plot(movie),
            "primaryImage": image and {**image, "caption": _caption(movie)},
            "principalCredits": [],
            "series": None,
        }

    def _item_html(self, movie: Movie, position: int, failures: FailureModes) -> str:
        """One result's <li>, as the "50 more" script renders it from `_graphql_title`."""
        spans = [str(movie.year)] if movie.year is not None else []
        runtime, certificate = _runtime_minutes(movie.imdb_id), _certificate(movie.imdb_id)
        spans += ([_runtime_text(runtime)] if runtime else []) + ([certificate] if certificate else [])
        metadata = "".join(fill_template(SEARCH_TEMPLATES["metadata"], {"text": escape(text)}) for text in spans)
        rating = ""
        if movie.rating is not None:
            values = {"rating": f"{movie.rating:.1f}", "votes": abbreviate_votes(movie.votes or 0)}
            rating = fill_template(SEARCH_TEMPLATES["rating"], values)
        values = {
            "id": escape(movie.imdb_id),
            "n": str(position),
            "title": escape(movie.title),
            "metadata": metadata,
            "rating": rating,
            "poster": self._poster_html(movie, failures),
            "plot": escape(_plot(movie)),
        }
        return fill_template(SEARCH_TEMPLATES["item"], values)

    def _poster_html(self, movie: Movie, failures: FailureModes) -> str:
        if movie.imdb_id in failures.no_poster:
            return SEARCH_TEMPLATES["poster_none"]
        original = self.original_image_url(movie.imdb_id)
        sized = [(width, original.replace("._V1_.jpg", suffix)) for width, suffix in _POSTER_SIZES]
        values = {
            "alt": escape(_caption(movie)),
            "src": escape(sized[0][1]),
            "srcset": escape(", ".join(f"{url} {width}w" for width, url in sized)),
        }
        return fill_template(SEARCH_TEMPLATES["poster_image"], values)


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], replica: ReplicaServer):
        self.replica = replica
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "Server"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve(with_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(with_body=False)

    def _serve(self, *, with_body: bool) -> None:
        (status, headers, body), delay = self.server.replica._answer(self.path, self.headers.get("User-Agent", ""))
        if delay:
            time.sleep(delay)
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests and demos do not want a line per request on stderr."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scraper.replica", description=__doc__)
    parser.add_argument("catalog", type=Path, metavar="CATALOG_DIR", help="catalog directory to serve")
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0 picks one)")
    parser.add_argument(
        "--image-base", help="host the pages name posters on (default: this server, so a browser shows them)"
    )
    args = parser.parse_args(argv)
    catalog = read_catalog(args.catalog)
    with ReplicaServer(catalog, image_base=args.image_base, port=args.port) as server:
        if args.image_base is None:
            server.image_base = server.url
        print(f"Serving {len(catalog)} titles at {server.url}, e.g. {server.url}/title/{catalog.movies[0].imdb_id}/")
        print("Ctrl-C stops.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print()


if __name__ == "__main__":
    main()

"""The replica's title pages: the HTML of a movie's IMDb title page in each of its variants (embedded JSON,
JSON-LD only, og:image only, without a poster, unrated)."""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

from catalog import Movie
from catalog.movie import IMDB_ID

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

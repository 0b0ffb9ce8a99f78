"""Read an IMDb title page's HTML into the movie's metadata (title, year, genres, rating, votes) and its poster URL,
preferring the embedded `__NEXT_DATA__` JSON, then JSON-LD, then the og: meta tags, then the visible hero section,
field by field.

The page is tokenised by the standard library's html.parser (lenient with broken HTML, no dependency), not by a
hand-written scanner; what is ours is only which elements to keep (`_PageScanner`: scripts, meta tags, the hero
region's data-testid attributes). BeautifulSoup would let CSS selectors pick them but add bs4 and soupsieve to the
serving install (the app reads title pages for IMDb links) and build a tree of the whole page (about 1 MB) to read a
few fields."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from html import unescape
from typing import Any

from catalog.movie import IMDB_ID
from scraper.title_scanner import _HERO_VOTES, PageTooSlowError, _HeroScanner, _PageScanner

_TITLE_URL_ID = re.compile(rf"/title/({IMDB_ID.pattern})(?![0-9])")
_LOGO_IMAGE = re.compile(r"/imdb[^/]*\.png(?:$|[?#])")
"""og:image of a title without a poster: IMDb falls back to its logo, .../images/social/imdb_logo.png."""
_OG_TITLE_WITH_YEAR = re.compile(
    r"^(?P<title>.+) \((?:[^()]*\s)?(?P<year>\d{4})(?:[–-]\d{0,4})?\)"
    r"(?: ⭐ (?P<rating>\d+(?:\.\d+)?))?(?: \| (?P<genres>.+))?$"
)
"""og:title such as "Example Movie One (1994) ⭐ 9.3 | Drama, Crime" or "Show (TV Series 2013–2018) | Drama"."""
_OG_TITLE_WITHOUT_YEAR = re.compile(r"^(?P<title>.+?)(?: ⭐ (?P<rating>\d+(?:\.\d+)?))?(?: \| (?P<genres>.+))?$")
_PAGE_TITLE_SUFFIX = re.compile(r"\s+-\s+IMDb$")
MAX_TITLE_TEXT = 1000
"""The longest og:title or <title> read (IMDb's are under 300 characters): the patterns above backtrack, and on a
hostile title their time grows with the square of its length, holding the interpreter."""
_YEAR_RANGE = (1870, 2100)
_JSON_LD_WORK_TYPES = frozenset(
    {"Movie", "TVSeries", "TVEpisode", "TVMiniSeries", "TVSpecial", "VideoGame", "CreativeWork", "VideoObject"}
)
IMDB_GENRES = frozenset(
    {
        "Action", "Adult", "Adventure", "Animation", "Biography", "Comedy", "Crime", "Documentary", "Drama", "Family",
        "Fantasy", "Film-Noir", "Game-Show", "History", "Horror", "Music", "Musical", "Mystery", "News", "Reality-TV",
        "Romance", "Sci-Fi", "Short", "Sport", "Talk-Show", "Thriller", "War", "Western",
    }
)  # fmt: skip
"""IMDb's genre vocabulary: the hero's interest chips ("Prison Drama", "Epic") count as genres only if listed here."""
_HERO_YEAR = re.compile(r"(\d{4})(?:\s*[–-]\s*(?:\d{4})?)?")
"""The hero's year item: "1994", or a series' "2008–2013" / "2019–" (its first year)."""
VOTE_SCALES = {"": 1, "K": 1_000, "M": 1_000_000, "B": 1_000_000_000}
"""What IMDb's abbreviated counts ("2.9M", "850K") multiply by, by suffix (upper case)."""
_HERO_RATING_RANGE = (1.0, 10.0)
_SRCSET_ENTRY = re.compile(r"(\S+)\s+(\d+)w(?![^\s,])")
_V1_SUFFIX = re.compile(r"\._V1[_.][^/]*$")
"""The size modifiers of an image URL ("._V1_QL75_UX190_CR0,0,190,281_.jpg"); "._V1_.jpg" is the full size."""
_V1_MODIFIERS = re.compile(r"\._V1_[^/]*$")
"""`sized_poster_url`'s (narrower) match: "._V1_…" only, not "._V1.…"."""


class TitlePageError(ValueError):
    """The HTML is not an IMDb title page we can read (a bot-wall challenge, an error page, another kind of page)."""


@dataclass(frozen=True)
class TitlePage:
    """What a title page says about one title; a field is None (or empty) when no source on the page has it."""

    imdb_id: str
    title: str | None
    year: int | None
    genres: tuple[str, ...]
    rating: float | None
    votes: int | None
    poster_url: str | None
    """None when the title has no poster (IMDb's imdb_logo.png og:image fallback counts as none)."""
    source: str
    """Where poster_url came from: "next_data", "json_ld", "og_image", "dom" (the hero's poster <img>) or "none"."""


@dataclass(frozen=True)
class _Fields:
    """The fields one source of the page provides; None (or ()) where it has nothing."""

    title: str | None = None
    year: int | None = None
    genres: tuple[str, ...] = ()
    rating: float | None = None
    votes: int | None = None
    poster_url: str | None = None


def read_title_page(html: str, imdb_id: str | None = None) -> TitlePage:
    """Read a title page; `imdb_id` (the id that was requested) wins over the id the page names.

    Each field comes from the first source that has it: `__NEXT_DATA__`, then JSON-LD, then og:title/og:image,
    then the visible hero section (the year prefers og:title to JSON-LD's `datePublished`, a regional release date).
    The hero's abbreviated vote count ("2.9M") is used only along with its rating, when no other source rates the
    title. Malformed JSON in one source only drops that source. Raises TitlePageError for pages with no title data
    (bot wall, error page).
    """
    if imdb_id is not None and not IMDB_ID.fullmatch(imdb_id):
        raise ValueError(f"bad imdb_id {imdb_id!r}: expected 'tt' followed by 7 or 8 digits")
    if not html.strip():
        raise TitlePageError("empty page: not an IMDb title page (IMDb's bot wall answers 202 with an empty body)")
    scanner = _PageScanner()
    try:
        scanner.feed(html)
        scanner.close()
    except PageTooSlowError as error:
        raise TitlePageError(f"{error}: not an IMDb title page") from None
    except AssertionError as error:  # Python 3.11's html.parser asserts on some malformed declarations ("<![x")
        raise TitlePageError(f"the page's HTML cannot be read ({error}): not an IMDb title page") from None
    _check_page_type(scanner)
    next_data = _load_json(scanner.next_data)
    json_ld = _json_ld_work(scanner.json_ld)
    page_id = imdb_id or _page_imdb_id(scanner, next_data, json_ld)
    sources = {
        "next_data": _from_next_data(next_data),
        "json_ld": _from_json_ld(json_ld),
        "og_image": _from_og_meta(scanner),
        "dom": _from_hero(scanner.hero),
    }
    if page_id is None or not any(fields != _Fields() for fields in sources.values()):
        raise TitlePageError(_not_a_title_page_message(scanner, page_id))
    return _merge(page_id, sources)


def _check_page_type(scanner: _PageScanner) -> None:
    page_type = scanner.meta.get("imdb:pagetype")
    if page_type and page_type != "title":
        raise TitlePageError(f"not a title page: imdb:pageType is {page_type!r}")


def _not_a_title_page_message(scanner: _PageScanner, page_id: str | None) -> str:
    what = f"page {scanner.page_title!r}" if scanner.page_title else "page"
    if page_id is None:
        return (
            f"{what} names no IMDb title id (no imdb:pageConst, tconst, og:url or canonical link): "
            "not an IMDb title page, perhaps a bot-wall challenge or an error page"
        )
    return (
        f"{what} for {page_id} has no __NEXT_DATA__, JSON-LD or og: metadata, nor a hero section, to read: "
        "not an IMDb title page"
    )


def _merge(imdb_id: str, sources: dict[str, _Fields]) -> TitlePage:
    """Each field from the first source that has it; the year from JSON-LD only after og:title; the hero's (rounded)
    vote count only when no other source has a rating, so it never pairs with another source's rating."""
    ordered = list(sources.values())
    year_order = [sources["next_data"], sources["og_image"], sources["json_ld"], sources["dom"]]
    exact = [fields for name, fields in sources.items() if name != "dom"]
    votes = _first(fields.votes for fields in exact)
    if votes is None and _first(fields.rating for fields in exact) is None:
        votes = sources["dom"].votes
    poster_source = next((name for name, fields in sources.items() if fields.poster_url), "none")
    return TitlePage(
        imdb_id=imdb_id,
        title=_first(fields.title for fields in ordered),
        year=_first(fields.year for fields in year_order),
        genres=_first(fields.genres for fields in ordered) or (),
        rating=_first(fields.rating for fields in ordered),
        votes=votes,
        poster_url=sources[poster_source].poster_url if poster_source != "none" else None,
        source=poster_source,
    )


def _first(values: Iterator[Any]) -> Any:
    return next((value for value in values if value is not None and value != ()), None)


def _page_imdb_id(scanner: _PageScanner, next_data: Any, json_ld: dict[str, Any] | None) -> str | None:
    """The title id the page names: imdb:pageConst, then tconst, then og:url, canonical link, JSON-LD url, then the
    hero's links to the title's sub-pages (releaseinfo, ratings, mediaviewer)."""
    page_props = _dig(next_data, "props", "pageProps")
    ids = [scanner.meta.get("imdb:pageconst"), _dig(page_props, "tconst"), _dig(page_props, "aboveTheFoldData", "id")]
    urls = [scanner.meta.get("og:url"), scanner.canonical, _dig(json_ld, "url")]
    for value in ids:
        if isinstance(value, str) and IMDB_ID.fullmatch(value.strip()):
            return value.strip()
    for value in urls:
        if isinstance(value, str) and (match := _TITLE_URL_ID.search(value)):
            return match.group(1)
    return scanner.hero.linked_id


def _from_next_data(data: Any) -> _Fields:
    """Fields from `props.pageProps.aboveTheFoldData` (genres also from mainColumnData)."""
    page_props = _dig(data, "props", "pageProps")
    above = _dig(page_props, "aboveTheFoldData") or _dig(page_props, "aboveTheFold")
    if not isinstance(above, dict):
        return _Fields()
    genres = _genre_texts(_dig(above, "genres", "genres")) or _genre_texts(
        _dig(page_props, "mainColumnData", "genres", "genres")
    )
    return _Fields(
        title=_text(_dig(above, "titleText", "text")) or _text(_dig(above, "originalTitleText", "text")),
        year=_year(_dig(above, "releaseYear", "year")),
        genres=genres,
        rating=_number(_dig(above, "ratingsSummary", "aggregateRating"), float),
        votes=_number(_dig(above, "ratingsSummary", "voteCount"), int),
        poster_url=_text(_dig(above, "primaryImage", "url")),
    )


def _from_json_ld(work: dict[str, Any] | None) -> _Fields:
    """Fields from the JSON-LD work; its strings are HTML-entity-escaped. No year here: see `_json_ld_year`."""
    if work is None:
        return _Fields()
    genre = work.get("genre")
    genres = [genre] if isinstance(genre, str) else genre if isinstance(genre, list) else []
    image = work.get("image")
    if isinstance(image, list):
        image = image[0] if image else None
    if isinstance(image, dict):
        image = image.get("url") or image.get("contentUrl")
    rating = work.get("aggregateRating")
    return _Fields(
        title=_unescaped(work.get("name")),
        year=_json_ld_year(work.get("datePublished")),
        genres=tuple(text for text in map(_unescaped, genres) if text),
        rating=_number(_dig(rating, "ratingValue"), float),
        votes=_number(_dig(rating, "ratingCount"), int),
        poster_url=_unescaped(image),
    )


def _json_ld_year(date_published: Any) -> int | None:
    """The year of `datePublished`, a regional release date: only a last resort for the year."""
    match = re.match(r"\s*(\d{4})(?:-|$)", date_published) if isinstance(date_published, str) else None
    return _year(int(match.group(1))) if match else None


def _from_og_meta(scanner: _PageScanner) -> _Fields:
    """Fields from og:title ("Title (1994) ⭐ 9.3 | Drama") or <title>, and og:image unless it is IMDb's logo."""
    image = scanner.meta.get("og:image", "").strip()
    og_title, page_title = scanner.meta.get("og:title", ""), scanner.page_title or ""
    title_text = og_title or (_PAGE_TITLE_SUFFIX.sub("", page_title) if len(page_title) <= MAX_TITLE_TEXT else "")
    title_text = title_text.strip() if len(title_text) <= MAX_TITLE_TEXT else ""
    match = _OG_TITLE_WITH_YEAR.match(title_text) or _OG_TITLE_WITHOUT_YEAR.match(title_text)
    parts = match.groupdict() if match else {}
    genres = parts.get("genres") or ""
    return _Fields(
        title=_text(parts.get("title")),
        year=_year(int(parts["year"])) if parts.get("year") else None,
        genres=tuple(genre.strip() for genre in genres.split(",") if genre.strip()),
        rating=_number(parts.get("rating"), float),
        poster_url=image if image and not _LOGO_IMAGE.search(image) else None,
    )


def _from_hero(hero: _HeroScanner) -> _Fields:
    """Fields from the visible hero section; genres only from chips in IMDb's genre vocabulary."""
    year_texts = hero.texts.get("inline_item", []) + hero.texts.get("release_link", [])
    years = (_year(int(match.group(1))) for text in year_texts if (match := _HERO_YEAR.fullmatch(text)))
    chips = (text for text in hero.texts.get("chip", []) if text in IMDB_GENRES)
    return _Fields(
        title=hero.first("title") or hero.first("heading"),
        year=next((year for year in years if year is not None), None),
        genres=tuple(dict.fromkeys(chips)),
        rating=_hero_rating(hero.first("score_value")),
        votes=parse_votes(hero.votes_text) if hero.votes_text else None,
        poster_url=_hero_poster_url(hero.poster_image),
    )


def _hero_rating(text: str | None) -> float | None:
    """The score span's "9.3" (or a localised "9,3"), if it is a rating out of 10."""
    rating = _number(text.replace(",", "."), float) if text else None
    low, high = _HERO_RATING_RANGE
    return rating if rating is not None and low <= rating <= high else None


def parse_votes(text: str) -> int | None:
    """A vote count as IMDb's hero shows it: "2.9M" -> 2_900_000, "850K" -> 850_000, "12,345" -> 12_345."""
    match = _HERO_VOTES.fullmatch(text.strip())
    if match is None:
        return None
    number = Decimal(match.group(1).replace(",", "")) * VOTE_SCALES[(match.group(2) or "").upper()]
    return int(number) if number == number.to_integral_value() else None


def _hero_poster_url(image: dict[str, str] | None) -> str | None:
    """The hero <img>'s largest srcset entry (else its src), at full size: a "._V1_…" suffix becomes "._V1_.jpg"."""
    if image is None:
        return None
    url = _largest_srcset_entry(image.get("srcset", "")) or image.get("src", "").strip()
    if not url or url.startswith("data:") or _LOGO_IMAGE.search(url):
        return None
    return _V1_SUFFIX.sub("._V1_.jpg", url)


def sized_poster_url(url: str, width: int) -> str:
    """The URL of a poster at `width` pixels wide: IMDb's `_V1_` modifiers replaced by `_V1_QL75_UX<width>_`."""
    suffix = f"._V1_QL75_UX{width}_.jpg"
    if _V1_MODIFIERS.search(url):
        return _V1_MODIFIERS.sub(suffix, url)
    stem, dot, extension = url.rpartition(".")
    return stem + suffix if dot and "/" not in extension and extension.lower() in ("jpg", "jpeg", "png") else url


def _largest_srcset_entry(srcset: str) -> str | None:
    """The URL with the largest width descriptor ("url 190w, url 380w"); URLs may contain commas ("CR0,0,190,281")."""
    entries = [(int(width), url.lstrip(",")) for url, width in _SRCSET_ENTRY.findall(srcset)]
    return max(entries)[1] if entries else None


def _json_ld_work(scripts: list[str]) -> dict[str, Any] | None:
    """The first JSON-LD object describing a title (scripts may hold lists or an @graph); None if none parses."""
    for script in scripts:
        for item in _json_ld_items(_load_json(script)):
            kind = item.get("@type")
            kinds = kind if isinstance(kind, list) else [kind]
            if any(isinstance(name, str) and name in _JSON_LD_WORK_TYPES for name in kinds):
                return item
    return None


def _json_ld_items(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, list):
        for item in data:
            yield from _json_ld_items(item)
    elif isinstance(data, dict):
        yield data
        yield from _json_ld_items(data.get("@graph"))


def _load_json(text: str | None) -> Any:
    if not text or not text.strip():
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _unescaped(value: Any) -> str | None:
    return _text(unescape(value)) if isinstance(value, str) else None


def _genre_texts(genres: Any) -> tuple[str, ...]:
    if not isinstance(genres, list):
        return ()
    texts = (_text(_dig(genre, "text") or _dig(genre, "id")) or _text(genre) for genre in genres)
    return tuple(text for text in texts if text)


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    """`value` as an int or a float (from a number or a numeric string), else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(str(value).replace(",", "").strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int of hundreds of digits
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    if kind is int:
        return int(number) if number.is_integer() and number >= 0 else None
    return number


def _year(value: Any) -> int | None:
    year = _number(value, int)
    return year if year is not None and _YEAR_RANGE[0] <= year <= _YEAR_RANGE[1] else None

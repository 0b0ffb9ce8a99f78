"""The HTML scanning of a title page, on the standard library's html.parser: `_PageScanner` keeps the scripts,
the meta tags and the page's title, and `_HeroScanner` the visible hero section's title, year, rating, votes,
genres and poster (by their data-testid attributes), for scraper.title_page to read.

The pages come from the network, so nothing here grows with a hostile page faster than the page: the elements
followed nest at most MAX_DEPTH deep, at most MAX_OPEN_REGIONS regions collect text, each keeps at most
MAX_REGION_TEXT characters, and the scan stops (PageTooSlowError) once it has used PARSE_SECONDS of CPU, which also
bounds html.parser's own slow paths (Python 3.11's close() on many unclosed comments is quadratic)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser

from catalog.movie import IMDB_ID

_HERO_VOTES = re.compile(r"(\d+(?:,\d{3})*(?:\.\d+)?)\s*([KMB])?", re.IGNORECASE)
"""The hero's vote count: "2.9M", "850K", "12,345", "987"."""
_HERO_LINKED_ID = re.compile(rf"/title/({IMDB_ID.pattern})/(?:releaseinfo|ratings|mediaviewer|parentalguide)")
"""Links of the hero section to the title's own sub-pages, which name its id."""
_VOID_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
)
_RAW_TEXT_TAGS = frozenset({"script", "style", "template"})
_GENRE_CHIP_LISTS = frozenset({"interests", "genres", "storyline-genres"})
"""data-testid of the hero's interest chips (2024+), of the legacy genre chips, and of the storyline's genres."""
MAX_DEPTH = 256
"""Elements nested deeper than this are not followed (IMDb's pages nest about 30 deep); their tags are counted only."""
MAX_OPEN_REGIONS = 32
"""Regions of interest open at once; a page that opens more (unclosed links, say) has the rest ignored."""
MAX_REGION_TEXT = 4096
"""Characters of text a region keeps: titles, years, ratings and genre chips are short."""
PARSE_SECONDS = 2.0
"""The most CPU a page's scan may take (the scanning thread's own, so neither other threads holding the interpreter
nor other processes count); the pages that reach it are built to be slow, as the scan is linear otherwise."""


class PageTooSlowError(ValueError):
    """The page took longer than PARSE_SECONDS to scan: built to be slow, not a title page."""


@dataclass
class _Region:
    """An open element of interest in the hero section and the text seen inside it so far."""

    name: str
    depth: int
    text: list[str] = field(default_factory=list)
    size: int = 0  # characters in `text`, at most MAX_REGION_TEXT

    def add(self, text: str) -> None:
        if self.size < MAX_REGION_TEXT:
            kept = text[: MAX_REGION_TEXT - self.size]
            self.text.append(kept)
            self.size += len(kept)


class _HeroScanner:
    """Collects the visible hero section as `_PageScanner` parses: title, year items, rating score and the vote count
    after it, the poster <img>, genre chips, and the title id its links name. Ignores styled-components classes."""

    def __init__(self) -> None:
        self.texts: dict[str, list[str]] = {}
        """Text of each closed region, by region name, in page order."""
        self.poster_image: dict[str, str] | None = None
        self.votes_text: str | None = None
        self.linked_id: str | None = None
        self._stack: list[str] = []
        self._beyond = 0  # elements open below MAX_DEPTH, not followed
        self._open: list[_Region] = []
        self._after_heading = False
        self._inline_list_seen = False
        self._votes_until: int | None = None
        """While set, the vote count is the next count-like text before the stack is shallower than this."""

    def start(self, tag: str, values: dict[str, str]) -> None:
        if tag == "img" and self._inside("poster") and self.poster_image is None:
            self.poster_image = values
        if tag == "a" and self.linked_id is None and (match := _HERO_LINKED_ID.search(values.get("href", ""))):
            self.linked_id = match.group(1)
        if tag in _VOID_TAGS:
            return
        if len(self._stack) >= MAX_DEPTH:
            self._beyond += 1
            return
        names = self._regions_opened_by(tag, values)
        self._stack.append(tag)
        room = max(0, MAX_OPEN_REGIONS - len(self._open))
        self._open.extend(_Region(name, len(self._stack)) for name in names[:room])

    def _regions_opened_by(self, tag: str, values: dict[str, str]) -> list[str]:
        testid, classes = values.get("data-testid", ""), values.get("class", "").split()
        depth = len(self._stack) + 1
        names = []
        if tag == "span" and (testid == "hero__primary-text" or "hero__primary-text" in classes):
            names.append("title")
        if tag == "h1" and testid in ("hero__pageTitle", "hero-title-block__title"):
            names.append("heading")
        if tag == "ul" and self._opens_inline_list(testid, classes):
            names.append("inline_list")
        if tag == "li" and self._inside("inline_list", depth - 1):
            names.append("inline_item")
        if tag == "a" and "/releaseinfo" in values.get("href", ""):
            names.append("release_link")
        if testid == "hero-rating-bar__aggregate-rating__score":
            names.append("score")
        if tag == "span" and self._inside("score", depth - 1) and not self.texts.get("score_value"):
            names.append("score_value")
        if testid == "hero-media__poster":
            names.append("poster")
        if testid in _GENRE_CHIP_LISTS:
            names.append("chips")
        if tag == "a" and self._inside("chips"):
            names.append("chip")
        return names

    def _opens_inline_list(self, testid: str, classes: list[str]) -> bool:
        """The first inline list after the hero's <h1> (year, certificate, runtime), or the legacy metadata list."""
        first_after_heading = not self._inline_list_seen and self._after_heading and "ipc-inline-list" in classes
        if first_after_heading or testid == "hero-title-block__metadata":
            self._inline_list_seen = True
            return True
        return False

    def _inside(self, name: str, depth: int | None = None) -> bool:
        return any(region.name == name and depth in (None, region.depth) for region in self._open)

    def data(self, text: str) -> None:
        if self._stack and self._stack[-1] in _RAW_TEXT_TAGS:
            return
        for region in self._open:
            region.add(text)
        if self._votes_until is not None and _HERO_VOTES.fullmatch(text.strip()):
            self.votes_text = text.strip()
            self._votes_until = None

    def end(self, tag: str) -> None:
        if tag in _VOID_TAGS:  # html.parser ends <img/> and <br/> too; they were never counted nor followed
            return
        if self._beyond:
            self._beyond -= 1
            return
        if tag not in self._stack:
            return
        while self._stack.pop() != tag:
            pass
        depth = len(self._stack)
        for region in [region for region in self._open if region.depth > depth]:
            self._open.remove(region)
            self._close(region)
        if self._votes_until is not None and depth < self._votes_until:
            self._votes_until = None

    def _close(self, region: _Region) -> None:
        self.texts.setdefault(region.name, []).append(" ".join("".join(region.text).split()))
        if region.name == "heading":
            self._after_heading = True
        elif region.name == "score" and self.votes_text is None:
            self._votes_until = region.depth - 1

    def first(self, name: str) -> str | None:
        return next((text for text in self.texts.get(name, []) if text), None)


class _PageScanner(HTMLParser):
    """Collects the <meta>, <link rel=canonical>, <title> and <script> contents that hold a title's data."""

    def __init__(self, seconds: float | None = None) -> None:
        super().__init__(convert_charrefs=True)
        self._seconds = PARSE_SECONDS if seconds is None else seconds
        self._ends_at = time.thread_time() + self._seconds
        self.meta: dict[str, str] = {}
        self.canonical: str | None = None
        self.page_title: str | None = None
        self.next_data: str | None = None
        self.json_ld: list[str] = []
        self.hero = _HeroScanner()
        self._capture: str | None = None
        self._chunks: list[str] = []

    def _check_time(self) -> None:
        """Called on every token: html.parser calls back between the steps of its slow paths too."""
        if time.thread_time() > self._ends_at:
            raise PageTooSlowError(f"the page took more than {self._seconds:g} s to read")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check_time()
        values = {name: value or "" for name, value in attrs}
        self.hero.start(tag, values)
        if tag == "meta":
            key = values.get("property") or values.get("name")
            if key and "content" in values:
                self.meta.setdefault(key.lower(), values["content"])
        elif tag == "link" and "canonical" in values.get("rel", "").lower().split():
            self.canonical = self.canonical or values.get("href")
        elif tag == "title" and self.page_title is None:
            self._start_capture("title")
        elif tag == "script" and values.get("id") == "__NEXT_DATA__":
            self._start_capture("next_data")
        elif tag == "script" and values.get("type", "").lower() == "application/ld+json":
            self._start_capture("json_ld")

    def _start_capture(self, what: str) -> None:
        self._capture = what
        self._chunks = []

    def handle_data(self, data: str) -> None:
        self._check_time()
        self.hero.data(data)
        if self._capture is not None:
            self._chunks.append(data)

    def handle_comment(self, data: str) -> None:
        self._check_time()

    def handle_endtag(self, tag: str) -> None:
        self._check_time()
        self.hero.end(tag)
        if self._capture is None or tag not in ("title", "script"):
            return
        text = "".join(self._chunks)
        if self._capture == "title":
            self.page_title = text.strip()
        elif self._capture == "next_data":
            self.next_data = self.next_data or text
        else:
            self.json_ld.append(text)
        self._capture = None

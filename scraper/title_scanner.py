"""The HTML scanning of a title page, on the standard library's html.parser: `_PageScanner` keeps the scripts,
the meta tags and the page's title, and `_HeroScanner` the visible hero section's title, year, rating, votes,
genres and poster (by their data-testid attributes), for scraper.title_page to read."""

from __future__ import annotations

import re
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


@dataclass
class _Region:
    """An open element of interest in the hero section and the text seen inside it so far."""

    name: str
    depth: int
    text: list[str] = field(default_factory=list)


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
        names = self._regions_opened_by(tag, values)
        self._stack.append(tag)
        self._open.extend(_Region(name, len(self._stack)) for name in names)

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
            region.text.append(text)
        if self._votes_until is not None and _HERO_VOTES.fullmatch(text.strip()):
            self.votes_text = text.strip()
            self._votes_until = None

    def end(self, tag: str) -> None:
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

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.canonical: str | None = None
        self.page_title: str | None = None
        self.next_data: str | None = None
        self.json_ld: list[str] = []
        self.hero = _HeroScanner()
        self._capture: str | None = None
        self._chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
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
        self.hero.data(data)
        if self._capture is not None:
            self._chunks.append(data)

    def handle_endtag(self, tag: str) -> None:
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

"""What a scrape is asked to do (`ScrapeSettings`: genres, year ranges, titles per genre, delays, title pages,
poster width...) and what it did (`ScrapeReport`), with the parsers of the command line's genre and year lists."""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scraper.search import PAPER_GENRES, YearRange

TITLE_PAGE_MODES = ("off", "missing", "all")
"""Which title pages to read: none; those of movies whose search result gave no exact data (results loaded with
"50 more", whose votes the page only shows rounded and whose genres it does not show); or every movie's."""
STATE_FILE = ".scrape.sqlite"
DEFAULT_YEAR_RANGES: tuple[YearRange, ...] = (
    YearRange(1874, 1959),
    YearRange(1960, 1979),
    YearRange(1980, 1989),
    YearRange(1990, 1999),
    YearRange(2000, 2004),
    YearRange(2005, 2009),
    YearRange(2010, 2014),
    YearRange(2015, 2019),
    YearRange(2020, datetime.date.today().year + 1),
)
"""Where each genre's searches start; any range over the result cap is split further."""


@dataclass(frozen=True)
class ScrapeSettings:
    """What to scrape, from where, and how politely. `out` is the catalog directory; the progress file defaults to
    `out/.scrape.sqlite`."""

    out: Path
    base_url: str = "https://www.imdb.com"
    image_host_override: str | None = None
    """An origin ("http://127.0.0.1:8765") that serves IMDb's image hosts instead of them (replicas, tests)."""
    genres: tuple[str, ...] = PAPER_GENRES
    years: tuple[YearRange, ...] = DEFAULT_YEAR_RANGES
    per_genre: int = 12_000
    result_cap: int = 10_000
    """A search reporting more results than this is split by years: IMDb returns about 10,000 per query."""
    delay: float = 2.0
    """Seconds between page actions (page loads and "50 more" clicks)."""
    title_delay: float = 2.0
    poster_delay: float = 0.5
    title_pages: str = "off"
    poster_width: int = 300
    remote: str | None = None
    state: Path | None = None
    progress: bool = True
    retries: int = 3
    backoff: float = 2.0
    """Seconds before the first retry; doubled for each further one."""
    wait: float = 30.0
    """Seconds to wait for "50 more" to show new results."""
    page_timeout: float = 60.0
    seed: int | None = None
    """Seeds the jitter of the delays (tests)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        unknown = ", ".join(genre for genre in self.genres if genre not in PAPER_GENRES)
        if unknown or not self.genres:
            raise ValueError(f"unknown genre(s) {unknown or '(none)'}; choose from {', '.join(PAPER_GENRES)}")
        if not self.years or _overlapping(self.years):
            raise ValueError("year ranges must be given and must not overlap")
        if self.title_pages not in TITLE_PAGE_MODES:
            raise ValueError(f"title_pages must be one of {', '.join(TITLE_PAGE_MODES)}, not {self.title_pages!r}")
        if self.per_genre < 1 or self.result_cap < 1 or not 16 <= self.poster_width <= 4000:
            raise ValueError("per_genre and result_cap must be positive and poster_width between 16 and 4000")
        if min(self.delay, self.title_delay, self.poster_delay, self.backoff) < 0 or self.retries < 0:
            raise ValueError("delays, backoff and retries cannot be negative")
        if not re.match(r"https?://[^/]+$", self.base_url.rstrip("/")):
            raise ValueError(f"base_url must be an origin such as https://www.imdb.com, not {self.base_url!r}")

    @property
    def state_path(self) -> Path:
        return Path(self.state) if self.state is not None else self.out / STATE_FILE


@dataclass
class ScrapeReport:
    """What a scrape did. movies: rows of the catalog written (each has its poster); posters: poster files in it;
    downloaded: posters fetched by this run; missing_posters: titles IMDb shows without a poster, left out of the
    catalog; failed_posters: downloads that failed (retried by the next run); repeats: results of titles already
    recorded (found under another genre), merged; pages: page loads, "50 more" clicks and title pages of this run."""

    catalog: Path
    state: Path
    movies: int = 0
    posters: int = 0
    downloaded: int = 0
    missing_posters: int = 0
    failed_posters: int = 0
    repeats: int = 0
    pages: int = 0
    title_pages: int = 0
    searches_split: int = 0
    seconds: float = 0.0
    genres: dict[str, int] = field(default_factory=dict)
    """How many distinct titles each genre's searches found (over all runs)."""


def parse_year_ranges(text: str) -> tuple[YearRange, ...]:
    """ "1900-1969,1970-1989,2020" -> year ranges (a single year stands for itself)."""
    ranges = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        match = re.fullmatch(r"(\d{4})(?:\s*-\s*(\d{4}))?", part)
        if match is None:
            raise ValueError(f"bad year range {part!r}: expected YYYY-YYYY or YYYY")
        ranges.append(YearRange(int(match.group(1)), int(match.group(2) or match.group(1))))
    if not ranges:
        raise ValueError("no year ranges given")
    if _overlapping(ranges):
        raise ValueError(f"year ranges overlap: {text}")
    return tuple(ranges)


def _overlapping(ranges: Sequence[YearRange]) -> bool:
    ordered = sorted(ranges, key=lambda year_range: year_range.first)
    return any(later.first <= earlier.last for earlier, later in zip(ordered, ordered[1:], strict=False))


def parse_genres(text: str) -> tuple[str, ...]:
    """ "action,Sci-Fi" -> ("Action", "Sci-Fi"): the paper's genres, as IMDb spells them."""
    names = {genre.lower(): genre for genre in PAPER_GENRES}
    wanted = [piece.strip() for piece in text.split(",") if piece.strip()]
    unknown = [genre for genre in wanted if genre.lower() not in names]
    if unknown or not wanted:
        raise ValueError(f"unknown genre(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(PAPER_GENRES)}")
    return tuple(dict.fromkeys(names[genre.lower()] for genre in wanted))

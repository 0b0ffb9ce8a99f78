"""Drive one IMDb advanced title search in the browser: load the results page, read its items from the DOM (stable
`ipc-*`/`dli-*` classes only) and from `__NEXT_DATA__`, click "50 more" until enough are shown, and recognise IMDb's
bot wall. The parsing functions are pure and work without a browser."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import urlencode

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.remote.webdriver import WebDriver

from catalog.movie import IMDB_ID
from scraper.browser import first_line
from scraper.title_page import parse_votes as parse_shown_votes

log = logging.getLogger("scraper")

PAPER_GENRES: tuple[str, ...] = (
    "Action",
    "Adventure",
    "Animation",
    "Biography",
    "Comedy",
    "Crime",
    "Drama",
    "Family",
    "Fantasy",
    "History",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
"""The paper's 18 genres, as IMDb names them; catalogs keep these genres only, in this order."""
WALL_STATUSES = frozenset({202, 403, 405})
"""HTTP statuses of IMDb's bot wall: the AWS WAF challenge (202), CloudFront's refusal (403), the CAPTCHA (405)."""

T = TypeVar("T")
_INDEX_PREFIX = re.compile(r"^\s*\d+\.\s+")
_YEAR = re.compile(r"(\d{4})(?:\s*[–-]\s*(\d{4})?)?")
_RUNTIME = re.compile(r"(?:(\d+)h)?\s*(?:(\d+)m)?")
_RATING = re.compile(r"\d{1,2}(?:\.\d+)?")
_TOTAL = re.compile(r"(?:^|\s)\d[\d,]*\s*-\s*\d[\d,]*\s+of\s+(\d[\d,]*)")
_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")
_CHALLENGE_MARKERS = ("awswaf", "gokuprops", "challenge-container", "captcha", "human verification", "not a robot")
_FORBIDDEN_MARKERS = ("403 error", "403 forbidden", "request blocked", "the request could not be satisfied")

_READ_ITEMS_SCRIPT = """
const start = arguments[0], end = arguments[1];
const text = (node) => (node ? node.textContent : null);
return Array.from(document.querySelectorAll('li.ipc-metadata-list-summary-item')).slice(start, end).map((li) => {
  const link = li.querySelector('a.ipc-title-link-wrapper');
  const image = li.querySelector('img.ipc-image');
  return {
    href: link ? link.getAttribute('href') : null,
    title: text(li.querySelector('.ipc-title__text')),
    metadata: Array.from(li.querySelectorAll('.dli-title-metadata-item')).map((span) => span.textContent),
    rating: text(li.querySelector('.ipc-rating-star--rating')),
    votes: text(li.querySelector('.ipc-rating-star--voteCount')),
    poster: image ? image.getAttribute('src') : null,
  };
});
"""
_PAGE_STATE_SCRIPT = """
const button = document.querySelector('button.ipc-see-more__button');
return {
  count: document.querySelectorAll('li.ipc-metadata-list-summary-item').length,
  button: Boolean(button),
  error: button ? button.getAttribute('data-error') : null,
};
"""
_PAGE_SUMMARY_SCRIPT = """
const nextData = document.getElementById('__NEXT_DATA__');
const header = Array.from(document.querySelectorAll('main div, main span'))
  .map((node) => node.childElementCount === 0 ? node.textContent.trim() : '')
  .find((text) => /^\\d[\\d,]*\\s*-\\s*\\d[\\d,]*\\s+of\\s+\\d/.test(text));
return {
  nextData: nextData ? nextData.textContent : null,
  hasList: Boolean(document.querySelector('ul.ipc-metadata-list')),
  header: header || null,
  title: document.title,
  text: document.body ? document.body.innerText.slice(0, 2000) : '',
  html: document.documentElement.outerHTML.slice(0, 20000),
};
"""
_CLICK_SCRIPT = "arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();"


class ScrapeStoppedError(RuntimeError):
    """The scrape cannot go on for now (IMDb stopped answering as expected); progress is kept for a later run."""

    report: Any = None
    """The partial `ScrapeReport` of the run it stopped, once `scraper.scrape.scrape` has filled it in."""


class BotWall(ScrapeStoppedError):  # noqa: N818 (the name the issue gives it)
    """IMDb answered with its bot wall (AWS WAF challenge, CAPTCHA or 403); stop and come back later."""


class ItemError(ValueError):
    """A search result whose title link or title cannot be read."""


@dataclass(frozen=True)
class SearchItem:
    """What a search result says about a title. `exact` is False when the numbers come from the DOM alone, where
    votes are rounded ("2.9M") and genres are not shown; True when `__NEXT_DATA__` (or a title page) gave them."""

    imdb_id: str
    title: str
    year: int | None
    rating: float | None
    votes: int | None
    genres: tuple[str, ...]
    poster_url: str | None
    exact: bool


@dataclass(frozen=True)
class NextData:
    """The search page's `__NEXT_DATA__`: its items by id, the result total, and the cursor of its last item."""

    items: dict[str, SearchItem]
    total: int | None
    end_cursor: str | None


@dataclass(frozen=True)
class YearRange:
    """Release years `first` to `last`, both included."""

    first: int
    last: int

    def __post_init__(self) -> None:
        if not 1870 <= self.first <= self.last <= 2200:
            raise ValueError(
                f"bad year range {self.first}-{self.last}: expected FIRST-LAST with 1870 <= FIRST <= LAST <= 2200"
            )

    def __str__(self) -> str:
        return f"{self.first}-{self.last}" if self.first != self.last else str(self.first)

    def halves(self) -> tuple[YearRange, YearRange]:
        middle = (self.first + self.last) // 2
        return YearRange(self.first, middle), YearRange(middle + 1, self.last)


# -- parsing (pure) --------------------------------------------------------------------------------------------------


def genre_slug(genre: str) -> str:
    """The `genres=` value of a search URL: "Sci-Fi" -> "sci-fi"."""
    return genre.strip().lower()


def search_url(base_url: str, genre: str, years: YearRange | None = None) -> str:
    """The advanced title search for feature films of `genre` (released in `years`), most votes first."""
    params = {"title_type": "feature", "genres": genre_slug(genre), "sort": "num_votes,desc"}
    if years is not None:
        params["release_date"] = f"{years.first}-01-01,{years.last}-12-31"
    return f"{base_url.rstrip('/')}/search/title/?{urlencode(params, safe=',')}"


def strip_index(title: str) -> str:
    """A result's title without its running number: "51. Heat" -> "Heat" (only the first "N. " goes)."""
    return _INDEX_PREFIX.sub("", title, count=1).strip()


def parse_votes(text: str | None) -> int | None:
    """A vote count as results show it: " (2.9M)" -> 2_900_000, "(850K)" -> 850_000, "(1,234)" -> 1234; else None."""
    if not text:
        return None
    return parse_shown_votes(text.replace("\xa0", " ").replace(",", "").strip().strip("()"))


def parse_rating(text: str | None) -> float | None:
    """ "7.3" -> 7.3; None for anything that is not a rating between 1 and 10."""
    cleaned = (text or "").strip()
    if not _RATING.fullmatch(cleaned):
        return None
    rating = float(cleaned)
    return rating if 1.0 <= rating <= 10.0 else None


@dataclass(frozen=True)
class Metadata:
    """The metadata spans of a result, classified: they are positional, but the runtime or certificate may be absent."""

    year: int | None = None
    end_year: int | None = None
    runtime_minutes: int | None = None
    certificate: str | None = None


def classify_metadata(spans: Sequence[str]) -> Metadata:
    """Sort spans such as ("1994", "2h 22m", "R") or ("2013–2018", "TV-MA") into year, runtime and certificate."""
    found = Metadata()
    for span in (text.strip() for text in spans):
        if not span:
            continue
        if found.year is None and (match := _YEAR.fullmatch(span)):
            end = int(match.group(2)) if match.group(2) else None
            found = replace(found, year=int(match.group(1)), end_year=end)
        elif found.runtime_minutes is None and (match := _RUNTIME.fullmatch(span)) and any(match.groups()):
            found = replace(found, runtime_minutes=int(match.group(1) or 0) * 60 + int(match.group(2) or 0))
        elif found.certificate is None:
            found = replace(found, certificate=span)
    return found


def parse_dom_item(raw: Mapping[str, Any]) -> SearchItem:
    """A result read from the DOM (`href`, `title`, `metadata`, `rating`, `votes`, `poster` as the page has them).

    Raises ItemError when there is no title id in the link or no title."""
    match = IMDB_ID.search(str(raw.get("href") or ""))
    if match is None:
        raise ItemError(f"search result without a title link: {raw.get('href')!r}")
    title = strip_index(str(raw.get("title") or ""))
    if not title:
        raise ItemError(f"search result {match.group()} has no title")
    rating = parse_rating(raw.get("rating"))
    return SearchItem(
        imdb_id=match.group(),
        title=title,
        year=classify_metadata(raw.get("metadata") or ()).year,
        rating=rating,
        votes=parse_votes(raw.get("votes")) if rating is not None else None,
        genres=(),
        poster_url=(str(raw["poster"]).strip() or None) if raw.get("poster") else None,
        exact=False,
    )


def read_next_data(text: str | None) -> NextData | None:
    """The search page's `__NEXT_DATA__` (`props.pageProps.searchResults.titleResults`); None when it is missing,
    malformed or shaped otherwise, so that the caller falls back to the DOM."""
    try:
        data = json.loads(text) if text else None
        results = data["props"]["pageProps"]["searchResults"]["titleResults"]
        entries = results["titleListItems"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    if not isinstance(entries, list):
        return None
    items = {item.imdb_id: item for item in map(_next_data_item, entries) if item is not None}
    total = results.get("total")
    cursor = results.get("endCursor")
    return NextData(
        items=items,
        total=total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None,
        end_cursor=cursor if isinstance(cursor, str) else None,
    )


def _next_data_item(entry: Any) -> SearchItem | None:
    if not isinstance(entry, dict) or not IMDB_ID.fullmatch(str(entry.get("titleId", ""))):
        return None
    title = entry.get("titleText")
    if not isinstance(title, str) or not title.strip():
        return None
    summary = entry.get("ratingSummary") if isinstance(entry.get("ratingSummary"), dict) else {}
    rating = summary.get("aggregateRating")
    votes = summary.get("voteCount")
    genres = entry.get("genres") if isinstance(entry.get("genres"), list) else []
    image = entry.get("primaryImage") if isinstance(entry.get("primaryImage"), dict) else {}
    year = entry.get("releaseYear")
    return SearchItem(
        imdb_id=entry["titleId"],
        title=title.strip(),
        year=year if isinstance(year, int) and not isinstance(year, bool) else None,
        rating=parse_rating(str(rating)) if isinstance(rating, int | float) and not isinstance(rating, bool) else None,
        votes=votes if isinstance(votes, int) and not isinstance(votes, bool) and votes >= 0 else None,
        genres=tuple(genre for genre in genres if isinstance(genre, str) and genre),
        poster_url=image.get("url") if isinstance(image.get("url"), str) and image.get("url") else None,
        exact=True,
    )


def merge_item(dom: SearchItem, exact: SearchItem | None) -> SearchItem:
    """The DOM's item completed by `__NEXT_DATA__`'s for the same title: exact votes, genres, the original poster."""
    if exact is None or exact.imdb_id != dom.imdb_id:
        return dom
    return SearchItem(
        imdb_id=dom.imdb_id,
        title=exact.title or dom.title,
        year=first_known(exact.year, dom.year),
        rating=first_known(exact.rating, dom.rating),
        votes=first_known(exact.votes, dom.votes),
        genres=exact.genres,
        poster_url=exact.poster_url or dom.poster_url,
        exact=True,
    )


def first_known(*values: T) -> T | None:
    """The first of `values` that is not None (a 0 counts), else None."""
    return next((value for value in values if value is not None), None)


def parse_total(header: str | None) -> int | None:
    """The result total of a header such as "1-50 of 34,567"."""
    match = _TOTAL.search(" " + (header or ""))
    return int(match.group(1).replace(",", "")) if match else None


def detect_wall(title: str, text: str, html: str) -> str | None:
    """How a page that is not the expected one looks like IMDb's bot wall, or None: an empty page (the AWS WAF
    challenge answers HTTP 202 with an empty body), a challenge or CAPTCHA page (HTTP 405), or a 403 page."""
    lowered = f"{title}\n{text}\n{html}".lower()
    if any(marker in lowered for marker in _CHALLENGE_MARKERS):
        return "a CAPTCHA or challenge page (HTTP 405, x-amzn-waf-action: captcha)"
    if any(marker in lowered for marker in _FORBIDDEN_MARKERS):
        return "a 403 Forbidden page"
    if not title.strip() and not text.strip():
        return "an empty page (HTTP 202 with x-amzn-waf-action: challenge)"
    return None


def wall_status(error: str | None) -> int | None:
    """The bot-wall status in an error text such as "HTTP 202 (x-amzn-waf-action: challenge)", else None."""
    match = _HTTP_STATUS.search(error or "")
    status = int(match.group(1)) if match else None
    return status if status in WALL_STATUSES or "x-amzn-waf-action" in (error or "") else None


# -- the browser side ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Patience:
    """How the search waits and retries: `retries` more tries after a failure, sleeping `backoff * 2**attempt`
    seconds (at most `max_backoff`) in between; `wait` seconds for "50 more" to show new results."""

    retries: int = 3
    backoff: float = 2.0
    max_backoff: float = 60.0
    wait: float = 30.0

    def pause(self, attempt: int, sleep: Callable[[float], None] = time.sleep) -> None:
        sleep(min(self.max_backoff, self.backoff * 2**attempt))


class SearchPage:
    """One search results page open in the browser. `load` opens it (raising BotWall or ScrapeStoppedError when IMDb
    does not answer with results), `items` reads results, `load_more` clicks "50 more"."""

    def __init__(self, driver: WebDriver, url: str, what: str, patience: Patience, before_action: Callable[[], None]):
        self.driver = driver
        self.url = url
        self.what = what
        """Names the search in messages, e.g. "the Drama search for 1990-1999"."""
        self.patience = patience
        self.before_action = before_action
        """Called before each page load or click: the polite delay."""
        self.next_data: NextData | None = None
        self.header_total: int | None = None

    @property
    def total(self) -> int | None:
        """The number of results IMDb reports for the search (it may return fewer: see the result cap)."""
        if self.next_data is not None and self.next_data.total is not None:
            return self.next_data.total
        return self.header_total

    def load(self) -> SearchPage:
        """Open the page (with retries and backoff) and read its `__NEXT_DATA__` and result total; itself."""
        failure = "no answer"
        for attempt in range(self.patience.retries + 1):
            if attempt:
                self.patience.pause(attempt - 1)
            try:
                self.before_action()
                self.driver.get(self.url)
                summary = self.driver.execute_script(_PAGE_SUMMARY_SCRIPT)
            except WebDriverException as error:  # time-outs included
                failure = f"the browser could not load it ({first_line(error)})"
                continue
            if summary["hasList"] or summary["nextData"]:
                self.next_data = read_next_data(summary["nextData"])
                self.header_total = parse_total(summary["header"])
                if self.next_data is None:
                    log.warning("%s: unreadable __NEXT_DATA__; reading the results from the page alone", self.what)
                return self
            wall = detect_wall(summary["title"] or "", summary["text"] or "", summary["html"] or "")
            if wall is not None:
                raise BotWall(f"IMDb's bot wall answered {self.what} with {wall}")
            failure = f"it is not a results page (title {summary['title']!r})"
        tries = self.patience.retries + 1
        raise ScrapeStoppedError(f"gave up on {self.what} at {self.url} after {tries} tries: {failure}")

    def count(self) -> int:
        return int(self._state()["count"])

    def has_more(self) -> bool:
        return bool(self._state()["button"])

    def items(self, start: int, end: int) -> list[tuple[SearchItem | None, str | None]]:
        """Results `start` to `end` (0-based, end excluded): each the item (completed by `__NEXT_DATA__` where it has
        the title) or None with the reason it could not be read."""
        raws = self.driver.execute_script(_READ_ITEMS_SCRIPT, start, end)
        exact = self.next_data.items if self.next_data is not None else {}
        read: list[tuple[SearchItem | None, str | None]] = []
        for raw in raws:
            try:
                item = parse_dom_item(raw)
            except ItemError as error:
                read.append((None, str(error)))
                continue
            read.append((merge_item(item, exact.get(item.imdb_id)), None))
        return read

    def load_more(self) -> bool:
        """Click "50 more" and wait for new results: True when some came, False when there is no button (all shown).

        Retries with backoff when nothing comes; raises BotWall when the page reports a bot-wall status for the
        request behind the button, ScrapeStoppedError when the retries run out."""
        last_error: str | None = None
        for attempt in range(self.patience.retries + 1):
            if attempt:
                self.patience.pause(attempt - 1)
            before = self._state()
            if not before["button"]:
                return False
            self.before_action()
            try:
                button = self.driver.find_element("css selector", "button.ipc-see-more__button")
                self.driver.execute_script(_CLICK_SCRIPT, button)
            except WebDriverException as error:
                last_error = first_line(error)
                continue
            after = self._wait_for_change(before["count"])
            if after["count"] > before["count"]:
                return True
            if not after["button"]:
                return False
            last_error = after["error"] or f"no new results within {self.patience.wait:g} s"
            if wall_status(after["error"]) is not None:
                raise BotWall(f"IMDb's bot wall answered the '50 more' request of {self.what} ({after['error']})")
        raise ScrapeStoppedError(
            f"the '50 more' button of {self.what} brought no new results after {self.patience.retries + 1} tries "
            f"(last: {last_error}); IMDb may be slowing down or walling off the scraper"
        )

    def _state(self) -> dict[str, Any]:
        return self.driver.execute_script(_PAGE_STATE_SCRIPT)

    def _wait_for_change(self, count: int) -> dict[str, Any]:
        deadline = time.monotonic() + self.patience.wait
        while True:
            state = self._state()
            if state["count"] > count or not state["button"] or state["error"] or time.monotonic() >= deadline:
                return state
            time.sleep(0.05)

"""The whole scrape, as in the paper: for each genre, IMDb's advanced title search for feature films by number of
votes, over release-year ranges (split in two while a range has more results than IMDb returns), until a number of
titles per genre; optional title pages; posters downloaded at a chosen width. Resumable from its SQLite progress
file, polite, and stopped cleanly by IMDb's bot wall; the catalog (`catalog` format) is rewritten after each genre."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import io
import logging
import random
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.remote.webdriver import WebDriver
from tqdm import tqdm

from catalog import Movie, OutputInUseError, check_writable, read_catalog, write_movies_csv, write_poster
from scraper.browser import (
    BROWSER_FAILURES,
    USER_AGENT,
    BrowserError,
    Pacer,
    browser_session,
    first_line,
    page_html,
)
from scraper.fetch import FetchError, SafeFetcher
from scraper.links import IMDB_IMAGE_HOSTS
from scraper.search import (
    PAPER_GENRES,
    WALL_STATUSES,
    BotWall,
    Patience,
    ScrapeStoppedError,
    SearchPage,
    detect_wall,
    search_url,
)
from scraper.settings import STATE_FILE, ScrapeReport, ScrapeSettings
from scraper.state import (
    POSTER_DIRECTORY,
    TITLE_PAGE,
    MovieRecord,
    ScrapeState,
    Search,
    check_state_file,
    poster_path,
)
from scraper.title_page import TitlePage, TitlePageError, read_title_page, sized_poster_url

__all__ = [
    "PAPER_GENRES",
    "BotWall",
    "OutputInUseError",
    "ScrapeBusyError",
    "ScrapeReport",
    "ScrapeSettings",
    "ScrapeStoppedError",
    "allocate_quotas",
    "check_out_directory",
    "remove_stale_temporaries",
    "scrape",
]

log = logging.getLogger("scraper")

LOCK_FILE = ".scrape.lock"
NOT_TRIED = ("pending",)
"""The posters a run fetches as it goes: a download that failed is tried again at the start of the next run, not
again and again in this one (each try waits out its retries)."""
_STALE_TEMPORARY = re.compile(r"^\..+\.tmp$")
_TITLE_PAGE_SUMMARY = "return [document.title, document.body ? document.body.innerText.slice(0, 2000) : '']"


class ScrapeBusyError(RuntimeError):
    """Another scrape is writing to the same catalog directory."""


# -- pure helpers ----------------------------------------------------------------------------------------------------


def allocate_quotas(capacities: Sequence[int], target: int) -> list[int]:
    """How many results to read from each of a genre's searches: all when they add up to at most `target`, else
    shares of `target` proportional to their sizes (largest remainders first), none over its capacity. Each search
    lists its titles by votes, so each contributes its most-voted ones, and no year range is favoured."""
    total = sum(capacities)
    if total <= target:
        return list(capacities)
    quotas = [target * capacity // total for capacity in capacities]
    remainders = [target * capacity % total for capacity in capacities]
    left = target - sum(quotas)
    for index in sorted(range(len(capacities)), key=lambda i: (-remainders[i], i)):
        if left == 0:
            break
        if quotas[index] < capacities[index]:
            quotas[index] += 1
            left -= 1
    return quotas


def jpeg_bytes(data: bytes) -> bytes:
    """`data` if it is a JPEG image, else the image re-encoded as one; ValueError when it is not a whole image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            image.load()
            if kind == "JPEG":
                return data
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=90)
            return buffer.getvalue()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"not a readable image ({error})") from error


def remove_stale_temporaries(directory: Path) -> int:
    """Delete the temporary files an interrupted run left while writing movies.csv or a poster; how many."""
    removed = 0
    for folder in (directory, directory / POSTER_DIRECTORY):
        if folder.is_dir():
            for path in folder.iterdir():
                if _STALE_TEMPORARY.match(path.name) and path.is_file():
                    path.unlink(missing_ok=True)
                    removed += 1
    return removed


def check_out_directory(settings: ScrapeSettings) -> None:
    """Raise OutputInUseError unless `settings.out` is missing, an empty directory, or an earlier scrape's catalog:
    one with its progress file (`.scrape.sqlite`, or the `--state` file given, which must exist, beside the
    `.scrape.lock` every scrape leaves). movies.csv is rewritten from the progress file, so a directory without it (a
    catalog this scrape did not write, or other files) would lose its movies.csv; it is refused before anything is
    created in it or fetched. Raises StateError when the progress file exists and is no scrape's (check_state_file).
    """
    check_state_file(settings.state_path)  # a directory, a CSV, another program's database: refused before the lock
    out = settings.out
    if not out.exists() and not out.is_symlink():
        check_writable(out)  # OutputNotWritableError: a place the file system refuses, said before the run starts
        return
    if not out.is_dir():  # a file, or a link to one or to nothing (a link to a directory is judged by it)
        raise OutputInUseError(f"{out} exists and is not a directory: choose a new or empty directory for the catalog")
    names = {path.name for path in out.iterdir()}
    if not names - {LOCK_FILE}:  # empty, or only the lock of a scrape that stopped before writing anything
        return
    if settings.state is None:
        if settings.state_path.is_file():
            return
        why = f"no {STATE_FILE}"
    elif not settings.state_path.is_file():
        why = f"its progress file {settings.state_path} does not exist"
    elif LOCK_FILE in names:
        return
    else:
        why = f"no {LOCK_FILE}"
    raise OutputInUseError(
        f"{out} holds files and is not an earlier scrape's catalog ({why}), so it is not written to (a scrape "
        "rewrites movies.csv from its progress): choose a new or empty directory, or remove it yourself"
    )


@contextlib.contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """Hold `directory/.scrape.lock` (released by the system even when the process is killed)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / LOCK_FILE).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ScrapeBusyError(f"another scrape is writing to {directory}; wait for it to finish") from None
        yield


# -- the run ---------------------------------------------------------------------------------------------------------


def scrape(settings: ScrapeSettings) -> ScrapeReport:
    """Scrape IMDb (or a replica) into the catalog directory `settings.out`, resuming any earlier run recorded in
    the progress file. Raises BotWall or ScrapeStoppedError (progress saved: run again later), ScrapeBusyError,
    StateError, BrowserError, OutputInUseError (`out` is not an earlier scrape's catalog: check_out_directory);
    KeyboardInterrupt passes through after the progress and the catalog are saved."""
    started = time.monotonic()
    out = settings.out
    check_out_directory(settings)  # before the lock file, the progress file or the browser touch anything
    with _exclusive(out), ScrapeState(settings.state_path) as state:
        state.check_years(settings.years)
        if removed := remove_stale_temporaries(out):
            log.info("removed %d temporary file(s) left by an interrupted run", removed)
        if gone := state.recheck_poster_files(out):
            log.info("%d downloaded poster(s) are gone from %s; downloading them again", gone, out)
        report = ScrapeReport(catalog=out, state=state.path)
        run = _Run(settings, state, report)
        try:
            with run.browser:  # started the first time a page is needed (a rerun may need none); closed here
                run.all_genres()
        except BROWSER_FAILURES as error:  # a chromedriver or Grid gone mid-run too
            stopped = ScrapeStoppedError(f"the browser failed: {first_line(error)}")
            raise run.stopped(stopped, started) from error
        except ScrapeStoppedError as error:
            raise run.stopped(error, started) from error
        except KeyboardInterrupt:
            run.finish(started)
            raise
        except BrowserError:
            if report.downloaded:  # posters fetched before the browser was first needed: into the catalog
                run.write_catalog()
            raise
        run.finish(started, validate=True)
        return report


class _Run:
    """One run of the scraper over the genres, sharing the browser, the fetcher, the pacing and the report."""

    def __init__(self, settings: ScrapeSettings, state: ScrapeState, report: ScrapeReport) -> None:
        self.settings = settings
        self.state = state
        self.report = report
        rng = random.Random(settings.seed)
        self.page_pacer = Pacer(settings.delay, rng)
        self.title_pacer = Pacer(settings.title_delay, rng)
        self.poster_pacer = Pacer(settings.poster_delay, rng)
        self.patience = Patience(retries=settings.retries, backoff=settings.backoff, wait=settings.wait)
        override = settings.image_host_override
        self.fetcher = SafeFetcher(
            IMDB_IMAGE_HOSTS,
            overrides={host: override for host in IMDB_IMAGE_HOSTS} if override else None,
            user_agent=USER_AGENT,
        )
        self.browser = contextlib.ExitStack()
        """Holds the browser session once one is started; closing it quits the browser."""
        self.current: tuple[Search, SearchPage] | None = None
        """The search page the browser shows, while it shows one."""

    @functools.cached_property
    def driver(self) -> WebDriver:
        """The browser, started the first time the run needs a page: a run with only posters left to fetch (or
        nothing left at all) starts none. Start-up errors are raised here, inside `scrape`'s handling of them."""
        session = browser_session(self.settings.remote, page_timeout=self.settings.page_timeout, user_agent=USER_AGENT)
        return self.browser.enter_context(session)

    # -- outcome -----------------------------------------------------------------------------------------------------

    def write_catalog(self) -> list[Movie]:
        """(Re)write movies.csv from the progress file: every movie whose poster is downloaded; those movies."""
        movies = self.state.catalog_movies()
        write_movies_csv(self.settings.out, movies)
        return movies

    def finish(self, started: float, *, validate: bool = False) -> None:
        """Write the catalog, fill in the report, and (validate) read the catalog back as `catalog` would."""
        movies = self.write_catalog()
        written = len(movies)
        counts = self.state.poster_counts()
        self.report.movies = written
        self.report.posters = sum((self.settings.out / movie.poster).is_file() for movie in movies)
        self.report.missing_posters = counts["missing"]
        self.report.failed_posters = counts["failed"] + counts["pending"]
        self.report.genres = {genre: self.state.found_count(genre) for genre in self.settings.genres}
        self.report.seconds = round(time.monotonic() - started, 2)
        if validate and written:
            read_catalog(self.settings.out)

    def stopped(self, error: ScrapeStoppedError, started: float) -> ScrapeStoppedError:
        """The error to raise for a stop: the same kind, saying where the progress is and how to resume."""
        self.finish(started)
        message = f"{error}; progress is saved in {self.state.path}; run the same command later to resume"
        stopped = type(error)(message)
        stopped.report = self.report
        return stopped

    # -- genres and searches -----------------------------------------------------------------------------------------

    def all_genres(self) -> None:
        self.fetch_posters(self.state.posters_to_fetch())  # left pending by an interrupted run
        for genre in self.settings.genres:
            self.genre(genre)
            self.write_catalog()  # a valid catalog of what is done so far, whatever happens next
        self.fetch_posters(self.state.posters_to_fetch(statuses=NOT_TRIED))

    def genre(self, genre: str) -> None:
        """Scrape one genre: size its searches up, read their results up to the genre's quota, title pages, posters.
        Its progress bar counts the titles read out of the genre's target (or of all its results when fewer)."""
        self.state.add_searches(genre, self.settings.years)
        with tqdm(
            desc=f"{genre:<9}", unit=" titles", disable=not self.settings.progress, dynamic_ncols=True, leave=True
        ) as bar:
            self.survey(genre, bar)
            while (step := self.next_search(genre, bar)) is not None:
                self.page_through(*step, bar=bar)
            if self.settings.title_pages != "off":
                self.visit_title_pages(genre, bar)
            self.fetch_posters(self.state.posters_to_fetch(genre=genre, statuses=NOT_TRIED), bar)

    def survey(self, genre: str, bar: tqdm) -> None:
        """Load each new search once for its total; split those over the result cap into halves by years."""
        cap = self.settings.result_cap
        while searches := self.state.searches(genre, ("new",)):
            for search in searches:
                bar.set_postfix_str(f"sizing up the search for {search.years}")
                page = self.open(search)
                total = page.total if page.total is not None else (None if page.has_more() else page.count())
                if total is not None and total > cap and search.years.first < search.years.last:
                    halves = self.state.split(search, total)
                    self.report.searches_split += 1
                    log.info("%s %s: %s results, over the cap of %s; split into %s and %s", genre, search.years,
                             f"{total:,}", f"{cap:,}", *halves)  # fmt: skip
                    continue
                if total is not None and total > cap:
                    log.warning("%s %s: %s results but IMDb returns about %s per search; the rest is out of reach",
                                genre, search.years, f"{total:,}", f"{cap:,}")  # fmt: skip
                if total is None:
                    log.warning("%s %s: the page does not say how many results there are", genre, search.years)
                self.state.set_total(search, total)
        bar.set_postfix_str("")

    def next_search(self, genre: str, bar: tqdm) -> tuple[Search, int] | None:
        """The next search to read results from and how many to read, from quotas over all the genre's searches."""
        leaves = self.state.searches(genre, ("open", "exhausted"))
        cap = self.settings.result_cap
        capacities = [
            leaf.seen if leaf.status == "exhausted" else min(cap, leaf.total if leaf.total is not None else cap)
            for leaf in leaves
        ]
        quotas = allocate_quotas(capacities, self.settings.per_genre)
        done = sum(min(leaf.seen, quota) for leaf, quota in zip(leaves, quotas, strict=True))
        bar.total = sum(quotas)
        bar.update(max(0, done - bar.n))
        for leaf, quota in zip(leaves, quotas, strict=True):
            if leaf.status == "open" and leaf.seen < quota:
                return leaf, quota
        return None

    def page_through(self, search: Search, quota: int, *, bar: tqdm) -> None:
        """Read `search`'s results from where it stopped up to `quota`, clicking "50 more" as needed."""
        page = self.page_for(search)
        position = search.seen
        while position < quota:
            shown = page.count()
            if position < shown:
                end = min(shown, quota)
                self.record(search, page, position, end)
                bar.update(end - position)
                position = end
            elif not page.load_more():
                self.state.mark_exhausted(search, position)
                return

    def page_for(self, search: Search) -> SearchPage:
        if self.current is not None and (self.current[0].genre, self.current[0].years) == (search.genre, search.years):
            return self.current[1]
        return self.open(search)

    def open(self, search: Search) -> SearchPage:
        url = search_url(self.settings.base_url, search.genre, search.years)
        what = f"the {search.genre} search for {search.years}"
        self.current = None
        page = SearchPage(self.driver, url, what, self.patience, self.before_page_action).load()
        self.current = (search, page)
        return page

    def before_page_action(self) -> None:
        self.page_pacer.wait()
        self.report.pages += 1

    def record(self, search: Search, page: SearchPage, start: int, end: int) -> None:
        records = []
        for item, problem in page.items(start, end):
            if item is None:
                log.warning("%s: skipped a result: %s", page.what, problem)
            else:
                records.append(MovieRecord.from_item(item))
        recorded = self.state.record(search, records, end)
        self.report.repeats += recorded.repeats
        self.fetch_posters(self.state.posters_to_fetch(ids=recorded.new_ids, statuses=NOT_TRIED))

    # -- title pages -------------------------------------------------------------------------------------------------

    def visit_title_pages(self, genre: str, bar: tqdm) -> None:
        ids = self.state.title_page_candidates(genre, only_inexact=self.settings.title_pages == "missing")
        self.current = None
        for number, imdb_id in enumerate(ids, start=1):
            bar.set_postfix_str(f"title pages {number}/{len(ids)}", refresh=True)
            page = self.read_title(imdb_id)
            if page is not None:
                record = MovieRecord(
                    imdb_id, page.title, page.year, page.rating, page.votes, page.genres, page.poster_url, TITLE_PAGE
                )
                self.state.record_movie(record)
        bar.set_postfix_str("")

    def read_title(self, imdb_id: str) -> TitlePage | None:
        """The title page of `imdb_id` read, or None (with a warning) when it cannot be; BotWall on the wall."""
        url = f"{self.settings.base_url.rstrip('/')}/title/{imdb_id}/"
        driver = self.driver  # started out here: a browser that fails to start is no page to try again
        problem = "no answer"
        for attempt in range(self.settings.retries + 1):
            if attempt:
                self.patience.pause(attempt - 1)
            self.title_pacer.wait()
            self.report.pages += 1
            self.report.title_pages += 1
            try:
                driver.get(url)
                html = page_html(driver)
                return read_title_page(html, imdb_id)
            except TitlePageError as error:
                title, text = driver.execute_script(_TITLE_PAGE_SUMMARY)
                wall = detect_wall(title or "", text or "", html)
                if wall is not None:
                    raise BotWall(f"IMDb's bot wall answered the title page of {imdb_id} with {wall}") from error
                if "404" in (title or ""):
                    log.warning("%s: IMDb has no title page for it (404); keeping what the search showed", imdb_id)
                    return None
                problem = str(error)
            except WebDriverException as error:
                problem = first_line(error)
        log.warning("%s: could not read its title page (%s); keeping what the search showed", imdb_id, problem)
        return None

    # -- posters -----------------------------------------------------------------------------------------------------

    def fetch_posters(self, wanted: Sequence[tuple[str, str]], bar: tqdm | None = None) -> None:
        for imdb_id, url in wanted:
            status = self.download_poster(imdb_id, url)
            self.state.set_poster(imdb_id, status)
            if status == "done":
                self.report.downloaded += 1
                if bar is not None:
                    bar.set_postfix(posters=self.report.downloaded, refresh=False)

    def download_poster(self, imdb_id: str, url: str) -> str:
        """Download one poster at the chosen width into the catalog: its new status ("done", "missing" when IMDb
        has none, "failed" after the retries). BotWall when the image host answers with the bot wall."""
        sized = sized_poster_url(url, self.settings.poster_width)
        problem = "no answer"
        for attempt in range(self.settings.retries + 1):
            if attempt:
                self.patience.pause(attempt - 1)
            self.poster_pacer.wait()
            try:
                response = self.fetcher.get(sized, accept="image/avif,image/webp,image/*,*/*;q=0.8")
            except FetchError as error:
                if error.kind in ("forbidden_host", "bad_scheme", "private_address"):
                    log.warning("%s: not downloading its poster: %s", imdb_id, error.message)
                    return "failed"
                problem = error.message
                continue
            if response.status in WALL_STATUSES:
                raise BotWall(f"IMDb's bot wall answered the poster download of {imdb_id} with HTTP {response.status}")
            if response.status in (404, 410):
                log.warning("%s: IMDb has no poster at %s (HTTP %d); left out of the catalog", imdb_id, sized,
                            response.status)  # fmt: skip
                return "missing"
            if response.status != 200:
                problem = f"HTTP {response.status}"
                continue
            try:
                data = jpeg_bytes(response.body)
            except ValueError as error:
                problem = str(error)
                continue
            write_poster(self.settings.out, poster_path(imdb_id), data)
            return "done"
        log.warning("%s: could not download its poster from %s (%s); the next run tries again", imdb_id, sized,
                    problem)  # fmt: skip
        return "failed"

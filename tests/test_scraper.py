"""The IMDb scraper: its pure parsing and bookkeeping without a browser, then the real scraper in real headless
Chromium against the offline replica on loopback: a full scrape reproduces the replica, a killed scrape resumes with
no duplicate and no broken poster, the bot wall (202, 403, CAPTCHA) stops it cleanly with progress saved, slow and
malformed answers, the per-genre target and the splitting of searches by years, and a Selenium Grid (--remote)."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from catalog import Catalog, Movie, OutputInUseError, read_catalog, write_catalog
from scraper.browser import BrowserError, Pacer, page_html
from scraper.scrape import (
    BotWall,
    ScrapeBusyError,
    ScrapeSettings,
    ScrapeStoppedError,
    allocate_quotas,
    check_out_directory,
    jpeg_bytes,
    remove_stale_temporaries,
    scrape,
)
from scraper.search import (
    PAPER_GENRES,
    ItemError,
    SearchItem,
    YearRange,
    classify_metadata,
    detect_wall,
    merge_item,
    parse_dom_item,
    parse_rating,
    parse_total,
    parse_votes,
    read_next_data,
    search_url,
    strip_index,
    wall_status,
)
from scraper.settings import parse_genres, parse_year_ranges
from scraper.state import (
    DOM,
    NEXT_DATA,
    TITLE_PAGE,
    MovieRecord,
    ScrapeState,
    StateError,
    catalog_genres,
    merge_records,
)
from scraper.title_page import sized_poster_url
from tests.conftest import popen_interruptible
from tests.test_faults import worker_pids
from tools.replica import FailureModes, ReplicaServer, replica_movies
from tools.replica.search import _CAPTCHA_PAGE, _FORBIDDEN_PAGE

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
PAGE_SIZE, CAP, WIDTH = 10, 30, 300
YEARS = (YearRange(1950, 2020),)
in_browser = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("CI"),
        reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
    ),
]


def browser_test(test: Callable) -> Callable:
    for mark in in_browser:
        test = mark(test)
    return test


# -- parsing ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "votes"),
    [("\xa0(2.9M)", 2_900_000), (" (850K)", 850_000), ("(850)", 850), ("(7.4K)", 7_400), ("(1,234)", 1_234),
     ("(1.2B)", 1_200_000_000), ("(3m)", 3_000_000), ("", None), (None, None), ("(lots)", None), ("(2.9X)", None)],
)  # fmt: skip
def test_parse_votes(text: str | None, votes: int | None) -> None:
    assert parse_votes(text) == votes


@pytest.mark.parametrize(
    ("text", "title"),
    [("51. Heat", "Heat"), ("1. 2. Fast", "2. Fast"), ("12. 1917", "1917"), ("Heat", "Heat"), ("  3.  Up ", "Up"),
     ("2001: A Space Odyssey", "2001: A Space Odyssey"), ("7.5 Seconds", "7.5 Seconds")],
)  # fmt: skip
def test_strip_index_removes_only_the_running_number(text: str, title: str) -> None:
    assert strip_index(text) == title


def test_classify_metadata_spans_that_may_be_missing() -> None:
    assert classify_metadata(["1994", "2h 22m", "R"]).__dict__ == {
        "year": 1994,
        "end_year": None,
        "runtime_minutes": 142,
        "certificate": "R",
    }
    assert classify_metadata(["2023", "1h 41m"]).certificate is None
    no_runtime = classify_metadata(["1999", "PG-13"])
    assert (no_runtime.year, no_runtime.runtime_minutes, no_runtime.certificate) == (1999, None, "PG-13")
    series = classify_metadata(["2013–2018", "45m", "TV-MA"])
    assert (series.year, series.end_year, series.runtime_minutes, series.certificate) == (2013, 2018, 45, "TV-MA")
    assert classify_metadata(["2h", "Not Rated"]).runtime_minutes == 120
    assert classify_metadata([]).year is None


def test_parse_rating() -> None:
    assert [parse_rating(text) for text in ("7.3", " 10 ", "0.5", "11", "", None, "n/a")] == [
        7.3,
        10.0,
        None,
        None,
        None,
        None,
        None,
    ]


RAW_ITEM = {
    "href": "/title/tt10366206/?ref_=sr_t_51",
    "title": '51. Jane\'s "Case" & Co',
    "metadata": ["2021", "2h 1m"],
    "rating": "7.4",
    "votes": "\xa0(105K)",
    "poster": "https://m.media-amazon.com/images/M/MV5Babc@._V1_QL75_UX140_CR0,1,140,207_.jpg",
}


def test_parse_dom_item_reads_what_the_dom_shows() -> None:
    item = parse_dom_item(RAW_ITEM)
    assert item == SearchItem(
        "tt10366206", 'Jane\'s "Case" & Co', 2021, 7.4, 105_000, (), RAW_ITEM["poster"], exact=False
    )
    unrated = parse_dom_item(RAW_ITEM | {"rating": None, "votes": None, "poster": None, "metadata": ["2h"]})
    assert (unrated.rating, unrated.votes, unrated.poster_url, unrated.year) == (None, None, None, None)
    with pytest.raises(ItemError, match="title link"):
        parse_dom_item(RAW_ITEM | {"href": "/name/nm0000001/"})
    with pytest.raises(ItemError, match="no title"):
        parse_dom_item(RAW_ITEM | {"title": "51. "})


def next_data_text(items: list[dict], total: int = 99) -> str:
    results = {"titleListItems": items, "total": total, "endCursor": "abc"}
    return json.dumps({"props": {"pageProps": {"searchResults": {"titleResults": results}}}})


def test_read_next_data_and_merge_it_with_the_dom() -> None:
    entry = {
        "titleId": "tt10366206",
        "titleText": 'Jane\'s "Case" & Co',
        "releaseYear": 2021,
        "ratingSummary": {"aggregateRating": 7.4, "voteCount": 105_432},
        "genres": ["Comedy", "Music"],
        "primaryImage": {"url": "https://m.media-amazon.com/images/M/MV5Babc@._V1_.jpg"},
    }
    data = read_next_data(next_data_text([entry, {"titleId": "nope"}, {"titleId": "tt1234567"}]))
    assert data is not None and (data.total, data.end_cursor, list(data.items)) == (99, "abc", ["tt10366206"])
    merged = merge_item(parse_dom_item(RAW_ITEM), data.items["tt10366206"])
    assert (merged.votes, merged.genres, merged.exact) == (105_432, ("Comedy", "Music"), True)
    assert merged.poster_url == entry["primaryImage"]["url"]
    assert merge_item(parse_dom_item(RAW_ITEM), None) == parse_dom_item(RAW_ITEM)
    unrated = read_next_data(next_data_text([entry | {"ratingSummary": {"aggregateRating": None, "voteCount": 0}}]))
    assert (unrated.items["tt10366206"].rating, unrated.items["tt10366206"].votes) == (None, 0)
    for broken in ("", "{", next_data_text([])[:-9], '{"props": {}}', "[1, 2]", "null"):
        assert read_next_data(broken) is None


def test_parse_total_and_search_urls() -> None:
    assert parse_total("1-50 of 34,567") == 34_567
    assert parse_total("1 - 12 of 12") == 12
    assert parse_total("No results") is None
    assert (
        search_url("https://www.imdb.com/", "Sci-Fi", YearRange(1990, 1999))
        == "https://www.imdb.com/search/title/?title_type=feature&genres=sci-fi&sort=num_votes,desc"
        "&release_date=1990-01-01,1999-12-31"
    )


@pytest.mark.parametrize(
    ("title", "text", "html", "wall"),
    [
        ("", "", "<html><head></head><body></body></html>", "empty page"),
        ("Human Verification", "Let's confirm you are human", _CAPTCHA_PAGE, "CAPTCHA"),
        ("", "", '<script src="https://x.token.awswaf.com/x/challenge.js"></script>', "CAPTCHA or challenge"),
        ("ERROR: The request could not be satisfied", "403 ERROR", _FORBIDDEN_PAGE, "403"),
        ("404 Error - IMDb", "404 Error The requested URL was not found", "<html>...</html>", None),
    ],
)
def test_detect_wall(title: str, text: str, html: str, wall: str | None) -> None:
    found = detect_wall(title, text, html)
    assert (found is None) if wall is None else (wall in found)


def test_wall_status_from_the_see_more_error() -> None:
    assert wall_status("HTTP 202 (x-amzn-waf-action: challenge)") == 202
    assert wall_status("HTTP 403") == 403 and wall_status("HTTP 405") == 405
    assert wall_status("HTTP 500") is None and wall_status("Failed to fetch") is None and wall_status(None) is None


def test_year_ranges_and_genres() -> None:
    assert parse_year_ranges("1900-1969, 1970-1989,2020") == (
        YearRange(1900, 1969),
        YearRange(1970, 1989),
        YearRange(2020, 2020),
    )
    assert YearRange(1950, 2020).halves() == (YearRange(1950, 1985), YearRange(1986, 2020))
    assert str(YearRange(2020, 2020)) == "2020" and str(YearRange(1950, 1985)) == "1950-1985"
    for bad in ("1990-1980", "1900-1950,1950-1960", "nineties", ""):
        with pytest.raises(ValueError):
            parse_year_ranges(bad)
    assert parse_genres("action, SCI-FI,action") == ("Action", "Sci-Fi")
    with pytest.raises(ValueError, match="unknown genre"):
        parse_genres("Action,Music")


def test_allocate_quotas() -> None:
    assert allocate_quotas([10, 20, 5], 100) == [10, 20, 5]
    assert allocate_quotas([30, 10], 8) == [6, 2]
    assert allocate_quotas([17, 16, 15], 7) == [3, 2, 2]
    assert allocate_quotas([], 5) == []
    rng = random.Random(0)
    for _ in range(300):
        capacities = [rng.randint(0, 50) for _ in range(rng.randint(1, 6))]
        target = rng.randint(1, 120)
        quotas = allocate_quotas(capacities, target)
        assert sum(quotas) == min(target, sum(capacities))
        assert all(0 <= quota <= capacity for quota, capacity in zip(quotas, capacities, strict=True))


def test_sized_poster_urls() -> None:
    base = "https://m.media-amazon.com/images/M/MV5BMTMx@._V1_"
    assert sized_poster_url(base + "QL75_UX140_CR0,1,140,207_.jpg", 300) == base + "QL75_UX300_.jpg"
    assert sized_poster_url(base + ".jpg", 500) == base + "QL75_UX500_.jpg"
    assert sized_poster_url(base.replace("@", "@@") + "FMjpg_UX1000_.jpg", 300).endswith("@@._V1_QL75_UX300_.jpg")
    assert sized_poster_url("https://m.media-amazon.com/images/M/tt0111161.jpg", 300).endswith(
        "/tt0111161._V1_QL75_UX300_.jpg"
    )


def test_jpeg_bytes_accepts_images_and_refuses_broken_ones() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 30), "red").save(buffer, format="JPEG")
    assert jpeg_bytes(buffer.getvalue()) == buffer.getvalue()
    png = io.BytesIO()
    Image.new("RGB", (20, 30), "blue").save(png, format="PNG")
    with Image.open(io.BytesIO(jpeg_bytes(png.getvalue()))) as converted:
        assert (converted.format, converted.size) == ("JPEG", (20, 30))
    for broken in (b"", b"<html>", buffer.getvalue()[: len(buffer.getvalue()) // 2]):
        with pytest.raises(ValueError, match="not a readable image"):
            jpeg_bytes(broken)


def test_remove_stale_temporaries(tmp_path: Path) -> None:
    (tmp_path / "posters").mkdir()
    stale = [tmp_path / ".movies.csv.x1.tmp", tmp_path / "posters" / ".tt9000001.jpg.y2.tmp"]
    kept = [tmp_path / "movies.csv", tmp_path / "posters" / "tt9000001.jpg", tmp_path / ".scrape.sqlite"]
    for path in stale + kept:
        path.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == 2
    assert [path.exists() for path in stale + kept] == [False, False, True, True, True]


def test_pacer_keeps_about_the_delay_between_actions() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(2.0, random.Random(1), clock=lambda: now[0], sleep=sleep)
    assert pacer.wait() == 0.0  # the first action goes at once
    now[0] += 0.5
    pause = pacer.wait()
    assert 1.1 <= pause <= 1.9 and slept == [pause]
    now[0] += 5
    assert pacer.wait() == 0.0  # time spent working counts toward the delay
    assert Pacer(0, random.Random(1)).wait() == 0.0
    with pytest.raises(ValueError):
        Pacer(-1, random.Random(1))


class _BlankSourceDriver:
    """chromedriver as it sometimes answers on a busy machine: an empty `page_source` for a page that is there."""

    page_source = ""

    def __init__(self, markup: str) -> None:
        self.markup = markup

    def execute_script(self, script: str) -> str:
        assert "outerHTML" in script
        return self.markup


def test_an_empty_page_source_is_read_again_from_the_document() -> None:
    markup = "<html><head><title>Alien (1979) - IMDb</title></head><body></body></html>"
    assert page_html(_BlankSourceDriver(markup)) == markup
    assert page_html(_BlankSourceDriver("")) == ""  # no markup either way: empty, as read_title_page expects


def test_settings_are_checked(tmp_path: Path) -> None:
    for changes in (
        {"genres": ("Music",)},
        {"years": (YearRange(1950, 2000), YearRange(2000, 2010))},
        {"title_pages": "some"},
        {"per_genre": 0},
        {"delay": -1},
        {"base_url": "https://www.imdb.com/search/"},
    ):
        with pytest.raises(ValueError):
            ScrapeSettings(out=tmp_path, **changes)
    assert ScrapeSettings(out=tmp_path).state_path == tmp_path / ".scrape.sqlite"


# -- the progress file -----------------------------------------------------------------------------------------------


def record(imdb_id: str, detail: int = NEXT_DATA, **changes) -> MovieRecord:
    fields = {
        "imdb_id": imdb_id,
        "title": "A Title",
        "year": 2001,
        "rating": 7.0,
        "votes": 1234,
        "genres": ("Drama",),
        "poster_url": f"https://m.media-amazon.com/images/M/{imdb_id}@._V1_.jpg",
        "detail": detail,
    }
    return MovieRecord(**(fields | changes))


def test_merge_records_prefers_exact_fields_and_unites_genres() -> None:
    dom = record("tt1234567", DOM, votes=1200, genres=(), rating=None, poster_url=None)
    exact = record("tt1234567", TITLE_PAGE, title="The Title", votes=1234, genres=("War", "Drama"), year=None)
    merged = merge_records(dom, exact)
    assert merged == replace(exact, year=2001)
    assert merge_records(exact, dom) == merged
    seen_first = replace(dom, poster_url="https://m.media-amazon.com/images/M/first._V1_.jpg")
    assert merge_records(seen_first, exact).poster_url == seen_first.poster_url  # its poster may be downloaded
    assert catalog_genres(["Music", "War", "Action", "Sci-Fi"]) == ("Action", "Sci-Fi", "War")


def test_state_records_batches_merges_repeats_and_writes_catalog_rows(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with ScrapeState(path) as state:
        state.check_years(YEARS)
        state.add_searches("Drama", YEARS)
        state.add_searches("Drama", (YearRange(1990, 1999),))  # ignored: the genre has its searches
        [drama] = state.searches("Drama")
        halves = state.split(drama, total=99)
        assert halves == (YearRange(1950, 1985), YearRange(1986, 2020))
        assert [search.years for search in state.searches("Drama", ("new",))] == list(halves)
        first = state.searches("Drama", ("new",))[0]
        state.set_total(first, 3)
        recorded = state.record(first, [record("tt0000001"), record("tt0000002", poster_url=None)], seen=2)
        assert recorded.new_ids == ("tt0000001", "tt0000002") and recorded.repeats == 0
        state.add_searches("War", YEARS)
        war = state.searches("War")[0]
        again = state.record(war, [record("tt0000001", DOM, genres=(), title="Other")], seen=1)
        assert again.new_ids == () and again.repeats == 1
        assert state.movie("tt0000001").title == "A Title"  # the DOM's sighting does not overwrite __NEXT_DATA__
        assert state.posters_to_fetch() == [("tt0000001", record("tt0000001").poster_url)]
        assert state.poster_counts() == {"pending": 1, "done": 0, "missing": 1, "failed": 0}
        state.set_poster("tt0000001", "done")
        assert state.catalog_movies() == [
            Movie("tt0000001", "A Title", 2001, ("Drama", "War"), 7.0, 1234, "posters/tt0000001.jpg")
        ]
        assert state.recheck_poster_files(tmp_path) == 1  # no file there: pending again
        state.record_movie(record("tt0000002", TITLE_PAGE, poster_url="https://m.media-amazon.com/images/M/x.jpg"))
        assert [imdb_id for imdb_id, _ in state.posters_to_fetch()] == ["tt0000001", "tt0000002"]
        assert state.title_page_candidates("Drama", only_inexact=False) == ["tt0000001"]
        assert state.title_page_candidates("War", only_inexact=True) == []
        assert (state.found_count("Drama"), state.found_ids("War")) == (2, {"tt0000001"})
        with pytest.raises(ValueError, match="unknown poster status"):
            state.set_poster("tt0000001", "lost")
    with ScrapeState(path) as state:  # everything was committed
        assert state.searches("Drama", ("open",))[0].seen == 2
        with pytest.raises(StateError, match="resume it with --years 1950-2020"):
            state.check_years((YearRange(1900, 2020),))


# -- the scraper against the replica, in headless Chromium -----------------------------------------------------------


@pytest.fixture(scope="module")
def catalog(demo_catalog_dir: Path) -> Catalog:
    """The replica's movie set over the session's demo posters (same ids and poster files, seed 1)."""
    return Catalog(demo_catalog_dir, replica_movies(120, seed=1))


@pytest.fixture(scope="module")
def bare(catalog: Catalog) -> str:
    """A title the replica shows without a poster: a top Comedy, so it is on a first page with __NEXT_DATA__."""
    comedies = sorted((m for m in catalog if "Comedy" in m.genres), key=lambda m: (-(m.votes or 0), m.imdb_id))
    return comedies[1].imdb_id


def replica(catalog: Catalog, bare: str, **failures) -> ReplicaServer:
    modes = FailureModes(no_poster=frozenset({bare}), **failures)
    return ReplicaServer(
        catalog, page_size=PAGE_SIZE, result_cap=CAP, failures=modes, require_browser_user_agent=True
    ).start()


@pytest.fixture
def imdb(catalog: Catalog, bare: str) -> Iterator[ReplicaServer]:
    server = replica(catalog, bare)
    yield server
    server.stop()


def settings(out: Path, server: ReplicaServer, **changes) -> ScrapeSettings:
    fields = {
        "out": out,
        "base_url": server.url,
        "image_host_override": server.url,
        "years": YEARS,
        "result_cap": CAP,
        "delay": 0.0,
        "title_delay": 0.0,
        "poster_delay": 0.0,
        "title_pages": "missing",
        "poster_width": WIDTH,
        "progress": False,
        "retries": 2,
        "backoff": 0.05,
        "wait": 15.0,
        "seed": 0,
    }
    return ScrapeSettings(**(fields | changes))


def cli(out: Path, server: ReplicaServer, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "scraper", "scrape", "--out", str(out), "--base-url", server.url,
        "--image-host-override", server.url, "--years", "1950-2020", "--result-cap", str(CAP), "--delay", "0",
        "--title-delay", "0", "--poster-delay", "0", "--title-pages", "missing", "--backoff", "0.05", *extra,
    ]  # fmt: skip


Row = tuple[str, int | None, tuple[str, ...], float | None, int | None]


def expected_rows(catalog: Catalog, bare: str, genres: tuple[str, ...] = PAPER_GENRES) -> dict[str, Row]:
    wanted = set(genres)
    return {
        movie.imdb_id: (movie.title, movie.year, movie.genres, movie.rating, movie.votes)
        for movie in catalog
        if wanted & set(movie.genres) and movie.imdb_id != bare
    }


def rows(directory: Path) -> dict[str, Row]:
    return {m.imdb_id: (m.title, m.year, m.genres, m.rating, m.votes) for m in read_catalog(directory)}


def check_posters(directory: Path, count: int) -> None:
    """Every poster of the catalog is a whole JPEG of the chosen width; no temporary file is left anywhere."""
    posters = sorted((directory / "posters").iterdir())
    assert len(posters) == count
    for path in posters:
        with Image.open(path) as image:
            assert (image.format, image.width) == ("JPEG", WIDTH)
            image.load()
    assert not [path for path in directory.rglob("*") if path.name.endswith(".tmp")]


@contextlib.contextmanager
def unusable_grid() -> Iterator[str]:
    """The address of a Selenium Grid that refuses every connection: a loopback port held (bound, not listening)
    while the block runs. A scrape given it as `remote` fails at once if it starts a browser, so one that finishes
    (or stops for another reason) has started none."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


def movies_in_state(directory: Path) -> int:
    try:
        with sqlite3.connect(f"file:{directory / '.scrape.sqlite'}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM movies WHERE poster = 'done'").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.fixture(scope="module")
def full_scrape(catalog: Catalog, bare: str, tmp_path_factory: pytest.TempPathFactory):
    """One complete scrape of the replica: (report, catalog directory, the replica's request counts and paths)."""
    out = tmp_path_factory.mktemp("scrapes") / "full"
    server = replica(catalog, bare)
    try:
        report = scrape(settings(out, server))
        return report, out, server.request_counts, server.requests
    finally:
        server.stop()


@browser_test
def test_a_full_scrape_reproduces_the_replica(full_scrape, catalog: Catalog, bare: str) -> None:
    report, out, counts, requests = full_scrape
    expected = expected_rows(catalog, bare)
    assert rows(out) == expected  # ids, titles, years, genres, ratings and exact votes
    check_posters(out, len(expected))
    assert (report.movies, report.posters, report.downloaded) == (119, 119, 119)
    assert report.missing_posters == 1 and report.failed_posters == 0
    assert report.repeats == sum(len(m.genres) for m in catalog) - len(catalog)  # found again under other genres
    assert report.searches_split == 3  # Comedy once, Drama twice (1950-2020 > 30, then 1986-2020 > 30)
    assert report.genres["Drama"] == sum("Drama" in m.genres for m in catalog)
    assert counts["graphql"] > 0 and 0 < report.title_pages < 60  # title pages only where "50 more" gave DOM data
    assert counts["image"] == 119 and all("._V1_QL75_UX300_.jpg" in path for path in requests if "/images/" in path)
    assert "release_date=1986-01-01,2003-12-31" in " ".join(requests)
    with ScrapeState(out / ".scrape.sqlite") as state:
        assert state.movie(bare) is not None and state.poster_counts()["missing"] == 1
    names = {path.name for path in out.iterdir()}
    assert {"movies.csv", "posters", ".scrape.sqlite"} <= names  # read_catalog ignores the progress file
    assert names <= {
        "movies.csv",
        "posters",
        ".scrape.sqlite",
        ".scrape.sqlite-wal",
        ".scrape.sqlite-shm",
        ".scrape.lock",
    }


@browser_test
def test_rerunning_a_finished_scrape_changes_nothing(full_scrape, imdb: ReplicaServer) -> None:
    """Nothing is left to load, so no browser is started either: the Grid it is given refuses any session."""
    _, out, _, _ = full_scrape
    before = (out / "movies.csv").read_bytes()
    with unusable_grid() as nowhere:
        report = scrape(settings(out, imdb, remote=nowhere))
    assert (out / "movies.csv").read_bytes() == before
    assert (report.downloaded, report.pages, imdb.request_counts) == (0, 0, {})


@browser_test
def test_a_resume_with_only_posters_left_starts_no_browser(full_scrape, imdb: ReplicaServer, tmp_path: Path) -> None:
    """Posters deleted from a finished scrape's catalog are downloaded again by the next run, which has no page to
    load and so starts no browser: the Grid it is given refuses any session."""
    out = tmp_path / "catalog"
    shutil.copytree(full_scrape[1], out)
    before = (out / "movies.csv").read_bytes()
    gone = sorted((out / "posters").iterdir())[:3]
    for path in gone:
        path.unlink()
    with unusable_grid() as nowhere:
        report = scrape(settings(out, imdb, remote=nowhere))
    assert (report.downloaded, report.pages, imdb.request_counts) == (3, 0, {"image": 3})
    assert (out / "movies.csv").read_bytes() == before
    check_posters(out, 119)


@browser_test
def test_a_killed_scrape_resumes_with_no_duplicate_and_no_broken_poster(
    full_scrape, imdb: ReplicaServer, tmp_path: Path
) -> None:
    """Two genres (42 movies, five of them found again under the other; Comedy's search split by years) keep the scrape
    busy long enough to be killed in the middle; the resumed scrape gives the uninterrupted full scrape's rows of
    those genres, no more, no less. The size is not what is tested: any genres that split and overlap show it."""
    out = tmp_path / "catalog"
    genres = ("Comedy", "Action")
    uninterrupted = {imdb_id: row for imdb_id, row in rows(full_scrape[1]).items() if set(genres) & set(row[2])}
    command = cli(out, imdb, "--genres", ",".join(genres), "--delay", "0.03", "--no-progress")
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while movies_in_state(out) < 20 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the scraper, its chromedriver and Chromium, mid-run
        process.communicate()
    done = movies_in_state(out)
    assert 20 <= done < len(uninterrupted), "the scraper should have been killed in the middle"
    half_written = out / "posters" / ".tt99000001.jpg.k1ll3d.tmp"  # what a kill during a poster write leaves
    half_written.write_bytes(b"\xff\xd8\xff\xe0 half a JPEG")

    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert summary["movies"] == summary["posters"] == len(uninterrupted) == 42
    assert "temporary file(s) left by an interrupted run" in rerun.stderr
    assert rows(out) == uninterrupted
    check_posters(out, 42)
    assert not half_written.exists()


@browser_test
def test_ctrl_c_saves_progress_and_says_how_to_resume(imdb: ReplicaServer, tmp_path: Path) -> None:
    out = tmp_path / "catalog"
    process = popen_interruptible(cli(out, imdb, "--delay", "0.05", "--no-progress"), cwd=ROOT, stderr=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while movies_in_state(out) < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130
    assert f"Interrupted: progress is saved in {out / '.scrape.sqlite'}; run the same command to resume" in stderr
    assert "Traceback" not in stderr
    assert len(read_catalog(out)) == movies_in_state(out) >= 10  # movies.csv written on the way out


@browser_test
def test_the_bot_wall_stops_the_run_cleanly_and_a_later_run_completes(
    catalog: Catalog, bare: str, imdb: ReplicaServer, tmp_path: Path
) -> None:
    out = tmp_path / "catalog"
    genres = ("Horror", "Western")  # the wall stops Horror; the later run finishes it, then goes on to Western
    imdb.configure(wall="challenge", wall_after=2)  # up after Horror's first page and its "50 more" (11 results)
    stopped = subprocess.run(cli(out, imdb, "--genres", ",".join(genres)), cwd=ROOT, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert stopped.returncode == 3
    assert re.search(
        r"Stopped: IMDb's bot wall answered .* with (an empty page \(HTTP 202|HTTP 202)", stderr := stopped.stderr
    )
    assert f"progress is saved in {out / '.scrape.sqlite'}; run the same command later to resume" in stderr
    assert "Traceback" not in stderr
    saved = movies_in_state(out)
    assert saved > 0 and len(read_catalog(out)) == saved  # the catalog so far is valid

    imdb.configure(wall=None)
    report = scrape(settings(out, imdb, genres=genres))
    assert rows(out) == expected_rows(catalog, bare, genres)
    assert report.downloaded == len(rows(out)) - saved
    check_posters(out, len(rows(out)))


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def descendants(pid: int) -> list[int]:
    """The processes under `pid` (Linux's /proc), children before their own."""
    found, queue = [], sorted(worker_pids(pid))
    while queue:
        found.append(queue.pop(0))
        queue += sorted(worker_pids(found[-1]))
    return found


@browser_test
@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds chromedriver in Linux's /proc")
def test_a_chromedriver_killed_mid_run_stops_the_scrape_with_its_progress_saved(
    imdb: ReplicaServer, tmp_path: Path
) -> None:
    """chromedriver gone in the middle of a run (killed, crashed, a Grid that went away) made Selenium's next command
    raise urllib3's error, a traceback with the catalog not rewritten: it is a stop like the browser's own failures,
    the catalog so far valid, the progress saved for the next run."""
    out = tmp_path / "catalog"
    stop_watching = threading.Event()

    def kill_chromedriver_after_two_posters() -> None:
        while not stop_watching.wait(0.02):
            if imdb.request_counts.get("image", 0) >= 2:
                drivers = [pid for pid in descendants(os.getpid()) if process_name(pid) == "chromedriver"]
                for pid in [*drivers, *(child for driver in drivers for child in descendants(driver))]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)  # its Chromium too: nobody would quit it
                if drivers:
                    return

    watcher = threading.Thread(target=kill_chromedriver_after_two_posters, daemon=True)
    watcher.start()
    try:
        with pytest.raises(ScrapeStoppedError, match=r"the browser failed: .*progress is saved in"):
            scrape(settings(out, imdb, genres=("Drama", "Comedy")))
    finally:
        stop_watching.set()
        watcher.join(10)
    saved = movies_in_state(out)
    assert saved >= 2 and len(read_catalog(out)) == saved  # the catalog so far is valid
    check_posters(out, saved)


@browser_test
def test_a_resumed_search_clicks_past_the_results_it_has(
    catalog: Catalog, bare: str, imdb: ReplicaServer, tmp_path: Path
) -> None:
    """One search of 26 Drama results (three pages; no split needed to show it) is stopped two pages into it."""
    out = tmp_path / "catalog"
    years = (YearRange(1986, 2003),)
    imdb.configure(wall="challenge", wall_after=2)  # up after the search and its first "50 more"
    with pytest.raises(BotWall):
        scrape(settings(out, imdb, genres=("Drama",), title_pages="off", years=years))
    with ScrapeState(out / ".scrape.sqlite") as state:
        seen = {str(search.years): search.seen for search in state.searches("Drama", ("open",))}
    assert seen["1986-2003"] == 2 * PAGE_SIZE  # stopped inside a search, two pages into it
    imdb.configure(wall=None)
    earlier = len(imdb.requests)
    scrape(settings(out, imdb, genres=("Drama",), title_pages="off", years=years))
    cursors = []
    for path in imdb.requests[earlier:]:
        if path.startswith("/graphql?"):
            variables = json.loads(parse_qs(urlsplit(path).query)["variables"][0])
            start = variables["releaseDateConstraint"]["releaseDateRange"]["start"]
            cursors.append((start, json.loads(base64.b64decode(variables["after"]))["resultIndex"] + 1))
    assert ("1986-01-01", 10) in cursors and ("1986-01-01", 20) in cursors  # "50 more" past the 20 it had
    dramas = {imdb_id for imdb_id, row in expected_rows(catalog, bare, ("Drama",)).items() if 1986 <= row[1] <= 2003}
    assert len(dramas) == 26 and set(rows(out)) == dramas  # read_catalog: no duplicate either


@browser_test
def test_a_walled_title_page_stops_the_run(catalog: Catalog, tmp_path: Path) -> None:
    westerns = [movie.imdb_id for movie in catalog if "Western" in movie.genres]
    with ReplicaServer(catalog, bot_wall=westerns, page_size=PAGE_SIZE, result_cap=CAP) as server:  # title pages only
        with pytest.raises(BotWall, match=r"answered the title page of tt\d+ with an empty page \(HTTP 202"):
            scrape(settings(tmp_path / "catalog", server, genres=("Western",), title_pages="all"))
        assert server.request_counts["title"] == 1  # no retries against the wall
    assert len(read_catalog(tmp_path / "catalog")) == len(westerns)  # what the search gave is kept


def test_two_scrapes_cannot_write_the_same_catalog(tmp_path: Path) -> None:
    out = tmp_path / "catalog"
    out.mkdir()
    with (out / ".scrape.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ScrapeBusyError, match=f"another scrape is writing to {out}"):
            scrape(ScrapeSettings(out=out))


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` (hidden ones too) and its bytes."""
    return {str(path.relative_to(directory)): path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def test_a_scrape_refuses_a_catalog_it_did_not_write(imdb: ReplicaServer, catalog: Catalog, tmp_path: Path) -> None:
    """`scrape --out` naming a catalog with no progress file (the demo catalog, a copy of the real one) rewrote its
    movies.csv from an empty progress file: a scrape that stopped at its first page left only the header. It is
    refused before anything is written there, a browser started or a page asked for; no browser is needed here."""
    out = tmp_path / "catalog"
    movies = catalog.movies[:3]
    write_catalog(out, movies, [(movie.poster, catalog.poster_path(movie).read_bytes()) for movie in movies])
    before = snapshot(out)
    refused = f"{out} holds files and is not an earlier scrape's catalog (no .scrape.sqlite)"
    with pytest.raises(OutputInUseError, match=re.escape(refused)):
        scrape(settings(out, imdb, genres=("Drama",)))
    result = subprocess.run(cli(out, imdb, "--genres", "Drama", "--no-progress"), cwd=ROOT, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1 and result.stdout == ""  # not even "Scraping ..."
    assert result.stderr.startswith(f"Error: {refused}") and result.stderr.count("\n") == 1  # one line
    assert snapshot(out) == before  # movies.csv byte for byte, the posters, and no .scrape.lock or .scrape.sqlite
    assert imdb.request_counts == {}


def test_the_command_line_refuses_a_file_as_the_catalog_directory(tmp_path: Path) -> None:
    a_file = tmp_path / "afile"
    a_file.write_text("mine")
    result = subprocess.run([sys.executable, "-m", "scraper", "scrape", "--out", str(a_file), "--no-progress"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1 and "Errno" not in result.stderr
    assert (
        result.stderr
        == f"Error: {a_file} exists and is not a directory: choose a new or empty directory for the catalog\n"
    )
    assert a_file.read_text() == "mine"


def make_tree(root: Path, names: tuple[str, ...]) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


@pytest.mark.parametrize(
    ("files", "state", "refused"),
    [
        (None, None, None),  # a new directory
        ((), None, None),  # an empty one
        ((".scrape.lock",), None, None),  # a scrape that stopped before it wrote anything
        ((".scrape.lock", ".scrape.sqlite", "movies.csv", "posters/tt0000001.jpg"), None, None),  # resumed
        ((".scrape.lock", "movies.csv", "elsewhere/progress.sqlite"), "elsewhere/progress.sqlite", None),  # --state
        (("movies.csv", "posters/tt0000001.jpg"), None, "(no .scrape.sqlite)"),  # a catalog it did not write
        (("notes.txt",), None, "(no .scrape.sqlite)"),  # anything else
        ((".scrape.lock", "movies.csv"), None, "(no .scrape.sqlite)"),  # its progress file deleted: all would go
        ((".scrape.lock", "movies.csv"), "progress.sqlite", "progress.sqlite does not exist)"),
        (("movies.csv", "elsewhere/progress.sqlite"), "elsewhere/progress.sqlite", "(no .scrape.lock)"),
    ],
)
def test_a_scrape_writes_only_a_new_or_empty_directory_or_its_own(
    tmp_path: Path, files: tuple[str, ...] | None, state: str | None, refused: str | None
) -> None:
    out = tmp_path / "catalog"
    if files is not None:
        out.mkdir()
        make_tree(out, files)
    wanted = ScrapeSettings(out=out, state=out / state if state else None)
    if refused is None:
        check_out_directory(wanted)
    else:
        with pytest.raises(OutputInUseError, match=re.escape(refused) + ", so it is not written to"):
            check_out_directory(wanted)


def test_a_file_or_a_dangling_link_is_no_catalog_directory(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for out in (tmp_path / "afile", tmp_path / "dangling"):
        with pytest.raises(OutputInUseError, match=f"{out} exists and is not a directory"):
            scrape(ScrapeSettings(out=out))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["afile", "dangling"]


@browser_test
@pytest.mark.parametrize(("wall", "message"), [("forbidden", "a 403 Forbidden page"), ("captcha", "a CAPTCHA")])
def test_403_and_captcha_pages_are_the_wall_too(imdb: ReplicaServer, tmp_path: Path, wall: str, message: str) -> None:
    imdb.configure(wall=wall, wall_after=0)
    with pytest.raises(BotWall, match=f"IMDb's bot wall answered the Drama search for 1950-2020 with {message}") as got:
        scrape(settings(tmp_path / "catalog", imdb, genres=("Drama",)))
    assert "progress is saved in" in str(got.value) and got.value.report.movies == 0
    assert imdb.request_counts["search"] == 1  # no retries against the wall


def record_pending_poster(out: Path, imdb: ReplicaServer, imdb_id: str) -> None:
    """The progress of a run interrupted after its first Drama result: the movie recorded, its poster pending."""
    with ScrapeState(out / ".scrape.sqlite") as state:
        state.check_years(YEARS)
        state.add_searches("Drama", YEARS)
        pending = record(imdb_id, poster_url=imdb.original_image_url(imdb_id))
        state.record(state.searches("Drama")[0], [pending], seen=1)


@browser_test
def test_a_walled_poster_download_stops_the_run(imdb: ReplicaServer, catalog: Catalog, tmp_path: Path) -> None:
    out = tmp_path / "catalog"
    movie = catalog.movies[0]
    record_pending_poster(out, imdb, movie.imdb_id)
    imdb.configure(wall="forbidden", wall_after=0)
    walled = f"the poster download of {movie.imdb_id} with HTTP 403"
    with unusable_grid() as nowhere, pytest.raises(BotWall, match=walled):
        scrape(settings(out, imdb, genres=("Drama",), remote=nowhere))  # the pending poster first: no browser yet
    assert imdb.request_counts == {"image": 1}


def test_a_browser_that_will_not_start_after_posters_were_fetched_leaves_them_in_the_catalog(
    imdb: ReplicaServer, catalog: Catalog, tmp_path: Path
) -> None:
    """The browser starts when the first page is needed, after the posters left pending are fetched: when it will
    not start (a "Grid" that is no Grid: the replica answers its new-session request with HTTP 501), the error is
    the same as before, and the poster this run downloaded is in the catalog. No browser is needed here."""
    out = tmp_path / "catalog"
    movie = catalog.movies[0]
    record_pending_poster(out, imdb, movie.imdb_id)
    with pytest.raises(BrowserError, match=re.escape(f"could not start the Selenium Grid at {imdb.url}")):
        scrape(settings(out, imdb, genres=("Drama",), remote=imdb.url))
    assert [found.imdb_id for found in read_catalog(out)] == [movie.imdb_id]
    check_posters(out, 1)


def test_a_grid_that_nothing_answers_at_is_a_browser_error(imdb: ReplicaServer, tmp_path: Path) -> None:
    """An unreachable --remote was urllib3's MaxRetryError, a traceback on the command line."""
    with unusable_grid() as nowhere, pytest.raises(BrowserError, match=re.escape(f"the Selenium Grid at {nowhere}")):
        scrape(settings(tmp_path / "catalog", imdb, genres=("Drama",), remote=nowhere))


@browser_test
def test_slow_see_more_answers_are_waited_for(catalog: Catalog, bare: str, tmp_path: Path) -> None:
    out = tmp_path / "catalog"
    server = replica(catalog, bare, graphql_latency=1.0)
    try:  # Horror: 11 results, the 11th behind "50 more"
        with pytest.raises(ScrapeStoppedError, match="'50 more' button of the Horror search .* brought no new") as got:
            scrape(settings(out, server, genres=("Horror",), wait=0.2, retries=1))
        assert not isinstance(got.value, BotWall) and "run the same command later to resume" in str(got.value)
        started = time.monotonic()
        scrape(settings(out, server, genres=("Horror",)))  # patient enough this time
        assert time.monotonic() - started >= 1.0 and server.request_counts["graphql"] >= 2
    finally:
        server.stop()
    assert rows(out) == expected_rows(catalog, bare, ("Horror",))


@browser_test
def test_pages_slower_than_the_page_timeout_are_retried_then_the_run_stops(imdb: ReplicaServer, tmp_path: Path) -> None:
    imdb.configure(delay=4.0)
    with pytest.raises(ScrapeStoppedError, match="gave up on the War search for 1950-2020 .* after 2 tries") as got:
        scrape(settings(tmp_path / "catalog", imdb, genres=("War",), page_timeout=1.5, retries=1))
    assert "could not load it" in str(got.value) and "run the same command later to resume" in str(got.value)
    # "after 2 tries" is the retry. A page time-out of 1.5 s leaves Chromium time to send its first request on a
    # loaded machine (at 0.5 s, with three test processes and a server on two cores, it once sent none); the second
    # try may still time out before its request goes out.
    assert 1 <= imdb.request_counts.get("search", 0) <= 2


@browser_test
def test_malformed_next_data_falls_back_to_the_dom(catalog: Catalog, bare: str, tmp_path: Path) -> None:
    out = tmp_path / "catalog"
    server = replica(catalog, bare, malformed_next_data=True)
    try:
        scrape(settings(out, server, genres=("Comedy",), title_pages="off"))
    finally:
        server.stop()
    expected = expected_rows(catalog, bare, ("Comedy",))
    got = rows(out)
    assert set(got) == set(expected)
    for imdb_id, (title, year, genres, rating, votes) in got.items():
        exact = expected[imdb_id]
        assert (title, year, rating) == (exact[0], exact[1], exact[3])
        assert genres == ("Comedy",)  # the DOM shows no genres: only the search's
        if rating is None:
            assert votes is None
        else:
            assert abs(votes - exact[4]) <= max(50, 0.05 * exact[4])  # rounded as shown: "7.4K", "105K"
    assert any(row[4] != expected[imdb_id][4] for imdb_id, row in got.items())


@browser_test
def test_the_per_genre_target_takes_the_most_voted_of_each_year_split(imdb: ReplicaServer, tmp_path: Path) -> None:
    out = tmp_path / "catalog"
    report = scrape(settings(out, imdb, genres=("Drama", "Western"), per_genre=7, title_pages="off"))
    western = imdb.search_results("Western")
    assert report.genres == {"Drama": 7, "Western": min(7, len(western))}
    with ScrapeState(out / ".scrape.sqlite") as state:
        leaves = state.searches("Drama", ("open", "exhausted"))
        assert [str(leaf.years) for leaf in leaves] == ["1950-1985", "1986-2003", "2004-2020"]
        quotas = allocate_quotas([leaf.total for leaf in leaves], 7)
        assert sum(quotas) == 7 and all(quotas)
        expected = {
            movie.imdb_id
            for leaf, quota in zip(leaves, quotas, strict=True)
            for movie in imdb.search_results("Drama", leaf.years.first, leaf.years.last)[:quota]
        }
        assert state.found_ids("Drama") == expected
    assert report.searches_split == 2 and imdb.request_counts.get("graphql", 0) == 0


@browser_test
def test_a_selenium_grid_with_remote_and_every_title_page(
    catalog: Catalog, bare: str, imdb: ReplicaServer, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    grid = subprocess.Popen([CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        report = scrape(settings(tmp_path / "catalog", imdb, genres=("Western", "War"), title_pages="all",
                                 remote=f"http://127.0.0.1:{port}"))  # fmt: skip
    finally:
        grid.terminate()
        grid.wait(timeout=10)
    expected = expected_rows(catalog, bare, ("Western", "War"))
    assert rows(tmp_path / "catalog") == expected
    assert report.title_pages == len(expected)
    # each page once, or again after a page-load time-out (seen once on a machine under heavy load)
    assert len(expected) <= imdb.request_counts["title"] <= 2 * len(expected)


def test_the_command_line_checks_its_options(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "scraper", "scrape", "--out", str(tmp_path / "x")]
    refused = [
        (["--years", "1990-1980"], "bad year range"),
        (["--years", "1800-1810"], "bad year range 1800-1810: expected FIRST-LAST with 1870 <= FIRST <= LAST <= 2200"),
        (["--genres", "Music"], "unknown genre"),
        (["--genres", ""], "unknown genre(s) (none)"),  # it meant all 18
        (["--backoff", "inf"], "'--backoff': inf is not in the range 0<=x<=3600"),  # it hung the first retry
        (["--delay", "nan"], "'--delay': 'nan' is not a number of seconds"),
    ]
    for extra, message in refused:
        result = subprocess.run(base + extra, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    unwritable = [*base[:4], "--out", "/proc/posterbench-scrape", "--base-url", "http://127.0.0.1:9"]
    result = subprocess.run(unwritable, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stdout == "", result.stdout  # no "Scraping ..." banner, then an errno
    assert result.stderr.strip() == (
        "Error: cannot write /proc/posterbench-scrape: /proc is not writable (No such file or directory)"
    )
    helped = subprocess.run(base[:4] + ["--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert all(option in helped.stdout for option in ("--remote", "--title-pages", "--per-genre", "--delay"))

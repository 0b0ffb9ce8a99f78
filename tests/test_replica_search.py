"""The offline replica of IMDb's advanced title search: page structure, `__NEXT_DATA__`, the GraphQL endpoint behind
"50 more" (also clicked in real headless Chromium), the result cap, `_V1_` poster sizes, failure modes, the replica's
movie set and its command line."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image

from catalog import Catalog, read_catalog
from scraper.search import PAPER_GENRES, read_next_data
from scraper.title_page import read_title_page
from tests.conftest import popen_interruptible
from tools.replica import (
    FailureModes,
    ReplicaServer,
    abbreviate_votes,
    poster_key,
    replica_movies,
    write_replica_catalog,
)

ROOT = Path(__file__).resolve().parents[1]
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
PAGE_SIZE, CAP = 10, 30
ITEM = '<li class="ipc-metadata-list-summary-item">'
needs_browser = pytest.mark.skipif(
    not (os.path.exists("/usr/bin/chromium") and os.path.exists("/usr/bin/chromedriver")) and not os.environ.get("CI"),
    reason="Debian's chromium and chromium-driver are not installed",
)


@pytest.fixture(scope="module")
def catalog(demo_catalog_dir: Path) -> Catalog:
    """The replica's movie set over the session's demo posters (same ids and poster files, seed 1)."""
    return Catalog(demo_catalog_dir, replica_movies(120, seed=1))


@pytest.fixture
def replica(catalog: Catalog):
    with ReplicaServer(catalog, page_size=PAGE_SIZE, result_cap=CAP) as server:
        yield server


def fetch(url: str, user_agent: str = BROWSER_UA) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"User-Agent": user_agent})
    try:
        with NO_PROXY.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def search(server: ReplicaServer, genre: str = "drama", extra: str = "") -> str:
    status, _, body = fetch(f"{server.url}/search/title/?title_type=feature&genres={genre}&sort=num_votes,desc{extra}")
    assert status == 200
    return body.decode("utf-8")


def graphql(server: ReplicaServer, variables: dict) -> tuple[int, dict]:
    url = f"{server.url}/graphql?operationName=AdvancedTitleSearch&variables={quote(json.dumps(variables))}"
    status, _, body = fetch(url)
    return status, json.loads(body)


def drama_variables(after: str | None, first: int = PAGE_SIZE) -> dict:
    return {
        "after": after,
        "first": first,
        "sortBy": "NUM_VOTES",
        "sortOrder": "DESC",
        "genreConstraint": {"allGenreIds": ["Drama"], "excludeGenreIds": []},
        "titleTypeConstraint": {"anyTitleTypeIds": ["movie"]},
    }


def next_data(html: str):
    return re.search(r'<script id="__NEXT_DATA__" type="application/json">(.*?)</script>', html, re.S).group(1)


def by_votes(movies) -> list:
    return sorted(movies, key=lambda movie: (-(movie.votes or 0), movie.imdb_id))


# -- search pages ----------------------------------------------------------------------------------------------------


def test_search_page_has_the_spec_structure_and_the_most_voted_results(replica, catalog) -> None:
    html = search(replica)
    dramas = by_votes(movie for movie in catalog if "Drama" in movie.genres)
    assert len(dramas) > CAP  # the replica's skew puts Drama over a small cap, so the scraper must split it
    assert html.count(ITEM) == PAGE_SIZE
    assert f"1-{PAGE_SIZE} of {len(dramas)}</div>" in html
    assert re.search(r'class="sc-[0-9a-f]{8}-\d+ \w+ dli-parent"', html) and "<!-- -->" in html
    assert 'class="ipc-see-more__text">10 more</span>' in html
    ids = re.findall(r'<a href="/title/(tt\d+)/\?ref_=sr_t_\d+" class="ipc-title-link-wrapper"', html)
    assert ids == [movie.imdb_id for movie in dramas[:PAGE_SIZE]]
    numbers = [int(n) for n in re.findall(r'<h3 class="ipc-title__text">(\d+)\. ', html)]
    assert numbers == list(range(1, PAGE_SIZE + 1))
    data = read_next_data(next_data(html))
    assert data is not None and data.total == len(dramas) and data.end_cursor
    first = dramas[0]
    assert data.items[first.imdb_id].votes == first.votes and data.items[first.imdb_id].genres == first.genres
    assert re.search(r"/images/M/MV5B[0-9A-F]{32}@{1,2}\._V1_QL75_UX140_CR0,1,140,207_\.jpg 140w", html)
    assert f"&nbsp;(<!-- -->{abbreviate_votes(first.votes)}<!-- -->)" in html


def test_count_release_date_and_an_empty_search(replica, catalog) -> None:
    assert search(replica, extra="&count=25").count(ITEM) == 25
    html = search(replica, extra="&release_date=1990-01-01,1999-12-31&count=250")
    nineties = [m for m in catalog if "Drama" in m.genres and 1990 <= (m.year or 0) <= 1999]
    assert html.count(ITEM) == len(nineties) and "ipc-see-more__button" not in html
    assert all(f"/title/{movie.imdb_id}/" in html for movie in nineties)
    empty = search(replica, extra="&release_date=1870-01-01,1871-12-31")
    assert empty.count(ITEM) == 0 and "No results" in empty and read_next_data(next_data(empty)).total == 0
    assert fetch(f"{replica.url}/search/title/")[0] == 404  # the bare search form is not replicated


def test_graphql_pages_through_the_results_up_to_the_cap(replica, catalog) -> None:
    dramas = by_votes(movie for movie in catalog if "Drama" in movie.genres)
    cursor = read_next_data(next_data(search(replica))).end_cursor
    ids = [movie.imdb_id for movie in dramas[:PAGE_SIZE]]
    while True:
        status, body = graphql(replica, drama_variables(cursor))
        assert status == 200
        result = body["data"]["advancedTitleSearch"]
        assert result["total"] == len(dramas)
        ids += [edge["node"]["title"]["id"] for edge in result["edges"]]
        cursor = result["pageInfo"]["endCursor"]
        if not result["pageInfo"]["hasNextPage"]:
            break
    assert ids == [movie.imdb_id for movie in dramas[:CAP]]  # never past the cap, in votes order, no repeats
    node = graphql(replica, drama_variables(None, first=1))[1]["data"]["advancedTitleSearch"]["edges"][0]["node"]
    assert node["title"]["ratingsSummary"]["voteCount"] == dramas[0].votes
    assert node["title"]["primaryImage"]["url"].endswith("._V1_.jpg")


def test_graphql_rejects_what_it_does_not_understand(replica) -> None:
    assert graphql(replica, drama_variables("not-a-cursor"))[0] == 400
    status, _, _ = fetch(f"{replica.url}/graphql?operationName=Other&variables=%7B%7D")
    assert status == 400


# -- images ----------------------------------------------------------------------------------------------------------


def image_size(body: bytes) -> tuple[str, tuple[int, int]]:
    with Image.open(io.BytesIO(body)) as image:
        return image.format, image.size


def test_v1_images_are_resized_as_asked(replica, catalog) -> None:
    imdb_id = catalog.movies[0].imdb_id
    base = f"{replica.url}/images/M/{poster_key(imdb_id)}@._V1_"
    assert image_size(fetch(base + ".jpg")[2]) == ("JPEG", (182, 268))
    assert image_size(fetch(base + "QL75_UX300_.jpg")[2]) == ("JPEG", (300, 442))
    assert image_size(fetch(base + "QL75_UY207_.jpg")[2])[1][1] == 207
    assert image_size(fetch(base + "QL75_UX140_CR0,1,140,207_.jpg")[2]) == ("JPEG", (140, 205))  # cropped to the image
    assert fetch(f"{replica.url}/images/M/MV5BNOSUCHKEY@._V1_.jpg")[0] == 404
    assert replica.original_image_url(imdb_id).startswith("https://m.media-amazon.com/images/M/MV5B")
    assert replica.request_counts["image"] == 5


# -- failure modes ---------------------------------------------------------------------------------------------------


def test_the_bot_wall_rises_after_n_page_requests_and_can_be_lifted(replica, catalog) -> None:
    replica.configure(wall="challenge", wall_after=2)
    search(replica)
    assert fetch(f"{replica.url}/title/{catalog.movies[0].imdb_id}/")[0] == 200
    status, headers, body = fetch(f"{replica.url}/search/title/?title_type=feature&genres=drama")
    assert (status, body, headers["x-amzn-waf-action"]) == (202, b"", "challenge")
    assert fetch(f"{replica.url}/images/M/{poster_key(catalog.movies[0].imdb_id)}@._V1_.jpg")[0] == 202
    replica.configure(wall="captcha", wall_after=0)
    status, headers, body = fetch(f"{replica.url}/graphql?operationName=AdvancedTitleSearch&variables=%7B%7D")
    assert status == 405 and headers["x-amzn-waf-action"] == "captcha" and b"human" in body
    replica.configure(wall="forbidden", wall_after=0)
    status, _, body = fetch(f"{replica.url}/title/{catalog.movies[0].imdb_id}/")
    assert status == 403 and b"403 ERROR" in body and b"Request blocked" in body
    replica.configure(wall=None)
    assert fetch(f"{replica.url}/title/{catalog.movies[0].imdb_id}/")[0] == 200
    assert replica.request_counts == {"search": 2, "title": 3, "image": 1, "graphql": 1}


def test_only_browsers_are_served_when_asked(catalog) -> None:
    with ReplicaServer(catalog, require_browser_user_agent=True) as server:
        url = f"{server.url}/title/{catalog.movies[0].imdb_id}/"
        assert fetch(url, user_agent="python-requests/2.34")[0] == 403
        assert fetch(url, user_agent=BROWSER_UA.replace("Chrome/", "HeadlessChrome/"))[0] == 403
        assert fetch(url)[0] == 200


def test_no_poster_malformed_json_slow_answers_and_unknown_titles(replica, catalog) -> None:
    dramas = by_votes(movie for movie in catalog if "Drama" in movie.genres)
    bare = dramas[0].imdb_id
    replica.configure(no_poster={bare}, malformed_next_data=True, graphql_latency=0.4)
    html = search(replica)
    item = html[html.index(ITEM) : html.index("</li>") + 5]
    assert f"/title/{bare}/" in item and "<img" not in item and "ipc-icon--movie" in item
    assert read_next_data(next_data(html)) is None
    with pytest.raises(ValueError):
        json.loads(next_data(html))
    started = time.monotonic()
    status, body = graphql(replica, drama_variables(None, first=1))
    assert status == 200 and time.monotonic() - started >= 0.4
    assert body["data"]["advancedTitleSearch"]["edges"][0]["node"]["title"]["primaryImage"] is None
    assert fetch(f"{replica.url}/images/M/{poster_key(bare)}@._V1_.jpg")[0] == 404
    assert read_title_page(fetch(f"{replica.url}/title/{bare}/")[2].decode()).poster_url is None
    assert fetch(f"{replica.url}/title/tt00000001/")[0] == 404
    replica.configure(delay=0.3)
    started = time.monotonic()
    assert fetch(f"{replica.url}/images/M/{poster_key(dramas[1].imdb_id)}@._V1_.jpg")[0] == 200
    assert time.monotonic() - started >= 0.3
    with pytest.raises(ValueError, match="unknown wall"):
        replica.configure(wall="teapot")


# -- the movie set ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("votes", "text"),
    [(0, "0"), (850, "850"), (1_000, "1K"), (7_449, "7.4K"), (7_450, "7.5K"), (9_949, "9.9K"), (9_950, "10K"),
     (105_400, "105K"), (999_499, "999K"), (999_500, "1M"), (2_912_345, "2.9M"), (12_500_000, "13M")],
)  # fmt: skip
def test_votes_are_abbreviated_as_imdb_does(votes: int, text: str) -> None:
    assert abbreviate_votes(votes) == text


def test_the_replica_movie_set_is_deterministic_varied_and_skewed() -> None:
    movies = replica_movies(200, seed=3)
    assert movies == replica_movies(200, seed=3) and movies != replica_movies(200, seed=4)
    assert len({movie.imdb_id for movie in movies}) == 200
    assert all(1 <= len(movie.genres) <= 3 and set(movie.genres) <= set(PAPER_GENRES) for movie in movies)
    assert all(1950 <= movie.year <= 2020 for movie in movies)
    counts = Counter(genre for movie in movies for genre in movie.genres)
    assert counts.most_common(1)[0][0] == "Drama" and counts["Drama"] > 2 * counts["Action"]
    assert any(movie.rating is None and movie.votes == 0 for movie in movies)
    rated = [movie.votes for movie in movies if movie.rating is not None]
    assert len(set(rated)) == len(rated) and max(rated) > 100 * min(rated)
    assert any(re.match(r"\d\. ", movie.title) for movie in movies) and any('"' in movie.title for movie in movies)


def test_write_replica_catalog(tmp_path: Path) -> None:
    catalog = write_replica_catalog(tmp_path / "replica", n_movies=12, seed=2)
    assert catalog.movies == read_catalog(tmp_path / "replica").movies == replica_movies(12, seed=2)
    assert all(image_size(catalog.poster_path(movie).read_bytes())[0] == "JPEG" for movie in catalog)
    assert sorted(path.name for path in (tmp_path / "replica").iterdir()) == ["movies.csv", "posters"]
    with pytest.raises(FileExistsError):
        write_replica_catalog(tmp_path / "replica", n_movies=12)


@pytest.mark.parametrize("empty", [False, True], ids=["new directory", "empty directory"])
def test_the_replica_command_writes_and_serves_a_catalog(tmp_path: Path, empty: bool) -> None:
    if empty:
        (tmp_path / "imdb").mkdir()
    command = [sys.executable, "-m", "tools.replica", str(tmp_path / "imdb"), "--port", "0", "--movies", "15"]
    process = popen_interruptible(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group()
        assert "Serving 15 replica titles" in line
        assert fetch(f"{url}/search/title/?title_type=feature&genres=drama")[0] == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()  # never leave a server behind, then fail: Ctrl-C should have stopped it
            process.communicate()
            raise
    assert len(read_catalog(tmp_path / "imdb")) == 15


def test_the_replica_command_says_what_to_give_it_instead_of_a_python_keyword(tmp_path: Path) -> None:
    """`posterbench replica FILE` answered "pass overwrite=True to replace it", a Python keyword on a command line."""
    a_file = tmp_path / "afile"
    a_file.write_text("mine")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    for target, problem in ((a_file, "exists and is not a directory"), (other, "holds files but no catalog")):
        command = [sys.executable, "-m", "tools.replica", str(target), "--port", "0", "--movies", "3"]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and "overwrite" not in result.stderr
        assert result.stderr == (
            f"Error: {target} {problem}{' (movies.csv)' if target == other else ''}: give a new or empty directory "
            "for the replica to write its catalog in, or the directory of a catalog to serve\n"
        )
    assert a_file.read_text() == "mine" and [path.name for path in other.iterdir()] == ["notes.txt"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["afile", "other"]


# -- "50 more" in a real browser -------------------------------------------------------------------------------------


@pytest.fixture
def browser():
    from scraper.browser import browser_session

    with browser_session(page_timeout=30) as driver:
        yield driver


ITEMS_SCRIPT = "return Array.from(document.querySelectorAll('li.ipc-metadata-list-summary-item'), li => li.outerHTML)"


def click_more(driver) -> dict:
    driver.execute_script("document.querySelector('button.ipc-see-more__button').click()")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = driver.execute_script(
            "const b = document.querySelector('button.ipc-see-more__button');"
            "return {count: document.querySelectorAll('li.ipc-metadata-list-summary-item').length,"
            " button: Boolean(b), busy: b ? b.getAttribute('aria-disabled') === 'true' : false,"
            " error: b ? b.getAttribute('data-error') : null}"
        )
        if not state["busy"]:
            return state
        time.sleep(0.05)
    raise AssertionError("the '50 more' request did not finish")


@pytest.mark.browser
@needs_browser
def test_see_more_appends_identical_markup_until_the_cap_in_chromium(browser, replica, catalog) -> None:
    dramas = by_votes(movie for movie in catalog if "Drama" in movie.genres)
    query = f"{replica.url}/search/title/?title_type=feature&genres=drama&sort=num_votes,desc"
    browser.get(query + "&count=20")
    rendered = browser.execute_script(ITEMS_SCRIPT)
    browser.get(query)
    counts = [len(browser.execute_script(ITEMS_SCRIPT))]
    while browser.execute_script("return Boolean(document.querySelector('button.ipc-see-more__button'))"):
        counts.append(click_more(browser)["count"])
    assert counts == [10, 20, 30]  # pages of 10, and the button goes at the cap of 30
    appended = browser.execute_script(ITEMS_SCRIPT)
    assert appended[:20] == rendered  # the script renders results exactly as the server does
    ids = [re.search(r'href="/title/(tt\d+)/\?ref_=sr_t_(\d+)"', html).groups() for html in appended]
    assert ids == [(movie.imdb_id, str(n)) for n, movie in enumerate(dramas[:CAP], start=1)]
    assert replica.request_counts["graphql"] == 2 and replica.request_counts.get("image", 0) == 0


@pytest.mark.browser
@needs_browser
def test_see_more_marks_a_walled_request_and_works_again_once_lifted(browser, replica) -> None:
    browser.get(f"{replica.url}/search/title/?title_type=feature&genres=drama&sort=num_votes,desc")
    replica.configure(wall="challenge", wall_after=0)
    state = click_more(browser)
    assert state == {"count": 10, "button": True, "busy": False, "error": "HTTP 202 (x-amzn-waf-action: challenge)"}
    replica.configure(wall=None)
    assert click_more(browser) == {"count": 20, "button": True, "busy": False, "error": None}


def test_failure_modes_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown wall"):
        FailureModes(wall="nope")
    with pytest.raises(ValueError, match="negative"):
        FailureModes(delay=-1)

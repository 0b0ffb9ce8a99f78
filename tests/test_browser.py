"""A person's path through the app in real headless Chromium, against the app served by a real gunicorn on
127.0.0.1: upload a poster, see five recommendations and the plot, vote, see the vote on the Bandit tab; click a
sample; paste an IMDb link (an offline replica of IMDb on loopback); a broken file; a phone-sized screen.
Screenshots of each page are saved under var/test-artifacts/screenshots (POSTERBENCH_ARTIFACTS to move them)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from catalog import Catalog
from tests.conftest import browser_tests, fresh_browser
from tools.replica import ReplicaServer
from tools.serving import gunicorn_server

OUTSIDE_ID = "tt98000001"  # a title the replica IMDb has and the catalog does not

pytestmark = browser_tests()


@pytest.fixture(scope="module")
def imdb(demo_catalog) -> Iterator[ReplicaServer]:
    outside = Catalog(demo_catalog.directory, [replace(demo_catalog.movies[10], imdb_id=OUTSIDE_ID)])
    with ReplicaServer(outside) as replica:
        yield replica


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    """The served app's database and gunicorn's logs (access.log, gunicorn.log)."""
    return tmp_path_factory.mktemp("gunicorn")


@pytest.fixture(scope="module")
def base_url(demo_catalog_dir, onnx_model_dir, index_dir, imdb, state: Path) -> Iterator[str]:
    """The app under gunicorn (app/gunicorn_conf.py, two workers) on a free loopback port, configured by environment
    variables exactly as `make serve` does, serving the model's ONNX export as `make serve` does."""
    settings = {
        "CATALOG": str(demo_catalog_dir),
        "MODEL": str(onnx_model_dir),
        "INDEX": str(index_dir),
        "DATABASE": str(state / "posterbench.sqlite"),
        "SECRET_KEY": "browser-test-secret",
        "IMDB_OVERRIDES": json.dumps({"www.imdb.com": imdb.url, "m.media-amazon.com": imdb.url}),
    }
    with gunicorn_server(settings, workers=2, log_dir=state) as url:
        yield url


@pytest.fixture
def browser(shared_browser):
    """The module's Chromium, as a new one starts (fresh_browser) for each test."""
    fresh_browser(shared_browser)
    yield shared_browser
    fresh_browser(shared_browser)


def wait_for(browser, css: str, count: int = 1, timeout: float = 60):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(
        lambda driver: (found := driver.find_elements(By.CSS_SELECTOR, css)) and len(found) >= count and found
    )


def loaded(browser, image) -> bool:
    return browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image)


def wait_for_images(browser, css: str, timeout: float = 60) -> list:
    from selenium.webdriver.support.ui import WebDriverWait

    images = wait_for(browser, css)
    WebDriverWait(browser, timeout).until(lambda driver: all(loaded(driver, image) for image in images))
    return images


def full_page_screenshot(browser, path: Path) -> None:
    height = browser.execute_script("return document.documentElement.scrollHeight")
    width = browser.execute_script("return window.innerWidth")
    browser.set_window_size(max(width, 390), min(max(height + 140, 800), 4000))
    browser.save_screenshot(str(path))


def test_upload_see_recommendations_and_plot_vote_and_see_the_bandit(
    browser, base_url, demo_catalog, screenshots, state: Path
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/")
    assert "Give us a movie poster" in browser.page_source
    full_page_screenshot(browser, screenshots / "home.png")
    poster = demo_catalog.poster_path(demo_catalog.movies[5])
    browser.find_element(By.ID, "poster-input").send_keys(str(poster.resolve()))  # choosing a file submits it
    cards = wait_for(browser, "li.card", count=5)
    assert len(cards) == 5
    titles = [card.find_element(By.CSS_SELECTOR, "h3 a").text for card in cards]
    assert all(titles) and set(titles) <= {movie.title for movie in demo_catalog}
    links = [card.find_element(By.CSS_SELECTOR, "h3 a").get_attribute("href") for card in cards]
    assert all(link.startswith("https://www.imdb.com/title/tt") for link in links)
    images = wait_for_images(browser, "li.card img, .query-poster img, img.plot")
    assert len(images) == 7  # five posters, the query, the scatter plot
    arm = browser.find_element(By.CSS_SELECTOR, ".distance strong").text
    assert arm in ("manhattan", "euclidean", "cosine")
    full_page_screenshot(browser, screenshots / "results.png")

    browser.find_element(By.CSS_SELECTOR, 'button[name="rating"][value="good"]').click()
    notice = wait_for(browser, ".notice")[0].text
    assert "Thank you! You rated these suggestions good." in notice
    assert not browser.find_elements(By.CSS_SELECTOR, 'button[name="rating"]')  # one vote each

    browser.find_element(By.LINK_TEXT, "Bandit").click()
    row = wait_for(browser, f'tr[data-arm="{arm}"]')[0]
    assert int(row.find_element(By.CSS_SELECTOR, "td.rated").text) >= 1
    assert re.search(r"\d+ recommendations? so far, [1-9]\d* rated", browser.page_source)
    assert len(wait_for_images(browser, ".plots img.plot")) == 4
    full_page_screenshot(browser, screenshots / "bandit.png")
    # The results page's key is in its address, its poster's and its plot's, and in their Referer: the access log
    # keeps neither the query string nor the Referer, so whoever reads the log cannot open the upload.
    logged = (state / "access.log").read_text()
    assert re.search(r'"GET /results/\d+ HTTP', logged) and '"POST /results/' in logged and "/query.jpg" in logged
    assert "key=" not in logged and "?" not in logged, logged[-2000:]


def test_click_a_sample_poster(browser, base_url, demo_catalog, screenshots) -> None:
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/")
    samples = wait_for(browser, "button.sample", count=12)
    sample_title = samples[0].get_attribute("title")
    samples[0].click()
    cards = wait_for(browser, "li.card", count=5)
    assert sample_title in browser.find_element(By.CSS_SELECTOR, ".query-poster").text
    assert (
        sample_title not in [card.find_element(By.CSS_SELECTOR, "h3").text for card in cards]
        or len([m for m in demo_catalog if m.title == sample_title]) > 1
    )
    wait_for_images(browser, "img.plot")
    full_page_screenshot(browser, screenshots / "sample-results.png")


def test_paste_an_imdb_link(browser, base_url, imdb, screenshots) -> None:
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/")
    browser.find_element(By.ID, "imdb-url").send_keys(f"https://www.imdb.com/title/{OUTSIDE_ID}/")
    browser.find_element(By.ID, "link-button").click()
    assert len(wait_for(browser, "li.card", count=5)) == 5
    assert f"{OUTSIDE_ID} on IMDb" in browser.find_element(By.CSS_SELECTOR, ".query-poster").text
    wait_for_images(browser, ".query-poster img")
    assert f"/images/M/{OUTSIDE_ID}.jpg" in imdb.requests
    full_page_screenshot(browser, screenshots / "imdb-link-results.png")


def test_a_form_being_sent_says_so_and_cannot_be_sent_twice(browser, base_url) -> None:
    """Choosing a file sends the form at once; nothing on the page changed until the results came."""
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/")
    browser.execute_script(  # held here: the form is marked as it is sent, then kept from leaving the page
        "const form = document.getElementById('link-form');"
        "form.addEventListener('submit', (event) => event.preventDefault());"
        "document.getElementById('imdb-url').value = 'https://www.imdb.com/title/tt0111161/';"
        "form.requestSubmit();"
    )
    button = browser.find_element(By.ID, "link-button")
    assert button.text == "Fetching the poster…" and not button.is_enabled()
    assert browser.find_element(By.ID, "link-form").get_attribute("aria-busy") == "true"
    browser.execute_script("window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))")  # Back
    assert button.text == "Go" and button.is_enabled()


def test_a_broken_file_gets_a_readable_message(browser, base_url, tmp_path, screenshots) -> None:
    from selenium.webdriver.common.by import By

    broken = tmp_path / "holiday.jpg"
    broken.write_bytes(b"this is not a JPEG")
    browser.get(base_url + "/")
    browser.find_element(By.ID, "poster-input").send_keys(str(broken))
    message = wait_for(browser, ".error")[0].text
    assert "We could not read holiday.jpg" in message
    assert browser.find_elements(By.ID, "poster-input")  # the page still offers another try
    browser.save_screenshot(str(screenshots / "broken-file.png"))


def test_the_pages_fit_a_phone_screen(browser, base_url, demo_catalog, screenshots) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def overflow() -> int:
        """How far the page is wider than the screen, once it has its style sheet: a page without scripts can be
        'interactive' before style.css is applied, when its 640-pixel plots in their default figure margins stick
        out by 313 pixels."""
        WebDriverWait(browser, 30).until(
            lambda driver: driver.execute_script("return document.readyState") == "complete"
        )
        return browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )

    browser.set_window_size(390, 844)
    browser.get(base_url + "/")
    assert overflow() <= 0
    assert browser.find_element(By.ID, "dropzone").is_displayed() and browser.find_element(By.ID, "imdb-url")
    browser.save_screenshot(str(screenshots / "phone-home.png"))
    wait_for(browser, "button.sample")[1].click()
    wait_for(browser, "li.card", count=5)
    assert overflow() <= 0
    browser.save_screenshot(str(screenshots / "phone-results.png"))
    browser.get(base_url + "/bandit")
    assert overflow() <= 0

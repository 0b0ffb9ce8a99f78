"""A person's path through the app in real headless Chromium over loopback HTTP: upload a poster,
see five recommendations; click a sample; a broken file gets a readable message."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("CI"),
        reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
    ),
]


@pytest.fixture
def base_url(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def browser(tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,1000",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def wait_for(browser, css: str, count: int = 1, timeout: float = 30):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(
        lambda driver: (found := driver.find_elements(By.CSS_SELECTOR, css)) and len(found) >= count and found
    )


def test_upload_a_poster_and_see_five_recommendations(browser, base_url, demo_catalog, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/")
    assert "Give us a movie poster" in browser.page_source
    poster = demo_catalog.poster_path(demo_catalog.movies[5])
    browser.find_element(By.ID, "poster-input").send_keys(str(poster.resolve()))  # choosing a file submits it
    cards = wait_for(browser, "li.card", count=5)
    assert len(cards) == 5
    titles = [card.find_element(By.CSS_SELECTOR, "h3 a").text for card in cards]
    assert all(titles) and set(titles) <= {movie.title for movie in demo_catalog}
    links = [card.find_element(By.CSS_SELECTOR, "h3 a").get_attribute("href") for card in cards]
    assert all(link.startswith("https://www.imdb.com/title/tt") for link in links)
    images = browser.find_elements(By.CSS_SELECTOR, "li.card img, .query-poster img")
    assert len(images) == 6 and all(browser.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images)
    browser.save_screenshot(str(tmp_path / "results.png"))


def test_click_a_sample_poster(browser, base_url, demo_catalog) -> None:
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


def test_a_broken_file_gets_a_readable_message(browser, base_url, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    broken = tmp_path / "holiday.jpg"
    broken.write_bytes(b"this is not a JPEG")
    browser.get(base_url + "/")
    browser.find_element(By.ID, "poster-input").send_keys(str(broken))
    message = wait_for(browser, ".error")[0].text
    assert "We could not read holiday.jpg" in message
    assert browser.find_elements(By.ID, "poster-input")  # the page still offers another try

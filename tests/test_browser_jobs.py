"""A designer's path through Compare in real headless Chromium, against the app served by a real gunicorn and its real
job worker (`posterbench worker`, Huey's consumer) on 127.0.0.1: upload two drafts and pick a catalog poster, intend
a genre, watch the job page fill in, see the ranking, open a heatmap of one draft, download the sheet. Screenshots of
the compare form, the comparison and the heatmap are saved under var/test-artifacts/screenshots (POSTERBENCH_ARTIFACTS
to move them)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import browser_tests, fresh_browser
from tools.serving import DIRECT, gunicorn_server

INTENDED = "Horror"

pytestmark = browser_tests()


@pytest.fixture(scope="module")
def base_url(demo_catalog_dir, onnx_model_dir, index_dir, tmp_path_factory) -> Iterator[str]:
    """gunicorn (two workers) and the job worker, configured by environment variables as `make serve` does."""
    state = tmp_path_factory.mktemp("served")
    settings = {
        "CATALOG": str(demo_catalog_dir),
        "MODEL": str(onnx_model_dir),
        "INDEX": str(index_dir),
        "DATABASE": str(state / "posterbench.sqlite"),
        "SECRET_KEY": "browser-jobs-secret",
    }
    with gunicorn_server(settings, workers=2, log_dir=state, job_worker=True) as url:
        yield url


@pytest.fixture
def browser(shared_browser, tmp_path: Path):
    """The module's Chromium, as a new one starts (fresh_browser) for each test, its downloads saved in `tmp_path`."""
    fresh_browser(shared_browser)
    shared_browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    shared_browser.downloads = tmp_path
    yield shared_browser
    fresh_browser(shared_browser)


def wait_for(browser, css: str, count: int = 1, timeout: float = 60):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(
        lambda driver: (found := driver.find_elements(By.CSS_SELECTOR, css)) and len(found) >= count and found
    )


def wait_for_images(browser, css: str, timeout: float = 60) -> list:
    from selenium.webdriver.support.ui import WebDriverWait

    images = wait_for(browser, css)
    loaded = "return arguments[0].complete && arguments[0].naturalWidth > 0"
    WebDriverWait(browser, timeout).until(lambda driver: all(driver.execute_script(loaded, i) for i in images))
    return images


def full_page_screenshot(browser, path: Path) -> None:
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(max(height + 140, 800), 4000))
    browser.save_screenshot(str(path))


def test_compare_three_drafts_see_the_ranking_open_a_heatmap_and_download_the_sheet(
    browser, base_url, demo_catalog, screenshots
) -> None:
    from selenium.webdriver.common.by import By

    browser.set_window_size(1280, 900)
    browser.get(base_url + "/compare")
    drafts = [demo_catalog.poster_path(demo_catalog.movies[number]).resolve() for number in (12, 57)]
    browser.find_element(By.ID, "compare-images").send_keys("\n".join(map(str, drafts)))
    browser.find_elements(By.CSS_SELECTOR, ".sample-choice")[3].click()  # a catalog poster as the third
    browser.find_element(By.CSS_SELECTOR, f'input[name="target"][value="{INTENDED}"]').click()
    full_page_screenshot(browser, screenshots / "compare-form.png")
    browser.find_element(By.ID, "compare-button").click()

    items = wait_for(browser, f'ol.ranking[data-genre="{INTENDED}"] li', count=3)  # the page updates itself
    job_id = browser.current_url.rstrip("/").rsplit("/", 1)[-1]
    with DIRECT.open(f"{base_url}/api/jobs/{job_id}", timeout=10) as answer:
        job = json.load(answer)
    assert job["status"] == "done" and job["result"]["targets"] == [INTENDED]
    shown = [int(item.get_attribute("data-position")) for item in items]
    assert shown == [entry["position"] for entry in job["result"]["rankings"][0]["order"]]
    assert [draft["label"] for draft in job["result"]["posters"]][:2] == [path.name for path in drafts]
    assert len(wait_for_images(browser, "article.draft img")) == 3
    full_page_screenshot(browser, screenshots / "compare.png")

    browser.find_element(By.ID, "download-sheet").click()
    sheet = browser.downloads / f"posterbench-comparison-{job_id}.png"
    deadline = time.monotonic() + 30
    while not sheet.is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    first = browser.find_element(By.CSS_SELECTOR, f'article.draft[data-position="{shown[0]}"]')
    assert first.find_element(By.CSS_SELECTOR, "select[name=genre]").get_attribute("value") == INTENDED
    first.find_element(By.CSS_SELECTOR, "button.explain").click()
    heatmap = wait_for_images(browser, "img#heatmap")[0]
    assert f"What makes this poster read as {INTENDED}" in browser.page_source
    assert heatmap.get_attribute("naturalWidth") and int(heatmap.get_attribute("naturalWidth")) > 100
    full_page_screenshot(browser, screenshots / "heatmap.png")


def test_a_heatmap_from_the_results_page(browser, base_url, demo_catalog) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(base_url + "/")
    wait_for(browser, "button.sample")[2].click()
    wait_for(browser, "li.card", count=5)
    Select(browser.find_element(By.CSS_SELECTOR, ".explain-form select")).select_by_value("Comedy")
    browser.find_element(By.CSS_SELECTOR, ".explain-form button.explain").click()
    wait_for_images(browser, "img#heatmap")
    assert "What makes this poster read as Comedy" in browser.page_source
    request = urllib.request.Request(base_url + "/api/jobs/" + browser.current_url.rsplit("/", 1)[-1])
    with DIRECT.open(request, timeout=10) as answer:
        assert json.load(answer)["result"]["genre"] == "Comedy"

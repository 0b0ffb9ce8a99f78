"""Start the scraper's browser politely: headless Chromium through Debian's chromedriver (never a downloaded driver),
or a Selenium Grid with `remote`, with a desktop Chrome User-Agent and US English; and pace its actions."""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from urllib3.exceptions import HTTPError as Urllib3Error

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
"""A desktop Chrome's User-Agent; headless Chromium's own says "HeadlessChrome", which IMDb turns away."""
ACCEPT_LANGUAGE = "en-US,en"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMEDRIVER_NAMES = ("chromedriver",)
BROWSER_FAILURES = (WebDriverException, Urllib3Error)
"""What a browser that fails raises: Selenium's errors, and urllib3's when chromedriver or the Grid cannot be reached
(an address nothing answers at, a chromedriver gone)."""
WINDOW_SIZE = (1280, 1000)
"""The browser window's width and height (a desktop's: IMDb lays its pages out for one)."""
_CHROMIUM_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--lang=en-US",
    f"--window-size={WINDOW_SIZE[0]},{WINDOW_SIZE[1]}",
)


class BrowserError(RuntimeError):
    """The browser could not be started; the message says what to install or check."""


def find_program(names: tuple[str, ...], given: str | None = None) -> str | None:
    """`given` if it is an executable file, else the first of `names` on PATH or in /usr/bin."""
    if given:
        return given if Path(given).is_file() else shutil.which(given)
    for name in names:
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None)
        if found:
            return found
    return None


def browser_options(
    *, user_agent: str = USER_AGENT, profile: Path | None = None, images: bool = False
) -> webdriver.ChromeOptions:
    """Headless Chromium options: a desktop User-Agent, US English, and no images unless `images` (the scraper
    downloads posters once, at the chosen size, so the browser need not fetch the search pages' thumbnails)."""
    options = webdriver.ChromeOptions()
    for argument in _CHROMIUM_ARGUMENTS:
        options.add_argument(argument)
    options.add_argument(f"--user-agent={user_agent}")
    if profile is not None:
        options.add_argument(f"--user-data-dir={profile}")
    preferences: dict[str, object] = {"intl.accept_languages": ACCEPT_LANGUAGE}
    if not images:
        preferences["profile.managed_default_content_settings.images"] = 2
    options.add_experimental_option("prefs", preferences)
    return options


def start_browser(
    remote: str | None = None,
    *,
    chromium: str | None = None,
    chromedriver: str | None = None,
    profile: Path | None = None,
    page_timeout: float = 60.0,
    user_agent: str = USER_AGENT,
    images: bool = False,
) -> WebDriver:
    """A new browser session: a Selenium Grid's at `remote`, else local headless Chromium driven by chromedriver.

    Raises BrowserError when Chromium or chromedriver is missing or will not start, or the Grid cannot be reached."""
    options = browser_options(user_agent=user_agent, profile=None if remote else profile, images=images)
    try:
        if remote:
            driver = webdriver.Remote(command_executor=remote, options=options)
        else:
            options.binary_location = _required(find_program(CHROMIUM_NAMES, chromium), "Chromium", "chromium")
            driver_path = _required(find_program(CHROMEDRIVER_NAMES, chromedriver), "chromedriver", "chromium-driver")
            driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    except BROWSER_FAILURES as error:
        where = f"the Selenium Grid at {remote}" if remote else "headless Chromium"
        raise BrowserError(f"could not start {where}: {first_line(error)}") from error
    driver.set_page_load_timeout(page_timeout)
    driver.implicitly_wait(0)
    return driver


_DOCUMENT_HTML = "return document.documentElement ? document.documentElement.outerHTML : ''"


def page_html(driver: WebDriver) -> str:
    """The HTML of the page the browser shows. chromedriver's `page_source` now and then answers an empty string
    for a page that is there (seen on a busy machine, a few title pages in some hundreds), which read_title_page
    would take for the bot wall's empty page; the document's own markup is read then instead."""
    html = driver.page_source
    if html.strip():
        return html
    return driver.execute_script(_DOCUMENT_HTML) or ""


def _required(path: str | None, what: str, package: str) -> str:
    if path is None:
        raise BrowserError(f"{what} is not installed; install Debian's package: sudo apt-get install {package}")
    return path


@contextmanager
def browser_session(
    remote: str | None = None, *, page_timeout: float = 60.0, user_agent: str = USER_AGENT, images: bool = False
) -> Iterator[WebDriver]:
    """`start_browser` with a throw-away profile; the browser quits (and the profile goes) at the end."""
    with tempfile.TemporaryDirectory(prefix="posterbench-chromium-") as profile:
        driver = start_browser(
            remote, profile=Path(profile), page_timeout=page_timeout, user_agent=user_agent, images=images
        )
        try:
            yield driver
        finally:
            with suppress(WebDriverException, OSError):
                driver.quit()


class Pacer:
    """Keeps about `seconds` (±20 %, at random) between actions: `wait()` before each one sleeps what is left."""

    def __init__(
        self,
        seconds: float,
        rng: random.Random,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if seconds < 0:
            raise ValueError(f"a delay cannot be negative: {seconds}")
        self.seconds = seconds
        self._rng = rng
        self._clock = clock
        self._sleep = sleep
        self._last: float | None = None

    def wait(self) -> float:
        """Sleep until the next action may start; the seconds slept."""
        pause = 0.0
        if self.seconds > 0 and self._last is not None:
            gap = self.seconds * self._rng.uniform(0.8, 1.2)
            pause = max(0.0, self._last + gap - self._clock())
            if pause:
                self._sleep(pause)
        self._last = self._clock()
        return pause


def first_line(error: BaseException) -> str:
    """The first line of a (WebDriver) error's message: Selenium's run on with a stack trace."""
    text = getattr(error, "msg", None) or str(error)
    return (text.strip().splitlines() or [type(error).__name__])[0]

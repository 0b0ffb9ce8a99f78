"""Command line for the dataset builder: `python -m scraper scrape --out DIR` scrapes IMDb (or the offline replica,
tools/replica, which `posterbench replica DIR` serves from the checkout) into a catalog, resumably."""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from tqdm.contrib.logging import logging_redirect_tqdm

if TYPE_CHECKING:
    from scraper.search import YearRange

EXIT_STOPPED = 3
"""Exit status when IMDb's bot wall (or a failing IMDb) stopped the scrape; progress is saved."""
EXIT_INTERRUPTED = 130


def _year_ranges(context: click.Context, parameter: click.Parameter, value: str | None) -> tuple[YearRange, ...]:
    from scraper.settings import DEFAULT_YEAR_RANGES, parse_year_ranges

    try:
        return parse_year_ranges(value) if value else DEFAULT_YEAR_RANGES
    except ValueError as error:
        raise click.BadParameter(str(error)) from error


def _genres(context: click.Context, parameter: click.Parameter, value: str | None) -> tuple[str, ...]:
    from scraper.search import PAPER_GENRES
    from scraper.settings import parse_genres

    try:
        return parse_genres(value) if value is not None else PAPER_GENRES  # "" names no genre: refused
    except ValueError as error:
        raise click.BadParameter(str(error)) from error


class Seconds(click.FloatRange):
    """A wait in seconds, from 0 to an hour; NaN, which passes a range's comparisons, is refused too (an infinite
    wait hung the scrape, a NaN one crashed it)."""

    name = "seconds"

    def __init__(self) -> None:
        super().__init__(min=0, max=3600)

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        seconds = super().convert(value, param, ctx)
        if math.isnan(seconds):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


@click.group()
def cli() -> None:
    """Build a catalog from IMDb's search pages."""


@cli.command()
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="catalog directory to write")
@click.option("--base-url", default="https://www.imdb.com", show_default=True, help="IMDb, or a replica's URL")
@click.option("--image-host-override", metavar="URL", help="serve IMDb's image hosts from this origin (replicas)")
@click.option("--genres", callback=_genres, help="comma-separated genres (default: the paper's 18)")
@click.option("--years", callback=_year_ranges, help="comma-separated year ranges to start from: 1900-1969,1970-1989")
@click.option("--per-genre", type=click.IntRange(min=1), default=12_000, show_default=True, help="titles per genre")
@click.option("--result-cap", type=click.IntRange(min=1), default=10_000, show_default=True, help="split above this")
@click.option("--delay", type=Seconds(), default=2.0, show_default=True, help="seconds between actions")
@click.option("--title-delay", type=Seconds(), default=2.0, show_default=True)
@click.option("--poster-delay", type=Seconds(), default=0.5, show_default=True)
@click.option(
    "--title-pages",
    type=click.Choice(["off", "missing", "all"]),
    default="off",
    show_default=True,
    help="read title pages: never, for titles whose search result had no exact data, or for every title",
)
@click.option("--poster-width", type=click.IntRange(16, 4000), default=300, show_default=True)
@click.option("--remote", metavar="URL", help="drive a Selenium Grid at URL instead of local headless Chromium")
@click.option("--state", type=click.Path(path_type=Path), help="progress file (default: DIR/.scrape.sqlite)")
@click.option("--retries", type=click.IntRange(min=0), default=3, show_default=True)
@click.option("--backoff", type=Seconds(), default=2.0, show_default=True, help="first retry's wait")
@click.option("--no-progress", is_flag=True, help="no progress bars")
def scrape(out_dir: Path, **options: object) -> None:
    """Scrape IMDb's advanced title search into a catalog; run the same command again to resume."""
    from catalog import OutputNotWritableError
    from scraper.browser import BrowserError
    from scraper.scrape import (
        BotWall,
        OutputInUseError,
        ScrapeBusyError,
        ScrapeSettings,
        ScrapeStoppedError,
        check_out_directory,
    )
    from scraper.scrape import scrape as run_scrape
    from scraper.state import StateError

    progress = not options.pop("no_progress")
    try:
        settings = ScrapeSettings(out=out_dir, progress=progress, **options)
        check_out_directory(settings)  # refused before anything is written, started or fetched
    except (ValueError, OutputNotWritableError) as error:  # OutputInUseError is a ValueError
        raise click.ClickException(str(error)) from error
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    images = f" (images from {settings.image_host_override})" if settings.image_host_override else ""
    click.echo(
        f"Scraping {len(settings.genres)} genre(s) from {settings.base_url}{images} into {out_dir}; "
        f"progress in {settings.state_path}"
    )
    try:
        with logging_redirect_tqdm():
            report = run_scrape(settings)
    except (BotWall, ScrapeStoppedError) as error:
        click.echo(f"Stopped: {error}", err=True)
        sys.exit(EXIT_STOPPED)
    except KeyboardInterrupt:
        message = f"Interrupted: progress is saved in {settings.state_path}; run the same command to resume."
        click.echo("\n" + message, err=True)
        sys.exit(EXIT_INTERRUPTED)
    except (BrowserError, StateError, ScrapeBusyError, OutputInUseError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        f"Done in {report.seconds:.1f} s: {report.movies} movies with their posters in {out_dir} "
        f"({report.missing_posters} without a poster on IMDb left out, {report.failed_posters} poster downloads "
        f"failed), {report.repeats} repeated results merged, {report.pages} pages and clicks."
    )
    summary = {"movies": report.movies, "posters": report.posters}
    click.echo(json.dumps(summary | {"seconds": report.seconds}))


if __name__ == "__main__":
    cli()

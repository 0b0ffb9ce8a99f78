"""A full scrape of the offline IMDb replica (`make scrape-replica`): writes a replica of N synthetic movies, serves
it on 127.0.0.1, runs the real scraper (headless Chromium) into a temporary catalog with every politeness delay at
zero, validates the catalog with `read_catalog`, compares it with the replica's movies, and prints the speed in
pages per second. The last line is one JSON object: {"movies", "posters", "seconds", ...}.

    python -m bench.scrape_replica [--movies 300] [--result-cap 200] [--title-pages off|missing|all] [--genres G,G]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from catalog import Catalog, read_catalog
from scraper.scrape import PAPER_GENRES, ScrapeSettings, scrape
from scraper.settings import parse_genres
from tools.replica import ReplicaServer, write_replica_catalog


def differences(replica: Catalog, scraped: Catalog, genres: tuple[str, ...] = PAPER_GENRES) -> list[str]:
    """What the scraped catalog gets wrong about the replica's movies: every movie of one of the searched `genres`
    is to be found, its genres compared within them."""
    problems = []
    searched = set(genres)
    expected = {movie.imdb_id: movie for movie in replica if set(movie.genres) & searched}
    found = {movie.imdb_id: movie for movie in scraped}
    problems += [f"{imdb_id}: missing" for imdb_id in sorted(expected.keys() - found.keys())]
    problems += [f"{imdb_id}: not in the replica" for imdb_id in sorted(found.keys() - expected.keys())]
    for imdb_id in sorted(expected.keys() & found.keys()):
        want, got = expected[imdb_id], found[imdb_id]
        for field in ("title", "year", "rating", "votes"):
            if getattr(want, field) != getattr(got, field):
                scraped_value, replica_value = getattr(got, field), getattr(want, field)
                problems.append(f"{imdb_id}: {field} {scraped_value!r}, the replica says {replica_value!r}")
        if set(want.genres) & searched != set(got.genres) & searched:
            problems.append(f"{imdb_id}: genres {got.genres}, the replica says {want.genres}")
    return problems


def genre_list(text: str) -> tuple[str, ...]:
    """An argparse type: the scraper's comma-separated genres (scraper.settings.parse_genres)."""
    try:
        return parse_genres(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movies", type=int, default=300, help="synthetic movies in the replica (default 300)")
    parser.add_argument("--result-cap", type=int, default=200, help="the replica's results per query (default 200)")
    parser.add_argument("--title-pages", choices=("off", "missing", "all"), default="missing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--genres", type=genre_list, default=PAPER_GENRES, help="comma-separated genres to search (default: the 18)"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="posterbench-scrape-") as scratch:
        replica_catalog = write_replica_catalog(Path(scratch) / "replica", n_movies=args.movies, seed=args.seed)
        out = Path(scratch) / "scraped"
        with ReplicaServer(replica_catalog, result_cap=args.result_cap) as replica:
            settings = ScrapeSettings(
                out=out,
                base_url=replica.url,
                image_host_override=replica.url,
                result_cap=args.result_cap,
                delay=0.0,
                title_delay=0.0,
                poster_delay=0.0,
                title_pages=args.title_pages,
                genres=args.genres,
                progress=sys.stderr.isatty(),
            )
            report = scrape(settings)
        scraped = read_catalog(out)  # raises CatalogError naming each problem
        problems = differences(replica_catalog, scraped, args.genres)
    pages_per_second = report.pages / report.seconds if report.seconds else 0.0
    print(
        f"replica: {args.movies} movies, result cap {args.result_cap}; title pages: {args.title_pages};"
        f" {len(args.genres)} genres searched"
    )
    print(
        f"scraped {report.movies} movies and {report.posters} posters in {report.seconds:.1f} s: {report.pages} pages"
        f" and clicks ({pages_per_second:.1f} per second), {report.title_pages} title pages,"
        f" {report.searches_split} searches split by years"
    )
    for problem in problems[:20]:
        print("  " + problem)
    print(f"catalog valid; {len(problems)} differences from the replica")
    summary = {
        "movies": report.movies,
        "posters": report.posters,
        "seconds": round(report.seconds, 1),
        "pages": report.pages,
        "pages_per_second": round(pages_per_second, 2),
        "differences": len(problems),
    }
    print(json.dumps(summary))
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()

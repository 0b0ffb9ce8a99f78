"""Command line for catalogs: `python -m catalog check DIR` and `python -m catalog demo DIR`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from catalog import GENRES, Catalog, CatalogError, read_catalog


@click.group()
def cli() -> None:
    """Check catalogs and build the demo catalog."""


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
def check(directory: Path) -> None:
    """Validate a catalog's rows and that its posters exist, and summarise it (`posterbench check` also decodes
    every poster, with the model's reader)."""
    read_and_summarise(directory)


def read_and_summarise(directory: Path) -> Catalog:
    """The catalog in `directory`, its summary printed (ClickException listing its problems if it is invalid)."""
    try:
        catalog = read_catalog(directory)
    except CatalogError as error:
        raise click.ClickException(f"invalid catalog:\n{error}") from error
    counts = Counter(genre for movie in catalog for genre in movie.genres if genre in GENRES)
    click.echo(f"{directory}: {len(catalog)} movies, all posters present")
    click.echo("  " + ", ".join(f"{genre} {counts[genre]}" for genre in GENRES))
    return catalog


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--movies", "n_movies", type=click.IntRange(1, 999_999), default=600, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--force", is_flag=True, help="replace an existing catalog (never another kind of file or directory)")
def demo(directory: Path, n_movies: int, seed: int, force: bool) -> None:
    """Generate the synthetic demo catalog (deterministic given the seed)."""
    from catalog import OutputInUseError, OutputNotWritableError, check_output
    from catalog.demo import generate_demo_catalog

    try:
        check_output(directory, "movies.csv")  # a file, another directory, a place that cannot be written: not ours
        if (directory / "movies.csv").is_file() and not force:
            raise click.ClickException(f"{directory} already holds a catalog; use --force to replace it")
        generate_demo_catalog(directory, n_movies=n_movies, seed=seed, overwrite=True)
    except (OutputInUseError, OutputNotWritableError, OSError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"demo catalog of {n_movies} movies written to {directory}")


if __name__ == "__main__":
    cli()

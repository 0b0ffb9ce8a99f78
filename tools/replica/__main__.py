"""`python -m tools.replica DIRECTORY` (or `posterbench replica DIRECTORY` from the checkout): write the replica's
catalog in DIRECTORY unless there is one, and serve it as IMDb on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import click


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="port on 127.0.0.1 (0 picks one)"
)
@click.option("--movies", "n_movies", type=click.IntRange(1, 999_999), default=300, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--result-cap", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 250), default=50, show_default=True)
@click.option(
    "--image-base", metavar="URL", help="host the pages name posters on (default: IMDb's; 'self': this server)"
)
def main(
    directory: Path, port: int, n_movies: int, seed: int, result_cap: int, page_size: int, image_base: str | None
) -> None:
    """Write the replica's catalog in DIRECTORY (a new or empty directory; one holding a catalog is served as it is)
    and serve it as IMDb until Ctrl-C."""
    from catalog import CatalogError, OutputInUseError, read_catalog
    from tools.replica import ReplicaServer, write_replica_catalog

    try:
        if (directory / "movies.csv").is_file():
            catalog = read_catalog(directory)
        else:  # a missing or empty directory gets the catalog; anything else is refused (the API's FileExistsError)
            empty = directory.is_dir() and next(directory.iterdir(), None) is None
            catalog = write_replica_catalog(directory, n_movies=n_movies, seed=seed, overwrite=empty)
    except CatalogError as error:
        raise click.ClickException(str(error)) from error
    except (FileExistsError, OutputInUseError) as error:
        kind = "holds files but no catalog (movies.csv)" if directory.is_dir() else "exists and is not a directory"
        raise click.ClickException(
            f"{directory} {kind}: give a new or empty directory for the replica to write its catalog in, or the "
            "directory of a catalog to serve"
        ) from error
    base = None if image_base == "self" else image_base
    with ReplicaServer(catalog, port=port, result_cap=result_cap, page_size=page_size, image_base=base) as server:
        if image_base == "self":
            server.image_base = server.url  # a browser then shows the posters
        click.echo(f"Serving {len(catalog)} replica titles at {server.url}; scrape them with:")
        click.echo(f"  posterbench scrape --out OUT --base-url {server.url} --image-host-override {server.url}")
        click.echo("Ctrl-C stops.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            click.echo()


if __name__ == "__main__":
    from posterbench.cli import PROG_VARIABLE

    main(prog_name=os.environ.pop(PROG_VARIABLE, None))  # `posterbench replica` names itself in the usage

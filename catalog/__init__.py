"""The catalog format, the contract between the pipeline's stages: a directory holding
`movies.csv` and the poster files it names, read with validation and written atomically; and the synthetic demo
catalog (`catalog.demo`). It imports no other stage."""

from catalog.movie import GENRES, Movie
from catalog.read import Catalog, CatalogError, read_catalog
from catalog.write import (
    OutputInUseError,
    OutputNotWritableError,
    check_output,
    check_replaceable,
    check_writable,
    refusal,
    staged_directory,
    write_catalog,
    write_movies_csv,
    write_poster,
)

__all__ = [
    "GENRES",
    "Catalog",
    "CatalogError",
    "Movie",
    "OutputInUseError",
    "OutputNotWritableError",
    "check_output",
    "check_replaceable",
    "check_writable",
    "read_catalog",
    "refusal",
    "staged_directory",
    "write_catalog",
    "write_movies_csv",
    "write_poster",
]

"""Read IMDb's official non-commercial datasets (`title.basics.tsv.gz`, `title.ratings.tsv.gz`) to fill in or check
a catalog's year, genres, rating and votes without scraping a single page."""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import zlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from catalog import Catalog, CatalogError, Movie, read_catalog, refusal, write_movies_csv

BASICS_COLUMNS: tuple[str, ...] = (
    "tconst",
    "titleType",
    "primaryTitle",
    "originalTitle",
    "isAdult",
    "startYear",
    "endYear",
    "runtimeMinutes",
    "genres",
)
RATINGS_COLUMNS: tuple[str, ...] = ("tconst", "averageRating", "numVotes")
NULL = "\\N"
"""How the datasets write a missing value."""
RATING_TOLERANCE = 0.05
"""Ratings closer than this count as equal (the datasets round to one decimal)."""
_GZIP_MAGIC = b"\x1f\x8b"
_PROGRESS_EVERY = 50_000
"""Lines between progress bar updates."""
MAX_LINE_BYTES = 1_000_000
"""The longest line read (its newline not counted): the datasets' lines are at most a few KB, and a file without
newlines (/dev/zero, a gzipped stream of one byte) would otherwise be read whole into memory as one line."""


class DatasetError(ValueError):
    """A dataset file that cannot be read; the message names the file and, for a bad row, the line."""


@dataclass(frozen=True)
class TitleRecord:
    """One title as the datasets describe it; None (or ()) where they hold `\\N` or have no ratings row."""

    imdb_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]
    rating: float | None
    votes: int | None
    title_type: str


@dataclass(frozen=True)
class Difference:
    """One field on which a catalog movie and the datasets disagree; field "missing" when the datasets lack it."""

    imdb_id: str
    field: str
    catalog: object
    dataset: object

    def describe(self) -> str:
        """A line such as "tt0111161: year catalog 1994, datasets 1995"."""
        if self.field == "missing":
            return f"{self.imdb_id}: missing from the datasets (catalog title {self.catalog!r})"
        return f"{self.imdb_id}: {self.field} catalog {_show(self.catalog)}, datasets {_show(self.dataset)}"


def read_datasets(
    basics: Path,
    ratings: Path | None = None,
    ids: Collection[str] | None = None,
    title_types: Collection[str] | None = ("movie",),
    progress: bool = True,
) -> dict[str, TitleRecord]:
    """Stream `basics` (and `ratings`) into records by IMDb id, keeping only `ids` (all when None) of `title_types`
    (all types when None).

    The files are gzipped (or plain) UTF-8 TSV with a header line, read line by line, never whole. Rows of ids that
    are not wanted are skipped unread; a wanted row that is malformed raises DatasetError naming "file:line".
    Without `ratings` (or without a ratings row) a record's rating and votes are None.
    """
    wanted = None if ids is None else frozenset(ids)
    types = None if title_types is None else frozenset(title_types)
    records = _read_basics(Path(basics), wanted, types, progress)
    if ratings is not None:
        records = _add_ratings(Path(ratings), records, progress)
    return records


def _read_basics(
    path: Path, wanted: frozenset[str] | None, types: frozenset[str] | None, progress: bool
) -> dict[str, TitleRecord]:
    records: dict[str, TitleRecord] = {}
    for number, fields in _rows(path, BASICS_COLUMNS, wanted, progress):
        record = _basics_record(path, number, fields)
        if types is None or record.title_type in types:
            records[record.imdb_id] = record
    return records


def _add_ratings(path: Path, records: dict[str, TitleRecord], progress: bool) -> dict[str, TitleRecord]:
    rated = dict(records)
    for number, (tconst, average, votes) in _rows(path, RATINGS_COLUMNS, frozenset(records), progress):
        where = f"{path}:{number}"
        rating, count = _float(average, "averageRating", where), _int(votes, "numVotes", where)
        rated[tconst] = replace(records[tconst], rating=rating, votes=count)
    return rated


def _basics_record(path: Path, number: int, fields: list[str]) -> TitleRecord:
    tconst, title_type, title, _original, _adult, start_year, _end, _runtime, genres = fields
    where = f"{path}:{number}"
    return TitleRecord(
        imdb_id=tconst,
        title="" if title == NULL else title,
        year=_int(start_year, "startYear", where),
        genres=() if genres in (NULL, "") else tuple(genre.strip() for genre in genres.split(",")),
        rating=None,
        votes=None,
        title_type=title_type,
    )


def _rows(
    path: Path, columns: tuple[str, ...], wanted: frozenset[str] | None, progress: bool
) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields in `columns` order) of each row whose tconst is in `wanted` (every row when None)."""
    with _open_lines(path, progress) as lines:
        header = _header(path, next(lines, None), columns)
        order = [header.index(column) for column in columns]
        id_first = header[0] == "tconst"
        for number, line in enumerate(lines, start=2):
            line = _strip_newline(line)
            if wanted is not None and id_first and line.split("\t", 1)[0] not in wanted:
                continue
            fields = line.split("\t")
            if len(fields) != len(header):
                raise DatasetError(
                    f"{path}:{number}: expected {len(header)} tab-separated fields, found {len(fields)}: {line[:80]!r}"
                )
            if wanted is None or fields[order[0]] in wanted:
                yield number, [fields[index] for index in order]


def _header(path: Path, line: str | None, columns: tuple[str, ...]) -> list[str]:
    expected = "\t".join(columns)
    if line is None:
        raise DatasetError(f"{path}: empty file; expected a header line with the columns {expected!r}")
    header = _strip_newline(line).removeprefix("\ufeff").split("\t")
    missing = [column for column in columns if column not in header]
    if missing:
        raise DatasetError(
            f"{path}:1: header lacks column(s) {', '.join(missing)}; expected the tab-separated columns "
            f"{', '.join(columns)} (is this the right file?)"
        )
    return header


@contextmanager
def _open_lines(path: Path, progress: bool) -> Iterator[Iterator[str]]:
    """The lines of a gzipped (or plain) UTF-8 file, split only at "\\n"; a progress bar follows the bytes read."""
    try:
        raw = path.open("rb")
    except OSError as error:
        raise DatasetError(f"{path}: cannot open: {error.strerror or error}") from error
    with raw, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name, disable=not progress) as bar:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        binary: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        yield _decoded_lines(path, binary, raw, bar)


def _decoded_lines(path: Path, binary: IO[bytes], raw: IO[bytes], bar: tqdm) -> Iterator[str]:
    """`binary`'s lines as text, with decoding and decompression errors turned into DatasetError; updates `bar`."""
    number = 0
    try:
        while line := binary.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                raise DatasetError(
                    f"{path}:{number}: line longer than {MAX_LINE_BYTES:,} bytes, which no dataset line is "
                    "(is this the right file?)"
                )
            if number % _PROGRESS_EVERY == 0:
                bar.update(raw.tell() - bar.n)
            yield line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path}:{number}: not UTF-8 ({error.reason} at byte {error.start})") from error
    except (EOFError, OSError, zlib.error) as error:
        raise DatasetError(f"{path}: unreadable gzip data after line {number}: {error}") from error
    bar.update(bar.total - bar.n)


def _strip_newline(line: str) -> str:
    return line.removesuffix("\n").removesuffix("\r")


def _int(text: str, column: str, where: str) -> int | None:
    return _number(text, int, column, where, "a whole number")


def _float(text: str, column: str, where: str) -> float | None:
    return _number(text, float, column, where, "a number")


def _number(text: str, kind: type[int] | type[float], column: str, where: str, what: str) -> Any:
    """`text` as a `kind`, None for `\\N` or nothing; DatasetError (saying it is not `what`) for anything else."""
    if text == NULL or not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise DatasetError(f"{where}: {column} {text!r} is not {what} or \\N") from None


def check_catalog(catalog: Catalog, records: Mapping[str, TitleRecord]) -> list[Difference]:
    """Where the catalog's year, genres (compared as sets), rating (within 0.05) or votes differ from the datasets,
    in catalog order; a movie the datasets lack gives one Difference with field "missing" (catalog: its title)."""
    differences: list[Difference] = []
    for movie in catalog:
        record = records.get(movie.imdb_id)
        if record is None:
            differences.append(Difference(movie.imdb_id, "missing", movie.title, None))
        else:
            differences.extend(_movie_differences(movie, record))
    return differences


def _movie_differences(movie: Movie, record: TitleRecord) -> Iterator[Difference]:
    if movie.year != record.year:
        yield Difference(movie.imdb_id, "year", movie.year, record.year)
    if set(movie.genres) != set(record.genres):
        yield Difference(movie.imdb_id, "genres", movie.genres, record.genres)
    if not _same_rating(movie.rating, record.rating):
        yield Difference(movie.imdb_id, "rating", movie.rating, record.rating)
    if movie.votes != record.votes:
        yield Difference(movie.imdb_id, "votes", movie.votes, record.votes)


def _same_rating(first: float | None, second: float | None) -> bool:
    if first is None or second is None:
        return first is second
    return abs(first - second) <= RATING_TOLERANCE + 1e-9


@dataclass(frozen=True)
class Filling:
    """A catalog's movies filled from the datasets, and the dataset values left out because the catalog format does
    not take them (a year past next few years' announced films, a rating out of 1-10): `refused` as Differences."""

    movies: list[Movie]
    refused: list[Difference]


def fill_catalog(catalog: Catalog, records: Mapping[str, TitleRecord], overwrite: bool = False) -> Filling:
    """Every catalog movie, in order, with its empty year, genres, rating and votes filled from the datasets.

    With `overwrite`, each of those four fields the datasets have replaces the catalog's value; a field the datasets
    lack (`\\N`, no ratings row) keeps it. Titles, posters and movies the datasets lack are never changed, and a value
    that read_catalog would refuse is left out (listed in `refused`), so the catalog written stays readable.
    """
    movies, refused = [], []
    for movie in catalog:
        filled, left_out = _filled(movie, records.get(movie.imdb_id), overwrite)
        movies.append(filled)
        refused.extend(left_out)
    return Filling(movies, refused)


def _filled(movie: Movie, record: TitleRecord | None, overwrite: bool) -> tuple[Movie, list[Difference]]:
    if record is None:
        return movie, []
    refused = []
    for name in ("year", "genres", "rating", "votes"):
        current, new = getattr(movie, name), getattr(record, name)
        if new not in (None, ()) and (overwrite or current in (None, ())):
            candidate = replace(movie, **{name: new})
            if refusal(candidate) is None:
                movie = candidate
            else:
                refused.append(Difference(movie.imdb_id, name, current, new))
    return movie, refused


def _show(value: object) -> str:
    if value is None or value == ():
        return "(none)"
    if isinstance(value, tuple):
        return "|".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def main(argv: Sequence[str] | None = None, prog: str = "python -m scraper.datasets") -> int:
    """`check CATALOG --basics F [--ratings F]` or `fill CATALOG --basics F [--ratings F] [--overwrite]`; `prog` is
    the command its usage names (`posterbench datasets`)."""
    arguments = _parser(prog).parse_args(argv)
    try:
        catalog = read_catalog(arguments.catalog, check_posters=False)
        records = read_datasets(
            arguments.basics,
            arguments.ratings,
            ids=[movie.imdb_id for movie in catalog],
            title_types=arguments.title_types,
            progress=not arguments.no_progress,
        )
    except (CatalogError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if arguments.command == "check":
        return _check_command(catalog, records)
    return _fill_command(catalog, records, arguments.overwrite)


def _check_command(catalog: Catalog, records: Mapping[str, TitleRecord]) -> int:
    differences = check_catalog(catalog, records)
    for difference in differences:
        print(difference.describe())
    missing = sum(difference.field == "missing" for difference in differences)
    differing = len({difference.imdb_id for difference in differences if difference.field != "missing"})
    print(
        f"{len(catalog)} movies: {differing} differ from the datasets, {missing} missing from them, "
        f"{len(differences)} differences in all"
    )
    print(json.dumps({"movies": len(catalog), "differences": len(differences), "missing": missing}))
    return 0


def _fill_command(catalog: Catalog, records: Mapping[str, TitleRecord], overwrite: bool) -> int:
    """Fill the catalog and rewrite its movies.csv, keeping the columns the catalog format does not read (a `note`),
    after its own: the file is the user's, and a fill that dropped them would lose data it was never asked to touch.
    """
    filling = fill_catalog(catalog, records, overwrite=overwrite)
    for left_out in filling.refused:
        print(f"left out, not a value a catalog takes: {left_out.describe()}", file=sys.stderr)
    movies = filling.movies
    changed = sum(new != old for new, old in zip(movies, catalog, strict=True))
    if changed:
        path = write_movies_csv(catalog.directory, movies, catalog.extra_columns, catalog.extra_values)
        print(f"{changed} of {len(catalog)} movies changed; wrote {path}")
    else:
        print(f"0 of {len(catalog)} movies changed; {catalog.directory / 'movies.csv'} left as it was")
    return 0


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Check or fill a catalog's year, genres, rating and votes from IMDb's non-commercial datasets.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="list where the catalog differs from the datasets")
    fill = commands.add_parser("fill", help="fill empty fields from the datasets and rewrite movies.csv")
    fill.add_argument("--overwrite", action="store_true", help="replace every field the datasets have")
    for command in (check, fill):
        command.add_argument("catalog", type=Path, help="catalog directory (holding movies.csv)")
        command.add_argument("--basics", type=Path, required=True, help="title.basics.tsv.gz")
        command.add_argument("--ratings", type=Path, help="title.ratings.tsv.gz (without it: no rating or votes)")
        command.add_argument(
            "--title-types",
            type=_title_types,
            default=("movie",),
            help="comma-separated titleType values to accept, or 'all' (default: movie)",
        )
        command.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


TITLE_TYPES = (
    "movie",
    "short",
    "tvEpisode",
    "tvMiniSeries",
    "tvMovie",
    "tvPilot",
    "tvSeries",
    "tvShort",
    "tvSpecial",
    "video",
    "videoGame",
)
"""The titleType values of IMDb's title.basics (https://developer.imdb.com/non-commercial-datasets/)."""


def _title_types(text: str) -> tuple[str, ...] | None:
    if text.strip() == "all":
        return None
    types = tuple(part.strip() for part in text.split(",") if part.strip())
    if not types:
        raise argparse.ArgumentTypeError("expected comma-separated title types such as movie,tvMovie, or 'all'")
    unknown = [kind for kind in types if kind not in TITLE_TYPES]
    if unknown:  # a typo matched no title, and every movie was reported missing from the datasets
        raise argparse.ArgumentTypeError(
            f"unknown title type(s) {', '.join(unknown)}: IMDb's are {', '.join(TITLE_TYPES)}, or 'all'"
        )
    return types


if __name__ == "__main__":
    sys.exit(main())

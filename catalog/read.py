"""Read a catalog directory and validate every row, with errors that name the file and line."""

from __future__ import annotations

import csv
import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from catalog.movie import COLUMNS, GENRES, IMDB_ID, Movie

MOVIES_CSV = "movies.csv"
FIRST_YEAR = 1870
RATING_RANGE = (1.0, 10.0)
MAX_REPORTED_ERRORS = 20


class CatalogError(ValueError):
    """A catalog that cannot be used; the message lists each problem with its file and line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = problems[:MAX_REPORTED_ERRORS]
        more = len(problems) - len(shown)
        text = "\n".join(shown) + (f"\n... and {more} more problems" if more else "")
        super().__init__(text)


@dataclass
class Catalog:
    """A validated catalog: its directory and its movies in file order; and the columns of its movies.csv that the
    catalog format does not read (a user's `note`), in file order, with each movie's values of them
    (`extra_values[imdb_id]`), so that a rewrite of movies.csv can keep them (write_movies_csv)."""

    directory: Path
    movies: list[Movie]
    extra_columns: tuple[str, ...] = ()
    extra_values: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {movie.imdb_id: row for row, movie in enumerate(self.movies)}

    def __len__(self) -> int:
        return len(self.movies)

    def __iter__(self) -> Iterator[Movie]:
        return iter(self.movies)

    def __contains__(self, imdb_id: object) -> bool:
        return imdb_id in self._index

    def position(self, imdb_id: str) -> int:
        """Row number of a movie (0-based, in file order); KeyError if absent."""
        return self._index[imdb_id]

    def get(self, imdb_id: str) -> Movie:
        return self.movies[self._index[imdb_id]]

    def poster_path(self, movie: Movie) -> Path:
        return self.directory / movie.poster

    def decades(self) -> np.ndarray:
        """Each movie's decade (1990 for 1994), in catalog order; -1 where its year is unknown."""
        return np.array([-1 if movie.year is None else movie.year // 10 * 10 for movie in self.movies], dtype=int)

    def labels(self, genres: tuple[str, ...] = GENRES, ids: list[str] | None = None) -> np.ndarray:
        """(n, len(genres)) uint8 matrix of genre tags of the movies `ids` (default: all, in file order)."""
        movies = self.movies if ids is None else [self.get(imdb_id) for imdb_id in ids]
        return np.array([movie.label_vector(genres) for movie in movies], dtype=np.uint8).reshape(
            len(movies), len(genres)
        )


def read_catalog(directory: str | Path, check_posters: bool = True) -> Catalog:
    """Read `directory/movies.csv`, check every row (and that each poster file exists).

    Raises CatalogError listing each problem as "path:line: what is wrong".
    """
    directory = Path(directory)
    csv_path = directory / MOVIES_CSV
    if not directory.exists():
        raise CatalogError([f"{directory}: catalog directory does not exist"])
    if not directory.is_dir():
        raise CatalogError([f"{directory}: not a directory; a catalog is a directory holding a {MOVIES_CSV}"])
    if not csv_path.is_file():
        what = "not a file" if csv_path.exists() else "missing"
        raise CatalogError([f"{csv_path}: {what}; a catalog directory needs a {MOVIES_CSV}"])
    try:
        return _read_rows(directory, csv_path, check_posters)
    except UnicodeDecodeError as error:
        raise CatalogError([f"{csv_path}: not UTF-8 text (byte {error.start}: {error.reason})"]) from None
    except csv.Error as error:
        raise CatalogError([f"{csv_path}: not a CSV file we can read ({error})"]) from None


class _Lines:
    """A file's lines as csv reads them, counted: csv skips the blank lines between rows, and its line_num then names
    a row from the blank line before it."""

    def __init__(self, handle: Iterator[str]) -> None:
        self.handle, self.count, self.since_last_row = handle, 0, []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self.handle)
        self.count += 1
        self.since_last_row.append(line)
        return line

    def start_row(self) -> None:
        """From here on, the lines read are the next row's."""
        self.since_last_row.clear()

    def first_of_row(self) -> int:
        """The line the row read since start_row starts on: its first line that is not blank."""
        blank = next((i for i, line in enumerate(self.since_last_row) if line.strip("\r\n")), len(self.since_last_row))
        return self.count - len(self.since_last_row) + 1 + blank


def _read_rows(directory: Path, csv_path: Path, check_posters: bool) -> Catalog:

    problems: list[str] = []
    movies: list[Movie] = []
    extra_values: dict[str, tuple[str, ...]] = {}
    seen: dict[str, int] = {}
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: a byte-order mark is no part of a name
        lines = _Lines(handle)
        reader = csv.DictReader(lines)
        header = reader.fieldnames or []
        _check_header(csv_path, header)
        extra_columns = tuple(column for column in header if column and column not in COLUMNS)
        rows = iter(reader)
        while True:
            lines.start_row()
            try:
                row = next(rows)
            except StopIteration:
                break
            except csv.Error as error:  # a field over csv's limit, a NUL...: named with the line it starts on
                raise CatalogError(
                    [f"{csv_path}:{lines.first_of_row()}: not a CSV row we can read ({error})"]
                ) from None
            # a quoted field may span lines: an unclosed quote runs to the file's end, so name the row's first line
            first_line, last_line = lines.first_of_row(), lines.count
            span = f"{first_line}" if last_line == first_line else f"{first_line}-{last_line}"
            where = f"{csv_path}:{span}"
            try:
                movie = _parse_row(row)
            except RowError as error:
                problems.extend(f"{where}: {problem}" for problem in error.problems)
                if check_posters and error.poster is not None and (problem := _poster_problem(directory, error.poster)):
                    problems.append(f"{where}: {problem}")
                continue
            if movie.imdb_id in seen:
                problems.append(f"{where}: duplicate imdb_id {movie.imdb_id} (first on line {seen[movie.imdb_id]})")
                continue
            seen[movie.imdb_id] = first_line
            if check_posters and (problem := _poster_problem(directory, movie.poster)):
                problems.append(f"{where}: {problem}")
                continue
            movies.append(movie)
            if extra_columns:
                extra_values[movie.imdb_id] = tuple(row[column] or "" for column in extra_columns)
    if problems:
        raise CatalogError(problems)
    if not movies:
        raise CatalogError([f"{csv_path}: no movies"])
    return Catalog(directory=directory, movies=movies, extra_columns=extra_columns, extra_values=extra_values)


def _check_header(csv_path: Path, header: list[str]) -> None:
    """Refuse a header that lacks a catalog column, or that names a column twice: csv.DictReader would give each
    row only the last of the two fields, silently (a second `title` would replace every title)."""
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        names = ", ".join(repr(column) for column in missing)
        raise CatalogError([f"{csv_path}:1: missing column(s) {names}; expected {','.join(COLUMNS)}"])
    twice = [column for column in dict.fromkeys(header) if column and header.count(column) > 1]  # "": a stray ","
    if twice:
        names = ", ".join(repr(column) for column in twice)
        raise CatalogError([f"{csv_path}:1: the header names column(s) {names} more than once; name each once"])


class RowError(ValueError):
    """Every problem of one movies.csv row (its fields are all read, so that `check` names them all at once), and
    its poster path when that field itself was fine (the file is checked too)."""

    def __init__(self, problems: list[str], poster: str | None) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.poster = poster


def _parse_row(row: dict[str, str | None]) -> Movie:
    if None in row:
        raise RowError(["more fields than columns (an unquoted comma?)"], None)
    if any(row[column] is None for column in COLUMNS):
        raise RowError(["fewer fields than columns"], None)
    problems: list[str] = []
    fields: dict[str, object] = {}
    for column, parse in FIELD_PARSERS.items():
        try:
            fields[column] = parse(row[column])
        except ValueError as error:
            problems.append(str(error))
    if problems:
        raise RowError(problems, fields.get("poster"))
    return Movie(**fields)


def _parse_imdb_id(text: str) -> str:
    imdb_id = text.strip()
    if not IMDB_ID.fullmatch(imdb_id):
        raise ValueError(f"bad imdb_id {imdb_id!r}: expected 'tt' followed by 7 or 8 digits")
    return imdb_id


def _parse_title(text: str) -> str:
    title = text.strip()
    if not title:
        raise ValueError("empty title")
    return title


def _poster_problem(directory: Path, poster: str) -> str | None:
    path = directory / poster
    if path.is_file():
        return None
    return f"poster file {path} is not a file" if path.exists() else f"poster file {path} does not exist"


def _parse_year(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    last_year = datetime.date.today().year + 5
    try:
        year = int(text)
    except ValueError:
        raise ValueError(f"year {text!r} is not a whole number") from None
    if not FIRST_YEAR <= year <= last_year:
        raise ValueError(f"year {year} out of range {FIRST_YEAR}-{last_year}")
    return year


def _parse_genres(text: str) -> tuple[str, ...]:
    text = text.strip()
    if not text:
        return ()
    genres = tuple(genre.strip() for genre in text.split("|"))
    if not all(genres):
        raise ValueError(f"genres {text!r} has an empty entry; expected names separated by '|'")
    return genres


def _parse_rating(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        rating = float(text)
    except ValueError:
        raise ValueError(f"rating {text!r} is not a number") from None
    low, high = RATING_RANGE
    if not low <= rating <= high:
        raise ValueError(f"rating {rating} out of range {low}-{high}")
    return rating


def _parse_votes(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        votes = int(text)
    except ValueError:
        raise ValueError(f"votes {text!r} is not a whole number") from None
    if votes < 0:
        raise ValueError(f"votes {votes} is negative")
    return votes


def _parse_poster(text: str) -> str:
    text = text.strip()
    if not text:
        raise ValueError("empty poster path")
    path = PurePosixPath(text)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"poster path {text!r} must be relative and stay inside the catalog directory")
    return text


FIELD_PARSERS = {
    "imdb_id": _parse_imdb_id,
    "title": _parse_title,
    "year": _parse_year,
    "genres": _parse_genres,
    "rating": _parse_rating,
    "votes": _parse_votes,
    "poster": _parse_poster,
}
"""Each movies.csv column's reader, in Movie's field order."""

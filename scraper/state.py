"""The scrape's state database (SQLite), so that an interrupted scrape resumes where it stopped: each search (genre and
release years) with its result total and how far it got, each movie found (merged over sightings, keyed by IMDb id)
with its poster's state, and which genre's searches found which movie. Every batch is one committed transaction."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from catalog import Movie
from scraper.search import PAPER_GENRES, SearchItem, YearRange, first_known

DOM, NEXT_DATA, TITLE_PAGE = 0, 1, 2
"""How exact a movie's record is: DOM only (rounded votes, no genres), `__NEXT_DATA__`, or its title page."""
SEARCH_STATUSES = ("new", "split", "open", "exhausted")
"""new: not loaded yet; split: its total was over the result cap, so two searches over half the years replace it;
open: total known, results being read; exhausted: every result it returns has been read."""
POSTER_STATUSES = ("pending", "done", "missing", "failed")
"""pending: to download; done: in the catalog; missing: IMDb has no poster for it; failed: retried on the next run."""
POSTER_DIRECTORY = "posters"
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS searches (
    genre TEXT NOT NULL,
    first_year INTEGER NOT NULL,
    last_year INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'split', 'open', 'exhausted')),
    total INTEGER,
    seen INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (genre, first_year, last_year)
);
CREATE TABLE IF NOT EXISTS movies (
    imdb_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    year INTEGER,
    rating REAL,
    votes INTEGER,
    genres TEXT NOT NULL DEFAULT '',
    detail INTEGER NOT NULL,
    poster_url TEXT,
    poster TEXT NOT NULL CHECK (poster IN ('pending', 'done', 'missing', 'failed'))
);
CREATE TABLE IF NOT EXISTS found (
    genre TEXT NOT NULL,
    imdb_id TEXT NOT NULL REFERENCES movies (imdb_id),
    PRIMARY KEY (genre, imdb_id)
);
"""


_TABLES = frozenset({"settings", "searches", "movies", "found"})
"""The tables of _SCHEMA: a progress file holds these and nothing else (or nothing yet)."""
_SQLITE_HEADER = b"SQLite format 3\x00"


class StateError(ValueError):
    """The state file cannot be used for this scrape (another format, or made with other year ranges)."""


def check_state_file(path: str | Path) -> None:
    """Raise StateError unless `path` can be a scrape's progress file: missing (it will be made), an empty file, or an
    SQLite database holding the scraper's tables and nothing else (or no table yet), of this scraper's version.
    Anything else (a directory, a CSV, the app's database) would be refused by SQLite with a traceback, or worse,
    silently get the scraper's tables and the WAL journal; it is only read here, and nothing is made or changed."""
    path = Path(path)
    if not path.exists():
        return
    if path.is_dir():
        raise StateError(f"{path} is a directory, not a progress file: give --state a file's path")
    if not path.is_file():
        raise StateError(f"{path} is not a regular file, so it is no progress file: give --state a file's path")
    try:
        with path.open("rb") as handle:
            start = handle.read(len(_SQLITE_HEADER))
    except OSError as error:
        raise StateError(f"{path}: cannot read the progress file ({error.strerror or error})") from error
    if not start:
        return  # SQLite makes an empty file a database
    if start != _SQLITE_HEADER:
        raise StateError(f"{path} is not an SQLite database, so it is no scrape's progress file: choose another path")
    tables, version = _contents(path)
    # the scraper's first tables, settings first, are what a scrape killed while it made them leaves: resumed
    if tables and not ("settings" in tables and tables <= _TABLES):
        others = sorted(tables - _TABLES)
        holds = ", ".join(others) if others else "only " + ", ".join(sorted(tables))
        raise StateError(
            f"{path} is an SQLite database of something else than a scrape (it holds {holds}), so it is not used "
            "as a progress file: choose another path"
        )
    if version not in (0, _SCHEMA_VERSION):
        raise StateError(f"{path} is a progress file of another scraper version ({version})")


def _contents(path: Path) -> tuple[frozenset[str], int]:
    """The names of the tables, views, indexes and triggers of the SQLite database `path` (SQLite's own left out),
    and its user_version. Only read: opened read-write only so that, as the last connection of a WAL database, it
    removes the -wal and -shm files that reading made (a read-only one leaves them), read-only where it must."""
    uri = f"file:{quote(str(path.resolve()))}"
    try:
        try:
            database = sqlite3.connect(f"{uri}?mode=rw", uri=True)
        except sqlite3.OperationalError:  # a file this user may only read
            database = sqlite3.connect(f"{uri}?mode=ro", uri=True)
        with contextlib.closing(database):
            names = database.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite%'").fetchall()
            version = database.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as error:
        raise StateError(f"{path} is not a readable SQLite database ({error}), so it is no progress file") from error
    return frozenset(name for (name,) in names), version


@dataclass(frozen=True)
class Search:
    genre: str
    years: YearRange
    status: str
    total: int | None
    seen: int
    """How many of its results (in order) have been read."""


@dataclass(frozen=True)
class MovieRecord:
    """What one sighting (a search result or a title page) says about a movie; None where it says nothing."""

    imdb_id: str
    title: str | None
    year: int | None
    rating: float | None
    votes: int | None
    genres: tuple[str, ...]
    poster_url: str | None
    detail: int

    @classmethod
    def from_item(cls, item: SearchItem) -> MovieRecord:
        detail = NEXT_DATA if item.exact else DOM
        return cls(item.imdb_id, item.title, item.year, item.rating, item.votes, item.genres, item.poster_url, detail)


@dataclass(frozen=True)
class Recorded:
    """What recording a batch did: the ids seen for the first time, and how many were already known."""

    new_ids: tuple[str, ...]
    repeats: int


def merge_records(old: MovieRecord, new: MovieRecord) -> MovieRecord:
    """One record from two sightings of a movie: each field from the more exact one when it has it, else from the
    other; genres united; the first poster URL kept (its poster may be downloaded already)."""
    first, second = (new, old) if new.detail >= old.detail else (old, new)
    genres = tuple(dict.fromkeys((*first.genres, *second.genres)))
    return MovieRecord(
        imdb_id=old.imdb_id,
        title=first.title or second.title,
        year=first_known(first.year, second.year),
        rating=first_known(first.rating, second.rating),
        votes=first_known(first.votes, second.votes),
        genres=genres,
        poster_url=old.poster_url or new.poster_url,
        detail=max(old.detail, new.detail),
    )


def catalog_genres(genres: Iterable[str]) -> tuple[str, ...]:
    """The paper's genres among `genres`, in PAPER_GENRES order."""
    wanted = set(genres)
    return tuple(genre for genre in PAPER_GENRES if genre in wanted)


class ScrapeState:
    """The progress database at `path` (created if missing; WAL journal); a context manager that closes it. An
    existing file must be a progress file (check_state_file: StateError otherwise, before anything is changed)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        check_state_file(self.path)  # StateError for anything that is not (or cannot become) a progress file
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        try:
            self._prepare()
        except BaseException:
            self._db.close()
            raise

    def _prepare(self) -> None:
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA foreign_keys = ON")
        with self._db:  # another version's file was refused by check_state_file
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ScrapeState:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # -- settings ----------------------------------------------------------------------------------------------------

    def check_years(self, years: Sequence[YearRange]) -> None:
        """Remember the year ranges of the first run; refuse other ones later (the searches are split from them)."""
        wanted = json.dumps([str(year_range) for year_range in years])
        row = self._db.execute("SELECT value FROM settings WHERE name = 'years'").fetchone()
        if row is None:
            with self._db:
                self._db.execute("INSERT INTO settings (name, value) VALUES ('years', ?)", (wanted,))
        elif row[0] != wanted:
            before = ",".join(json.loads(row[0]))
            raise StateError(
                f"{self.path} holds a scrape with the year ranges {before}; resume it with --years {before}, "
                "or use another --state file (or output directory) for other ranges"
            )

    # -- searches ----------------------------------------------------------------------------------------------------

    def add_searches(self, genre: str, years: Sequence[YearRange]) -> None:
        """The genre's first searches, one per year range (nothing happens when the genre has searches already)."""
        with self._db:
            if self._db.execute("SELECT 1 FROM searches WHERE genre = ?", (genre,)).fetchone():
                return
            self._db.executemany(
                "INSERT INTO searches (genre, first_year, last_year) VALUES (?, ?, ?)",
                [(genre, year_range.first, year_range.last) for year_range in years],
            )

    def searches(self, genre: str, statuses: Sequence[str] = SEARCH_STATUSES) -> list[Search]:
        """The genre's searches with one of `statuses`, oldest years first."""
        marks = ",".join("?" * len(statuses))
        rows = self._db.execute(
            f"SELECT genre, first_year, last_year, status, total, seen FROM searches "
            f"WHERE genre = ? AND status IN ({marks}) ORDER BY first_year, last_year",
            (genre, *statuses),
        ).fetchall()
        return [Search(row[0], YearRange(row[1], row[2]), row[3], row[4], row[5]) for row in rows]

    def set_total(self, search: Search, total: int | None) -> None:
        """The total a search reported; one with no result is exhausted at once."""
        status = "exhausted" if total == 0 else "open"
        with self._db:
            self._db.execute(
                "UPDATE searches SET total = ?, status = ? WHERE genre = ? AND first_year = ? AND last_year = ?",
                (total, status, *self._key(search)),
            )

    def split(self, search: Search, total: int) -> tuple[YearRange, YearRange]:
        """Replace a search whose total is over the cap by two over half its years each."""
        halves = search.years.halves()
        with self._db:
            self._db.execute(
                "UPDATE searches SET total = ?, status = 'split' WHERE genre = ? AND first_year = ? AND last_year = ?",
                (total, *self._key(search)),
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO searches (genre, first_year, last_year) VALUES (?, ?, ?)",
                [(search.genre, half.first, half.last) for half in halves],
            )
        return halves

    def mark_exhausted(self, search: Search, seen: int) -> None:
        with self._db:
            self._db.execute(
                "UPDATE searches SET status = 'exhausted', seen = ? "
                "WHERE genre = ? AND first_year = ? AND last_year = ?",
                (seen, *self._key(search)),
            )

    @staticmethod
    def _key(search: Search) -> tuple[str, int, int]:
        return search.genre, search.years.first, search.years.last

    # -- movies ------------------------------------------------------------------------------------------------------

    def record(self, search: Search, records: Sequence[MovieRecord], seen: int) -> Recorded:
        """Record a batch of results of `search` and that it has read `seen` results, in one transaction."""
        new_ids: list[str] = []
        repeats = 0
        with self._db:
            for record in records:
                if self._upsert(record):
                    new_ids.append(record.imdb_id)
                else:
                    repeats += 1
                self._db.execute(
                    "INSERT OR IGNORE INTO found (genre, imdb_id) VALUES (?, ?)", (search.genre, record.imdb_id)
                )
            self._db.execute(
                "UPDATE searches SET seen = ? WHERE genre = ? AND first_year = ? AND last_year = ?",
                (seen, *self._key(search)),
            )
        return Recorded(tuple(new_ids), repeats)

    def record_movie(self, record: MovieRecord) -> None:
        """Merge one sighting (a title page) into its movie's record."""
        with self._db:
            self._upsert(record)

    def movie(self, imdb_id: str) -> MovieRecord | None:
        row = self._db.execute(
            "SELECT imdb_id, title, year, rating, votes, genres, poster_url, detail FROM movies WHERE imdb_id = ?",
            (imdb_id,),
        ).fetchone()
        if row is None:
            return None
        genres = tuple(genre for genre in row[5].split("|") if genre)
        return MovieRecord(row[0], row[1], row[2], row[3], row[4], genres, row[6], row[7])

    def _upsert(self, record: MovieRecord) -> bool:
        """Insert or merge a record; True when the movie is new. A poster URL revives a 'missing' poster."""
        old = self.movie(record.imdb_id)
        merged = record if old is None else merge_records(old, record)
        values = (merged.title, merged.year, merged.rating, merged.votes, "|".join(merged.genres), merged.detail)
        if old is None:
            if not merged.title:
                raise ValueError(f"a first sighting of {record.imdb_id} needs a title")
            poster = "pending" if merged.poster_url else "missing"
            self._db.execute(
                "INSERT INTO movies (title, year, rating, votes, genres, detail, poster_url, poster, imdb_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, merged.poster_url, poster, record.imdb_id),
            )
            return True
        self._db.execute(
            "UPDATE movies SET title = ?, year = ?, rating = ?, votes = ?, genres = ?, detail = ?, poster_url = ?, "
            "poster = CASE WHEN poster = 'missing' AND ? IS NOT NULL THEN 'pending' ELSE poster END WHERE imdb_id = ?",
            (*values, merged.poster_url, merged.poster_url, record.imdb_id),
        )
        return False

    def found_count(self, genre: str) -> int:
        return self._db.execute("SELECT COUNT(*) FROM found WHERE genre = ?", (genre,)).fetchone()[0]

    def found_ids(self, genre: str) -> set[str]:
        """The movies the genre's searches found."""
        return {row[0] for row in self._db.execute("SELECT imdb_id FROM found WHERE genre = ?", (genre,))}

    def title_page_candidates(self, genre: str, *, only_inexact: bool) -> list[str]:
        """Movies found by the genre's searches whose title page has not been read (only_inexact: nor their
        `__NEXT_DATA__`), in the order they were found."""
        below = NEXT_DATA if only_inexact else TITLE_PAGE
        rows = self._db.execute(
            "SELECT movies.imdb_id FROM movies JOIN found ON found.imdb_id = movies.imdb_id "
            "WHERE found.genre = ? AND movies.detail < ? ORDER BY movies.rowid",
            (genre, below),
        ).fetchall()
        return [row[0] for row in rows]

    # -- posters -----------------------------------------------------------------------------------------------------

    def posters_to_fetch(
        self,
        ids: Iterable[str] | None = None,
        genre: str | None = None,
        statuses: Sequence[str] = ("pending", "failed"),
    ) -> list[tuple[str, str]]:
        """(id, poster URL) of posters still to download (by default 'pending' or 'failed'), of `ids` or the genre's
        movies or all, in the order the movies were found."""
        sql = "SELECT imdb_id, poster_url FROM movies WHERE poster_url IS NOT NULL"
        sql += f" AND poster IN ({', '.join('?' * len(statuses))})"
        parameters: list[str] = list(statuses)
        if ids is not None:
            wanted = list(ids)
            sql += f" AND imdb_id IN ({', '.join('?' * len(wanted))})"
            parameters += wanted
        if genre is not None:
            sql += " AND EXISTS (SELECT 1 FROM found WHERE found.imdb_id = movies.imdb_id AND found.genre = ?)"
            parameters.append(genre)
        rows = self._db.execute(sql + " ORDER BY rowid", parameters).fetchall()
        return [(row[0], row[1]) for row in rows]

    def set_poster(self, imdb_id: str, status: str) -> None:
        if status not in POSTER_STATUSES:
            raise ValueError(f"unknown poster status {status!r}; expected one of {', '.join(POSTER_STATUSES)}")
        with self._db:
            self._db.execute("UPDATE movies SET poster = ? WHERE imdb_id = ?", (status, imdb_id))

    def recheck_poster_files(self, catalog_dir: Path) -> int:
        """Mark 'done' posters whose file is gone as 'pending' again; how many there were."""
        done = [row[0] for row in self._db.execute("SELECT imdb_id FROM movies WHERE poster = 'done'")]
        gone = [imdb_id for imdb_id in done if not (catalog_dir / poster_path(imdb_id)).is_file()]
        with self._db:
            self._db.executemany("UPDATE movies SET poster = 'pending' WHERE imdb_id = ?", [(i,) for i in gone])
        return len(gone)

    def poster_counts(self) -> dict[str, int]:
        """How many movies have each poster status."""
        counts = dict.fromkeys(POSTER_STATUSES, 0)
        for status, count in self._db.execute("SELECT poster, COUNT(*) FROM movies GROUP BY poster"):
            counts[status] = count
        return counts

    # -- the catalog -------------------------------------------------------------------------------------------------

    def catalog_movies(self) -> list[Movie]:
        """The movies whose poster is downloaded, as catalog rows in the order they were found; genres are the ones
        their record names plus the genres whose searches found them, kept to the paper's 18."""
        found: dict[str, set[str]] = {}
        for genre, imdb_id in self._db.execute("SELECT genre, imdb_id FROM found"):
            found.setdefault(imdb_id, set()).add(genre)
        rows = self._db.execute(
            "SELECT imdb_id, title, year, rating, votes, genres FROM movies WHERE poster = 'done' ORDER BY rowid"
        )
        return [
            Movie(
                imdb_id=imdb_id,
                title=title,
                year=year,
                genres=catalog_genres({*genres.split("|"), *found.get(imdb_id, ())}),
                rating=rating,
                votes=votes,
                poster=poster_path(imdb_id),
            )
            for imdb_id, title, year, rating, votes, genres in rows
        ]


def poster_path(imdb_id: str) -> str:
    """Where a movie's poster goes in the catalog directory."""
    return f"{POSTER_DIRECTORY}/{imdb_id}.jpg"

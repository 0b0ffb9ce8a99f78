"""The app's database: SQLite (the embedded default, a file) or PostgreSQL (`DATABASE_URL`, shared by every worker
on every host), one connection per request closed on teardown, the same SQL and guarantees on both, and the
`init-db` command that brings the schema to its latest version (app/migrations)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
from flask import Flask, current_app, g
from flask.cli import with_appcontext

BUSY_TIMEOUT_SECONDS = 10
CONNECT_TIMEOUT_SECONDS = 10
POSTGRES_SCHEMES = ("postgresql", "postgres")
MAX_ROW_ID = 2**63 - 1
"""The largest id a table can hold (SQLite's INTEGER and PostgreSQL's BIGINT are signed 64-bit): a larger one names
no row, and the drivers refuse to send it (OverflowError, NumericValueOutOfRange)."""


class StorageUnavailableError(Exception):
    """The database cannot be read or written right now (read-only, disk full, unreachable, busy, damaged): not the
    request's fault nor a bug. `reason` says why in words for a person; the driver's own error is the cause."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason} ({detail})")
        self.reason = reason
        self.detail = detail


class DuplicateRowError(Exception):
    """An insert broke a primary key or unique constraint (a second vote on one recommendation)."""


# What SQLite says (lower case) when its storage fails, and how to say it to a person. Any other sqlite3 error is a
# bug (bad SQL, a broken constraint) and is left as it is. A missing table is taken for a database file deleted or
# replaced while the app ran (the app creates every table at start); its 503 is logged with the traceback, so that a
# mistyped table name in new code still shows where it is.
LOST_TABLES = "the database has lost its tables (deleted or replaced while the app ran; restart the app to create them)"
SQLITE_FAULTS = (
    ("readonly database", "the database is read-only"),
    ("disk is full", "the disk is full"),
    ("unable to open database file", "the database file cannot be opened"),
    ("database is locked", "the database is busy"),
    ("disk i/o error", "the disk failed to read or write"),
    ("malformed", "the database file is damaged"),
    ("file is not a database", "the database file is damaged"),
    ("no such table", LOST_TABLES),
)
# PostgreSQL's SQLSTATE codes (exact, then by class) that are storage faults, and how to say them.
POSTGRES_FAULTS = {
    "25006": "the database is read-only",
    "53100": "the disk is full",
    "53": "the database server is out of resources",
    "08": "the database server cannot be reached",
    "57": "the database server is shutting down or restarting",
    "58": "the database server failed to read or write",
    "40001": "the database is busy",
    "40P01": "the database is busy",
    "55P03": "the database is busy",
    "57014": "the database is busy",
    "42P01": LOST_TABLES,  # undefined_table
}


@dataclass(frozen=True)
class Dialect:
    """What differs between the two databases for the app's SQL, which is written once with `?` placeholders."""

    name: str  # "sqlite" or "postgresql"
    seconds_ago: str  # an SQL timestamp `?` seconds before now, comparable with the `created` columns

    def sql(self, text: str) -> str:
        if self.name == "sqlite":
            return text
        return text.replace("%", "%%").replace("?", "%s")  # psycopg's placeholders; a literal % doubled


SQLITE = Dialect("sqlite", "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ? || ' seconds')")
POSTGRESQL = Dialect("postgresql", "now() - make_interval(secs => ?)")


class Database:
    """One connection, to SQLite or PostgreSQL, with what the app needs of it: `execute`, `insert` returning the
    new id, and `transaction`. Statements outside a transaction commit at once. Driver errors come out as
    StorageUnavailableError (storage faults) or DuplicateRowError (a broken key); any other is a bug, left as is."""

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self.connection = connection
        self.dialect = dialect
        if dialect is SQLITE:
            connection.isolation_level = None  # autocommit; transactions are begun explicitly

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> Any:
        """Run one statement; returns the driver's cursor (fetchone, fetchall, iteration; rows read by position or
        by column name)."""
        with translated_errors(self.dialect):
            return self.connection.execute(self.dialect.sql(sql), tuple(parameters))

    def insert(self, sql: str, parameters: Sequence[object] = ()) -> int:
        """Run an INSERT into a table with an `id` key and return the new row's id."""
        return int(self.execute(f"{sql} RETURNING id", parameters).fetchone()[0])

    @contextmanager
    def transaction(self, lock: str | None = None) -> Iterator[None]:
        """One transaction: committed at the end, rolled back on any error. Transactions given the same `lock` run
        one at a time (SQLite runs every writing transaction one at a time anyway)."""
        with translated_errors(self.dialect):
            if self.dialect is SQLITE:
                self.connection.execute("BEGIN IMMEDIATE")  # takes the write lock now: reads and writes agree
                try:
                    yield
                except BaseException:
                    if self.connection.in_transaction:  # SQLite rolls back by itself on some errors (disk full)
                        self.connection.execute("ROLLBACK")
                    raise
                self.connection.execute("COMMIT")
                return
            with self.connection.transaction():
                if lock is not None:
                    self.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (f"posterbench {lock}",))
                yield

    def script(self, sql: str) -> None:
        """Run several statements (a migration) inside the current transaction."""
        with translated_errors(self.dialect):
            if self.dialect is SQLITE:
                for statement in split_statements(sql):
                    self.connection.execute(statement)
            else:
                self.connection.execute(sql)  # no parameters: PostgreSQL takes several statements at once

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def split_statements(sql: str) -> list[str]:
    """The statements of an SQLite script, split where sqlite3 says one is complete (so a `;` inside a string or a
    comment does not split it)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    unfinished = "\n".join(line for line in current.splitlines() if not line.strip().startswith("--")).strip()
    if unfinished:
        raise ValueError(f"an SQL statement is not finished: {unfinished[:80]!r}")
    return statements


@contextmanager
def translated_errors(dialect: Dialect) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as error:
        raise_translated_sqlite(error)
    except Exception as error:
        if dialect is POSTGRESQL and type(error).__module__.startswith("psycopg"):
            raise_translated_postgres(error)
        raise


def raise_translated_sqlite(error: sqlite3.Error) -> None:
    if isinstance(error, sqlite3.IntegrityError) and ("UNIQUE" in str(error) or "PRIMARY KEY" in str(error)):
        raise DuplicateRowError(str(error)) from error
    if type(error) in (sqlite3.OperationalError, sqlite3.DatabaseError):  # not IntegrityError, ProgrammingError...
        text = str(error).lower()
        reason = next((reason for needle, reason in SQLITE_FAULTS if needle in text), None)
        if reason is not None:
            raise StorageUnavailableError(reason, str(error)) from error
    raise error


def raise_translated_postgres(error: Exception) -> None:
    import psycopg

    code = getattr(error, "sqlstate", None)
    if code == "23505":  # unique_violation
        raise DuplicateRowError(str(error)) from error
    reason = None
    if code:
        reason = POSTGRES_FAULTS.get(code) or POSTGRES_FAULTS.get(code[:2])
    elif isinstance(error, psycopg.OperationalError):  # no SQLSTATE: the connection itself failed
        reason = POSTGRES_FAULTS["08"]
    if reason is not None:
        first_line = str(error).strip().split("\n")[0]
        raise StorageUnavailableError(reason, first_line or repr(error)) from error
    raise error


# ---------------------------------------------------------------- opening a database


def is_postgres(target: str | Path) -> bool:
    return urlsplit(str(target)).scheme in POSTGRES_SCHEMES


def sqlite_path(target: str | Path) -> str:
    """The file of a SQLite target: a path, or a sqlite:///relative or sqlite:////absolute URL."""
    text = str(target)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") :]
    elif re.match(r"^[a-z][a-z0-9+.-]*://", text):
        raise ValueError(f"unsupported database URL {redacted(text)!r}: use postgresql://... or sqlite:///path")
    if not text.strip():  # sqlite3 would open "" as a temporary database, and the lock file would land in "."
        raise ValueError("the SQLite database path is empty: name a file")
    return text


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection to the SQLite file at `path`."""
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, detect_types=sqlite3.PARSE_DECLTYPES)
    try:
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        connection.close()
        raise
    return connection


def connect_postgres(url: str) -> Any:
    """A connection to the PostgreSQL server at `url`, in autocommit mode, with rows read like sqlite3.Row."""
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS, row_factory=named_rows)


def open_database(target: str | Path) -> Database:
    """A Database on `target`: a postgresql:// URL, or a SQLite file path (or sqlite:/// URL)."""
    if is_postgres(target):
        with translated_errors(POSTGRESQL):
            return Database(connect_postgres(str(target)), POSTGRESQL)
    with translated_errors(SQLITE):
        return Database(connect(sqlite_path(target)), SQLITE)


class Row(tuple):
    """A PostgreSQL row read like sqlite3.Row: by position, or by column name."""

    positions: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self.positions[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self.positions)


def named_rows(cursor: Any) -> Any:
    """psycopg's row factory for Row."""
    positions = {column.name: number for number, column in enumerate(cursor.description or ())}

    def make(values: Sequence[object]) -> Row:
        row = Row(values)
        row.positions = positions
        return row

    return make


def redacted(url: str) -> str:
    """`url` with any password replaced by ***, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


# ---------------------------------------------------------------- the app's connection


def configured_target(config: dict[str, Any] | Any) -> str:
    """DATABASE_URL when set (PostgreSQL, or sqlite:///), else the SQLite file DATABASE."""
    return config.get("DATABASE_URL") or str(config["DATABASE"])


def get_db() -> Database:
    if "db" not in g:
        g.db = open_database(configured_target(current_app.config))
    return g.db


def close_db(_error: BaseException | None = None) -> None:
    database = g.pop("db", None)
    if database is not None:
        database.close()


def init_db(target: str | Path) -> list[int]:
    """Bring the database at `target` to the latest schema version; never drops data. Returns the versions applied
    now (none when it was up to date)."""
    from app.migrations import migrate

    return migrate(target)


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create the database tables or bring them up to date (existing data is kept)."""
    from app.migrations import latest_version

    target = configured_target(current_app.config)
    applied = init_db(target)
    done = f"applied migration(s) {', '.join(map(str, applied))}" if applied else "it was up to date"
    click.echo(f"database ready at {redacted(str(target))}: schema version {latest_version()}, {done}")


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)

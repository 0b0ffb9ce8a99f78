"""The SQLite database: one connection per request, closed on teardown, and the `init-db` command."""

from __future__ import annotations

import fcntl
import sqlite3
from pathlib import Path

import click
from flask import Flask, current_app, g
from flask.cli import with_appcontext

BUSY_TIMEOUT_SECONDS = 10


def connect(path: str | Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, detect_types=sqlite3.PARSE_DECLTYPES)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA foreign_keys = ON")
    return connection


def get_db() -> sqlite3.Connection:
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE"])
    return g.db


def close_db(_error: BaseException | None = None) -> None:
    connection = g.pop("db", None)
    if connection is not None:
        connection.close()


def init_db(path: str | Path) -> None:
    """Create the tables that do not exist yet; never drops data. Processes starting together (gunicorn's workers)
    take turns through a lock file beside the database: switching a new database to WAL while another process
    creates its tables fails at once with "database is locked", whatever the busy time-out."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    schema = (Path(__file__).parent / "schema.sql").read_text()
    with open(f"{path}.init-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        with connect(path) as connection:
            connection.execute("PRAGMA journal_mode = WAL")  # readers do not block the writer across workers
            connection.executescript(schema)
            add_missing_columns(connection)
            for statement in LATER_INDEXES:
                connection.execute(statement)
        connection.close()


# Columns added after a database may have been created, with the definition that brings an old table up to date.
LATER_COLUMNS = {
    ("recommendations", "policy"): "TEXT NOT NULL DEFAULT 'epsilon_greedy'",
    ("recommendations", "explored"): "INTEGER NOT NULL DEFAULT 0 CHECK (explored IN (0, 1))",
    ("feedback", "client"): "TEXT NOT NULL DEFAULT ''",
}
LATER_INDEXES = ("CREATE INDEX IF NOT EXISTS feedback_client ON feedback (client, created)",)


def add_missing_columns(connection: sqlite3.Connection) -> None:
    for (table, column), definition in LATER_COLUMNS.items():
        present = {row["name"] for row in connection.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create the database tables (existing data is kept)."""
    init_db(current_app.config["DATABASE"])
    click.echo(f"database ready at {current_app.config['DATABASE']}")


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)

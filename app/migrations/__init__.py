"""Versioned schema migrations: numbered SQL files per database (app/migrations/<sqlite|postgresql>/NNNN_name.sql),
each applied once, in order, in its own transaction, and recorded in the schema_migrations table. Processes that
start together (gunicorn's workers, on one host or several) take turns, so each migration runs exactly once.

To change the schema, add the next number in both folders; never edit a migration that has been released."""

from __future__ import annotations

import fcntl
import re
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from app.db import Database, is_postgres, open_database, split_statements, sqlite_path

MIGRATIONS_DIR = Path(__file__).resolve().parent
MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
MIGRATIONS_TABLE = {
    "sqlite": "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " applied TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
    "postgresql": "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " applied TIMESTAMPTZ NOT NULL DEFAULT now())",
}
# Columns that SQLite databases made before versioned migrations may lack, with what brings them to version 1.
UNVERSIONED_COLUMNS = {
    ("recommendations", "policy"): "TEXT NOT NULL DEFAULT 'epsilon_greedy'",
    ("recommendations", "explored"): "INTEGER NOT NULL DEFAULT 0 CHECK (explored IN (0, 1))",
    ("feedback", "client"): "TEXT NOT NULL DEFAULT ''",
}
CREATED_OBJECT = re.compile(r"^(?:--[^\n]*\n|\s)*CREATE\s+(?P<kind>TABLE|INDEX)\s+(?P<name>\w+)", re.IGNORECASE)
MADE_TABLE_OR_INDEX = re.compile(
    r"^\s*CREATE\s+(?:TABLE|(?:UNIQUE\s+)?INDEX)\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE | re.MULTILINE
)
ADDED_COLUMN = re.compile(
    r"^\s*ALTER\s+TABLE\s+(\w+)\s+ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE | re.MULTILINE
)
UNRECORDED = (
    "the database holds PosterBench's tables without the record of their migrations (its schema_migrations table is"
    " missing or empty), so it will not be changed: restore that table from a backup, or use another database"
)


class MigrationError(RuntimeError):
    """The migrations on disk are out of order, or the database is newer than this PosterBench."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def sql(self) -> str:
        return self.path.read_text()


def migrations(dialect: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations for `dialect` ("sqlite" or "postgresql"), numbered 1, 2, ... with no gap."""
    found = []
    for path in sorted((directory / dialect).glob("*.sql")):
        match = MIGRATION_FILE.match(path.name)
        if match is None:
            raise MigrationError(f"{path} is not named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path))
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"the migrations in {directory / dialect} are numbered {versions}, not 1, 2, 3, ...")
    return found


def latest_version(dialect: str = "sqlite", directory: Path = MIGRATIONS_DIR) -> int:
    return len(migrations(dialect, directory))


def migrate(target: str | Path, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply the migrations that the database at `target` (a PostgreSQL URL or a SQLite path) lacks; returns their
    versions. Data is never dropped."""
    if is_postgres(target):
        with closing(open_database(target)) as database:
            return apply_pending(database, migrations("postgresql", directory))
    path = Path(sqlite_path(target))
    path.parent.mkdir(parents=True, exist_ok=True)
    # Switching a new database to WAL while another process creates its tables fails at once with "database is
    # locked", whatever the busy time-out: processes starting together take turns through a lock file.
    with open(f"{path}.init-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        with closing(open_database(path)) as database:
            database.execute("PRAGMA journal_mode = WAL")  # readers do not block the writer across workers
            return apply_pending(database, migrations("sqlite", directory))


def apply_pending(database: Database, known: list[Migration]) -> list[int]:
    applied_now = []
    while True:
        with database.transaction(lock="migrations"):  # one process at a time, and one migration per transaction
            database.execute(MIGRATIONS_TABLE[database.dialect.name])
            applied = {int(version) for (version,) in database.execute("SELECT version FROM schema_migrations")}
            if not applied and holds_unrecorded_objects(database, known):
                raise MigrationError(UNRECORDED)
            if not applied and database.dialect.name == "sqlite" and has_object(database, "recommendations"):
                adopt_unversioned(database, known[0])
                applied = {known[0].version}
            unknown = sorted(applied - {migration.version for migration in known})
            if unknown:
                raise MigrationError(
                    f"the database has schema version(s) {unknown}, newer than this PosterBench knows"
                    f" ({len(known)}): upgrade PosterBench, or use another database"
                )
            pending = [migration for migration in known if migration.version not in applied]
            if not pending:
                return applied_now
            migration = pending[0]
            database.script(migration.sql())
            record(database, migration)
            applied_now.append(migration.version)


def record(database: Database, migration: Migration) -> None:
    database.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (migration.version, migration.name))


def made_objects(migration: Migration) -> tuple[list[str], list[tuple[str, str]]]:
    """The tables and indexes that `migration` creates, and the (table, column) pairs it adds to tables."""
    sql = migration.sql()
    return MADE_TABLE_OR_INDEX.findall(sql), ADDED_COLUMN.findall(sql)


def holds_unrecorded_objects(database: Database, known: list[Migration]) -> bool:
    """Whether a database that records no migration already holds what a migration makes: any migration's table,
    index or column on PostgreSQL; on SQLite, one of a migration after the first (a database from before versioned
    migrations holds version 1's alone, and is adopted). Migrating it would run a migration again and fail."""
    later = known[1:] if database.dialect.name == "sqlite" else known
    for migration in later:
        names, columns = made_objects(migration)
        if any(has_object(database, name) for name in names):
            return True
        if any(has_column(database, table, column) for table, column in columns):
            return True
    return False


def has_object(database: Database, name: str) -> bool:
    """Whether the database has a table or index called `name` (on PostgreSQL: in the schema it creates tables in)."""
    if database.dialect.name == "sqlite":
        return database.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None
    found = database.execute(
        "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relname = ?",
        (name,),
    )
    return found.fetchone() is not None


def has_column(database: Database, table: str, column: str) -> bool:
    """Whether the database's table `table` has a column called `column` (False when there is no such table)."""
    if database.dialect.name == "sqlite":
        return any(row["name"] == column for row in database.execute(f"PRAGMA table_info({table})"))
    found = database.execute(
        "SELECT 1 FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = ? AND column_name = ?",
        (table, column),
    )
    return found.fetchone() is not None


def adopt_unversioned(database: Database, first: Migration) -> None:
    """A SQLite database made before migrations were versioned: add the tables, columns and indexes of version 1
    that it lacks, and record it as at version 1."""
    statements = split_statements(first.sql())
    creates = [(CREATED_OBJECT.match(statement), statement) for statement in statements]
    for kind in ("TABLE", "INDEX"):  # tables, then their missing columns, then the indexes that may need them
        for match, statement in creates:
            if match and match["kind"].upper() == kind and not has_object(database, match["name"]):
                database.execute(statement)
        if kind == "TABLE":
            add_missing_columns(database)
    record(database, first)


def add_missing_columns(database: Database) -> None:
    for (table, column), definition in UNVERSIONED_COLUMNS.items():
        if not has_column(database, table, column):
            database.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

"""Versioned migrations on a real SQLite file and a real PostgreSQL server: each applied once and in order, kept
data, a failed migration rolled back whole, and a database newer than the code refused with a clear message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.db import open_database, split_statements
from app.migrations import MIGRATIONS_DIR, MigrationError, latest_version, migrate, migrations

INSERT_RECOMMENDATION = (
    "INSERT INTO recommendations (arm, epsilon, arm_probability, query_kind, genres, results)"
    " VALUES ('cosine', 1, 0.5, 'sample', '{}', '[]')"
)


def versions(target: str) -> list[tuple[int, str]]:
    with open_database(target) as database:
        return [tuple(row) for row in database.execute("SELECT version, name FROM schema_migrations ORDER BY version")]


def copy_of_migrations(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return directory


def add_migration(directory: Path, name: str, sql: str) -> None:
    for dialect in ("sqlite", "postgresql"):
        number = len(list((directory / dialect).glob("*.sql"))) + 1
        (directory / dialect / f"{number:04d}_{name}.sql").write_text(sql)


def test_both_databases_have_the_same_versions() -> None:
    sqlite, postgresql = migrations("sqlite"), migrations("postgresql")
    assert [(m.version, m.name) for m in sqlite] == [(m.version, m.name) for m in postgresql]
    assert latest_version("sqlite") == latest_version("postgresql") >= 1


def test_a_new_database_is_migrated_once(database_target: str) -> None:
    assert migrate(database_target) == list(range(1, latest_version() + 1))
    assert migrate(database_target) == []
    assert versions(database_target)[:2] == [(1, "recommendations_and_feedback"), (2, "what_the_poster_evokes")]
    assert [version for version, _ in versions(database_target)] == list(range(1, latest_version() + 1))
    with open_database(database_target) as database:
        database.execute(INSERT_RECOMMENDATION)
        assert database.execute("SELECT policy, explored FROM recommendations").fetchone()[:] == ("epsilon_greedy", 0)


def test_a_later_migration_is_applied_once_and_keeps_the_data(database_target: str, tmp_path: Path) -> None:
    migrate(database_target)
    with open_database(database_target) as database:
        database.execute(INSERT_RECOMMENDATION)
    directory = copy_of_migrations(tmp_path)
    add_migration(directory, "recommendation_note", "ALTER TABLE recommendations ADD COLUMN note TEXT DEFAULT 'kept';")
    later = latest_version() + 1
    assert migrate(database_target, directory) == [later]
    assert migrate(database_target, directory) == []
    assert [version for version, _ in versions(database_target)] == list(range(1, later + 1))
    with open_database(database_target) as database:
        assert database.execute("SELECT arm, note FROM recommendations").fetchall()[0][:] == ("cosine", "kept")


def test_a_failed_migration_is_rolled_back_whole(database_target: str, tmp_path: Path) -> None:
    migrate(database_target)
    directory = copy_of_migrations(tmp_path)
    add_migration(
        directory,
        "half_done",
        "CREATE TABLE first_half (id INTEGER PRIMARY KEY);\nINSERT INTO no_such_table VALUES (1);\n",
    )
    with pytest.raises(Exception, match="no_such_table"):
        migrate(database_target, directory)
    assert [version for version, _ in versions(database_target)] == list(range(1, latest_version() + 1))
    with open_database(database_target) as database, pytest.raises(Exception, match="first_half"):
        database.execute("SELECT * FROM first_half")


def test_a_database_newer_than_the_code_is_refused(database_target: str, tmp_path: Path) -> None:
    directory = copy_of_migrations(tmp_path)
    add_migration(directory, "from_the_future", "CREATE TABLE future (id INTEGER PRIMARY KEY);")
    migrate(database_target, directory)
    known = latest_version()
    with pytest.raises(
        MigrationError, match=rf"schema version\(s\) \[{known + 1}\], newer than this PosterBench knows \({known}\)"
    ):
        migrate(database_target)


def test_migrations_numbered_with_a_gap_are_refused(tmp_path: Path) -> None:
    directory = copy_of_migrations(tmp_path)
    skipped = latest_version() + 2
    (directory / "sqlite" / f"{skipped:04d}_skipped_one.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=rf"numbered \[1, .*{skipped}\]"):
        migrations("sqlite", directory)
    (directory / "sqlite" / f"{skipped:04d}_skipped_one.sql").rename(directory / "sqlite" / "2_bad_name.sql")
    with pytest.raises(MigrationError, match="is not named NNNN_name.sql"):
        migrations("sqlite", directory)


def test_sqlite_scripts_split_only_between_statements() -> None:
    script = "-- a comment; not a split\nCREATE TABLE t (a TEXT DEFAULT 'x;y');\nINSERT INTO t VALUES ('1;2');\n-- end"
    assert split_statements(script) == [
        "-- a comment; not a split\nCREATE TABLE t (a TEXT DEFAULT 'x;y');",
        "INSERT INTO t VALUES ('1;2');",
    ]
    with pytest.raises(ValueError, match="not finished"):
        split_statements("CREATE TABLE t (a TEXT")


@pytest.mark.parametrize("lose_the_record", ["DROP TABLE schema_migrations", "DELETE FROM schema_migrations"])
def test_a_database_that_lost_the_record_of_its_migrations_is_left_as_it_is(
    database_target: str, lose_the_record: str
) -> None:
    """Its tables are PosterBench's, but nothing says which migrations made them: running them again failed half-way
    (duplicate column name: evoked) with a traceback."""
    migrate(database_target)
    with open_database(database_target) as database:
        database.execute(INSERT_RECOMMENDATION)
        database.execute(lose_the_record)
    with pytest.raises(MigrationError, match="holds PosterBench's tables without the record of their migrations"):
        migrate(database_target)
    with open_database(database_target) as database:
        assert database.execute("SELECT arm FROM recommendations").fetchone()[0] == "cosine"
        if lose_the_record.startswith("DROP"):  # not made again either: the database is not changed
            with pytest.raises(Exception, match="schema_migrations"):
                database.execute("SELECT version FROM schema_migrations")
        else:
            assert database.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == 0


def test_a_database_with_version_1s_tables_alone_is_still_adopted(tmp_path: Path) -> None:
    """SQLite databases from before versioned migrations hold version 1's tables and no record: adopted, not refused."""
    path = tmp_path / "old.sqlite"
    with open_database(path) as database:
        database.script(migrations("sqlite")[0].sql())
        database.execute(INSERT_RECOMMENDATION)
    assert migrate(path) == list(range(2, latest_version() + 1))
    assert [version for version, _ in versions(str(path))] == list(range(1, latest_version() + 1))


@pytest.mark.parametrize("target", ["", " ", "sqlite:///"])
def test_an_empty_sqlite_path_is_refused(target: str, tmp_path: Path, monkeypatch) -> None:
    """It was taken for "." and left a "..init-lock" file in the working directory."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="the SQLite database path is empty"):
        migrate(target)
    assert list(tmp_path.iterdir()) == []

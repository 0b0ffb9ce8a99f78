"""The scrape's progress file: only a missing path, an empty file or a scrape's own SQLite database is used; anything
else (a directory, a CSV, another program's database) is refused in one line and left as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from scraper.__main__ import cli
from scraper.scrape import check_out_directory
from scraper.search import YearRange
from scraper.settings import ScrapeSettings
from scraper.state import _SCHEMA, ScrapeState, StateError, check_state_file


def make_database(path: Path, *statements: str, wal: bool = False) -> Path:
    with sqlite3.connect(path) as database:
        if wal:
            database.execute("PRAGMA journal_mode = WAL")
        for statement in statements:
            database.execute(statement)
    database.close()
    return path


def listing(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_a_missing_or_empty_file_becomes_a_progress_file_and_is_used_again(tmp_path: Path) -> None:
    for path in (tmp_path / "new" / "state.sqlite", tmp_path / "empty.sqlite"):
        if path.name == "empty.sqlite":
            path.write_bytes(b"")
        check_state_file(path)
        with ScrapeState(path) as state:
            state.check_years([YearRange(1990, 1999)])
        with ScrapeState(path) as state:  # its own file: resumed
            state.check_years([YearRange(1990, 1999)])
    assert listing(tmp_path) == ["empty.sqlite", "new"]  # no -wal or -shm left after the last close


@pytest.mark.parametrize("wal", [False, True], ids=["rollback journal", "WAL"])
def test_another_programs_database_is_refused_and_left_as_it_was(tmp_path: Path, wal: bool) -> None:
    """The app's database was used silently: the scraper added its tables and switched it to WAL."""
    app = make_database(tmp_path / "app.sqlite", "CREATE TABLE users (id)", "CREATE TABLE movies (x)", wal=wal)
    partial = make_database(tmp_path / "partial.sqlite", "CREATE TABLE movies (x)")
    before = {path: path.read_bytes() for path in (app, partial)}
    for path, holds in ((app, "users"), (partial, "only movies")):
        with pytest.raises(
            StateError, match=f"is an SQLite database of something else than a scrape \\(it holds {holds}"
        ):
            ScrapeState(path)
        assert path.read_bytes() == before[path]
    assert listing(tmp_path) == ["app.sqlite", "partial.sqlite"]
    # what a scrape killed while it made its tables leaves (settings, made first, and searches): its own, resumed
    started = make_database(tmp_path / "started.sqlite", *_SCHEMA.split(";")[:2])
    with ScrapeState(started) as state:
        state.check_years([YearRange(1990, 1999)])


def test_a_directory_a_csv_and_a_damaged_database_are_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "movies.csv").write_text("imdb_id,title\n")
    (tmp_path / "damaged.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    for name, message in (
        ("folder", "is a directory, not a progress file"),
        ("movies.csv", "is not an SQLite database"),
        ("damaged.sqlite", "is not a readable SQLite database"),
    ):
        with pytest.raises(StateError, match=message) as error:
            ScrapeState(tmp_path / name)
        assert "\n" not in str(error.value)
    assert listing(tmp_path) == ["damaged.sqlite", "folder", "movies.csv"]
    assert listing(tmp_path / "folder") == []


def test_a_progress_file_of_another_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with ScrapeState(path):
        pass
    with sqlite3.connect(path) as database:
        database.execute("PRAGMA user_version = 7")
    database.close()
    with pytest.raises(StateError, match="another scraper version"):
        ScrapeState(path)


@pytest.mark.parametrize("kind", ["csv", "directory", "app database"])
def test_scrape_refuses_a_state_that_is_not_a_progress_file_before_making_anything(tmp_path: Path, kind: str) -> None:
    """`scrape --state FILE.csv` ended in a sqlite3 traceback and left DIR/.scrape.lock behind."""
    state = tmp_path / "given"
    if kind == "csv":
        state.write_text("imdb_id,title\n")
    elif kind == "directory":
        state.mkdir()
    else:
        make_database(state, "CREATE TABLE users (id)")
    out = tmp_path / "catalog"
    with pytest.raises(StateError):
        check_out_directory(ScrapeSettings(out=out, state=state))
    result = CliRunner().invoke(cli, ["scrape", "--out", str(out), "--state", str(state), "--genres", "Drama"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.startswith(f"Error: {state} ") and result.output.count("\n") == 1
    assert not out.exists() and listing(tmp_path) == ["given"]

"""The catalog reader rejects each kind of broken catalog with a message naming file and line;
the writer never leaves a half-written catalog."""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog import (
    GENRES,
    CatalogError,
    Movie,
    OutputInUseError,
    check_replaceable,
    read_catalog,
    staged_directory,
    write_catalog,
    write_movies_csv,
    write_poster,
)

HEADER = "imdb_id,title,year,genres,rating,votes,poster"
GOOD_ROWS = [
    "tt0111161,The Shawshank Redemption,1994,Drama,9.3,2900000,posters/tt0111161.jpg",
    'tt0068646,"The Godfather, Part I",1972,Crime|Drama,9.2,2000000,posters/tt0068646.jpg',
    "tt0000003,No Year Yet,,Comedy,,,posters/tt0000003.jpg",
]


def make_catalog(directory: Path, rows: list[str], header: str = HEADER, posters: bool = True) -> Path:
    (directory / "posters").mkdir(parents=True, exist_ok=True)
    (directory / "movies.csv").write_text("\n".join([header, *rows]) + "\n")
    if posters:
        for row in rows:
            imdb_id = row.split(",")[0]
            (directory / "posters" / f"{imdb_id}.jpg").write_bytes(b"jpeg")
    return directory


def test_reads_a_valid_catalog(tmp_path: Path) -> None:
    catalog = read_catalog(make_catalog(tmp_path, GOOD_ROWS))
    assert [movie.imdb_id for movie in catalog] == ["tt0111161", "tt0068646", "tt0000003"]
    godfather = catalog.get("tt0068646")
    assert godfather.title == "The Godfather, Part I"
    assert godfather.genres == ("Crime", "Drama")
    assert godfather.year == 1972 and godfather.rating == 9.2 and godfather.votes == 2000000
    assert catalog.get("tt0000003").year is None and catalog.get("tt0000003").rating is None
    assert catalog.poster_path(godfather) == tmp_path / "posters/tt0068646.jpg"
    assert catalog.decades().tolist() == [1990, 1970, -1]  # the decade filter's; -1: no year
    assert catalog.labels().tolist() == [[0, 0, 1, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 1, 0, 0, 0, 0]]
    assert GENRES == ("Action", "Comedy", "Drama", "Horror", "Romance", "Thriller")


@pytest.mark.parametrize(
    ("row", "line", "message"),
    [
        ("tt123,Short Id,2000,Drama,5.0,10,posters/tt123.jpg", 3, "bad imdb_id 'tt123'"),
        ("nm0000001,A Person,2000,Drama,5.0,10,posters/nm0000001.jpg", 3, "bad imdb_id 'nm0000001'"),
        ("tt0000009,Too Old,1700,Drama,5.0,10,posters/tt0000009.jpg", 3, "year 1700 out of range"),
        ("tt0000009,Future,2999,Drama,5.0,10,posters/tt0000009.jpg", 3, "year 2999 out of range"),
        ("tt0000009,Bad Year,19x4,Drama,5.0,10,posters/tt0000009.jpg", 3, "year '19x4' is not a whole number"),
        ("tt0000009,Too Good,2000,Drama,11.5,10,posters/tt0000009.jpg", 3, "rating 11.5 out of range 1.0-10.0"),
        ("tt0000009,Too Bad,2000,Drama,0.2,10,posters/tt0000009.jpg", 3, "rating 0.2 out of range"),
        ("tt0000009,Words,2000,Drama,good,10,posters/tt0000009.jpg", 3, "rating 'good' is not a number"),
        ("tt0000009,Minus,2000,Drama,5.0,-3,posters/tt0000009.jpg", 3, "votes -3 is negative"),
        ("tt0000009,Gap,2000,Drama||Comedy,5.0,3,posters/tt0000009.jpg", 3, "has an empty entry"),
        ("tt0000009,,2000,Drama,5.0,3,posters/tt0000009.jpg", 3, "empty title"),
        ("tt0000009,Escape,2000,Drama,5.0,3,../outside.jpg", 3, "must be relative and stay inside"),
        ("tt0000009,Comma, Unquoted,2000,Drama,5.0,3,posters/tt0000009.jpg", 3, "more fields than columns"),
        ("tt0000009,Short,2000", 3, "fewer fields than columns"),
        (GOOD_ROWS[0], 3, "duplicate imdb_id tt0111161 (first on line 2)"),
    ],
)
def test_rejects_a_bad_row_naming_file_and_line(tmp_path: Path, row: str, line: int, message: str) -> None:
    make_catalog(tmp_path, [GOOD_ROWS[0], row])
    with pytest.raises(CatalogError) as raised:
        read_catalog(tmp_path)
    assert f"{tmp_path / 'movies.csv'}:{line}: " in str(raised.value)
    assert message in str(raised.value)


def test_every_problem_of_a_row_is_named_not_only_the_first(tmp_path: Path) -> None:
    """`check` said one problem a row: a row wrong in four fields took four rounds of fixing and checking."""
    make_catalog(tmp_path, [GOOD_ROWS[0], "tt0000009,Many Faults,19x4,Drama,11.5,-3,posters/nowhere.jpg"])
    (tmp_path / "posters" / "folder.jpg").mkdir()
    with pytest.raises(CatalogError) as raised:
        read_catalog(tmp_path)
    where = f"{tmp_path / 'movies.csv'}:3: "
    assert raised.value.problems == [
        where + "year '19x4' is not a whole number",
        where + "rating 11.5 out of range 1.0-10.0",
        where + "votes -3 is negative",
        where + f"poster file {tmp_path / 'posters/nowhere.jpg'} does not exist",
    ]
    make_catalog(tmp_path, [GOOD_ROWS[0], "tt0000009,A Folder,1999,Drama,5.0,3,posters/folder.jpg"])
    with pytest.raises(CatalogError, match=r"movies\.csv:3: poster file .*folder\.jpg is not a file"):
        read_catalog(tmp_path)


def test_rejects_a_missing_column(tmp_path: Path) -> None:
    make_catalog(
        tmp_path, ["tt0111161,Shawshank,1994,Drama,9.3,posters/tt0111161.jpg"], header=HEADER.replace(",votes", "")
    )
    with pytest.raises(CatalogError, match=r"movies\.csv:1: missing column\(s\) 'votes'"):
        read_catalog(tmp_path)


def test_rejects_a_missing_poster_file(tmp_path: Path) -> None:
    make_catalog(tmp_path, GOOD_ROWS)
    (tmp_path / "posters/tt0068646.jpg").unlink()
    with pytest.raises(CatalogError, match=r"movies\.csv:3: poster file .*tt0068646\.jpg does not exist"):
        read_catalog(tmp_path)
    assert len(read_catalog(tmp_path, check_posters=False)) == 3


def test_rejects_missing_directory_file_and_empty_catalog(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="catalog directory does not exist"):
        read_catalog(tmp_path / "nowhere")
    with pytest.raises(CatalogError, match=r"movies\.csv: missing"):
        read_catalog(tmp_path)
    make_catalog(tmp_path, [])
    with pytest.raises(CatalogError, match="no movies"):
        read_catalog(tmp_path)


def test_lists_every_problem_not_only_the_first(tmp_path: Path) -> None:
    rows = [f"tt00000{n:02d},Movie {n},3000,Drama,5.0,1,posters/tt00000{n:02d}.jpg" for n in range(30)]
    make_catalog(tmp_path, rows)
    with pytest.raises(CatalogError) as raised:
        read_catalog(tmp_path)
    assert len(raised.value.problems) == 30
    assert "... and 10 more problems" in str(raised.value)


MOVIES = [
    Movie("tt0000001", 'Commas, "Quotes" and Ünïcode', 1999, ("Action", "Drama"), 7.5, 10, "posters/tt0000001.jpg"),
    Movie("tt0000002", "Unknowns", None, ("Horror",), None, None, "posters/tt0000002.jpg"),
]


def test_writer_round_trips_through_the_reader(tmp_path: Path) -> None:
    target = write_catalog(tmp_path / "catalog", MOVIES, [(m.poster, b"poster " + m.imdb_id.encode()) for m in MOVIES])
    assert read_catalog(target).movies == MOVIES
    assert (target / "posters/tt0000002.jpg").read_bytes() == b"poster tt0000002"
    with (target / "movies.csv").open(newline="") as handle:
        assert next(csv.reader(handle)) == HEADER.split(",")


def test_a_crash_while_writing_keeps_the_old_catalog_and_leaves_no_debris(tmp_path: Path) -> None:
    target = write_catalog(tmp_path / "catalog", MOVIES[:1], [(MOVIES[0].poster, b"old")])

    def posters_then_crash():
        yield MOVIES[0].poster, b"new"
        raise RuntimeError("scraper died")

    with pytest.raises(RuntimeError, match="scraper died"):
        write_catalog(target, MOVIES, posters_then_crash(), overwrite=True)
    assert read_catalog(target).movies == MOVIES[:1]
    assert (target / MOVIES[0].poster).read_bytes() == b"old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["catalog"]


def test_writer_refuses_to_replace_without_overwrite(tmp_path: Path) -> None:
    target = write_catalog(tmp_path / "catalog", MOVIES, [(m.poster, b"x") for m in MOVIES])
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_catalog(target, MOVIES, [])
    write_catalog(target, MOVIES[1:], [(MOVIES[1].poster, b"y")], overwrite=True)
    assert read_catalog(target).movies == MOVIES[1:]
    assert not (target / MOVIES[0].poster).exists()


def test_a_crash_while_writing_movies_csv_keeps_the_old_file(tmp_path: Path) -> None:
    write_movies_csv(tmp_path, MOVIES)
    before = (tmp_path / "movies.csv").read_bytes()
    with pytest.raises(AttributeError):
        write_movies_csv(tmp_path, [*MOVIES, object()])  # type: ignore[list-item]  # fails after two rows
    assert (tmp_path / "movies.csv").read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["movies.csv"]


def test_staged_directory_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "model"
    with staged_directory(target, "a") as staging:
        (staging / "a").write_text("1")
    with pytest.raises(ZeroDivisionError), staged_directory(target, "a") as staging:
        (staging / "b").write_text("2")
        raise ZeroDivisionError
    assert [path.name for path in target.iterdir()] == ["a"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]
    with staged_directory(target, "a") as staging:  # an earlier output of its kind (it holds "a"): replaced
        (staging / "a").write_text("3")
    assert (target / "a").read_text() == "3"


def test_only_an_earlier_output_of_the_same_kind_is_replaced(tmp_path: Path) -> None:
    """`posterbench demo-catalog /etc/passwd --force` replaced the system's file with a catalog, and `index --out`
    naming the catalog or the model deleted it: an output replaces only a missing path, an empty directory or one
    holding the file every output of its kind holds."""
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0")
    for target, message in ((precious, "holds other files and no index.json"), (a_file, "is not a directory")):
        with pytest.raises(OutputInUseError, match=message), staged_directory(target, "index.json") as staging:
            (staging / "index.json").write_text("{}")
    with pytest.raises(OutputInUseError, match="no movies.csv"):
        write_catalog(precious, [], [], overwrite=True)
    assert (precious / "keep.txt").read_text() == "mine" and a_file.read_text() == "root:x:0:0"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["passwd", "precious"]  # no staging left behind
    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty", "index.json")
    check_replaceable(tmp_path / "missing", "index.json")


# -- modes: what the writers create is readable as an ordinary mkdir or open would make it ---------------------------


@pytest.fixture(params=[0o022, 0o077, 0o002], ids=lambda umask: f"umask {umask:03o}")
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The process's umask set for the test (and put back): the writers' modes must follow it."""
    earlier = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(earlier)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_written_catalog_gets_the_modes_the_umask_gives(tmp_path: Path, umask: int) -> None:
    """tempfile's private modes (a 0700 catalog directory, a 0600 movies.csv) became the outputs' modes once renamed
    into place, whatever the umask: the Docker image's user could not read a mounted catalog, model or index."""
    directory, file = 0o777 & ~umask, 0o666 & ~umask
    target = write_catalog(tmp_path / "catalog", MOVIES, [(m.poster, b"x") for m in MOVIES])
    assert mode(target) == mode(target / "posters") == directory
    assert mode(target / "movies.csv") == mode(target / MOVIES[0].poster) == mode(target / MOVIES[1].poster) == file
    replaced = write_catalog(target, MOVIES[:1], [(MOVIES[0].poster, b"y")], overwrite=True)
    assert (mode(replaced), mode(replaced / "movies.csv")) == (directory, file)


def test_rewritten_files_get_the_modes_the_umask_gives(tmp_path: Path, umask: int) -> None:
    """`datasets fill` and the scraper rewrite movies.csv in place (write_movies_csv) and write posters one by one
    (write_poster): a 0644 movies.csv came back 0600. A file an older version left 0600 is given the umask's mode."""
    (tmp_path / "movies.csv").write_text("old")
    os.chmod(tmp_path / "movies.csv", 0o600)
    write_movies_csv(tmp_path, MOVIES)
    write_poster(tmp_path, "posters/tt0000001.jpg", b"x")
    assert mode(tmp_path / "movies.csv") == mode(tmp_path / "posters/tt0000001.jpg") == 0o666 & ~umask
    assert sorted(path.name for path in tmp_path.iterdir()) == ["movies.csv", "posters"]  # no temporary left


def test_a_staged_directory_output_gets_the_mode_the_umask_gives(tmp_path: Path, umask: int) -> None:
    """Models, indexes and CLEMS directories are staged_directory outputs: they came out 0700."""
    target = tmp_path / "model"
    with staged_directory(target, "model.json") as staging:
        assert mode(staging) == 0o777 & ~umask  # what is renamed into place
        (staging / "model.json").write_text("{}")
    assert mode(target) == 0o777 & ~umask
    with staged_directory(target, "model.json") as staging:  # replacing an earlier output: the same
        (staging / "model.json").write_text("{}")
    assert mode(target) == 0o777 & ~umask
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]


# -- a header naming a column twice; extra columns; staging directories of killed writers -------------------------


def test_a_header_naming_a_column_twice_is_refused_naming_it_and_line_1(tmp_path: Path) -> None:
    """csv.DictReader keeps the last of two equal columns: a second `title` silently replaced every title, `check`
    passed and `datasets fill` wrote the damage back."""
    rows = [row + ",Other" for row in GOOD_ROWS[:1]]
    make_catalog(tmp_path, rows, header=HEADER + ",title")
    with pytest.raises(CatalogError) as error:
        read_catalog(tmp_path)
    assert str(error.value) == f"{tmp_path / 'movies.csv'}:1: the header names column(s) 'title' more than once; " + (
        "name each once"
    )
    make_catalog(tmp_path, [row + ",a,b" for row in GOOD_ROWS[:1]], header=HEADER + ",note,note")
    with pytest.raises(CatalogError, match=r"movies\.csv:1: the header names column\(s\) 'note' more than once"):
        read_catalog(tmp_path)
    # a spreadsheet's export often ends its header with empty names (",,"): no column, not a repeated one
    make_catalog(tmp_path, [row + ",," for row in GOOD_ROWS[:1]], header=HEADER + ",,")
    catalog = read_catalog(tmp_path)
    assert len(catalog) == 1 and catalog.extra_columns == ()


def test_extra_columns_are_read_and_written_back_after_the_catalog_columns(tmp_path: Path) -> None:
    make_catalog(tmp_path, [f"{row},keep {n},x" for n, row in enumerate(GOOD_ROWS)], header=HEADER + ",note,tag")
    catalog = read_catalog(tmp_path)
    assert catalog.extra_columns == ("note", "tag")
    assert catalog.extra_values["tt0068646"] == ("keep 1", "x")
    write_movies_csv(tmp_path, catalog.movies[:2], catalog.extra_columns, catalog.extra_values)
    again = read_catalog(tmp_path)
    assert again.movies == catalog.movies[:2] and again.extra_values == {
        imdb_id: catalog.extra_values[imdb_id] for imdb_id in ("tt0111161", "tt0068646")
    }
    assert (tmp_path / "movies.csv").read_text().splitlines()[0] == HEADER + ",note,tag"
    write_movies_csv(tmp_path, catalog.movies, ("note",), {})  # a movie without values gets empty ones
    assert read_catalog(tmp_path).extra_values["tt0000003"] == ("",)
    write_movies_csv(tmp_path, catalog.movies)  # without extra columns: the catalog's own, as always
    assert (tmp_path / "movies.csv").read_text().splitlines()[0] == HEADER
    assert read_catalog(tmp_path).extra_columns == ()
    with pytest.raises(ValueError, match="name each column once"):
        write_movies_csv(tmp_path, catalog.movies, ("title",))


KILLED_WRITER = """
import sys, time
from catalog import staged_directory
with staged_directory(sys.argv[1], "a") as staging:
    (staging / "a").write_text("unfinished")
    print(staging, flush=True)
    time.sleep(120)
"""


def test_a_later_write_removes_the_staging_of_a_killed_writer_and_only_that(tmp_path: Path) -> None:
    """A writer killed by SIGKILL left its `.NAME.<hex>.partial` for ever: a later write of the same target removes
    the staging directories of writers that no longer run (their lock file can be locked: the kernel released a
    killed process's lock, on whatever host or in whatever container it ran), never that of a write still running."""
    import signal
    import subprocess
    import sys

    target = tmp_path / "model"
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert writer.stdout is not None
        running = Path(writer.stdout.readline().strip())
        assert running.is_dir() and running.parent == tmp_path
        assert (tmp_path / f"{running.name}.lock").is_file()  # held by the writer while it runs
        legacy = tmp_path / ".model.0123456789ab.partial"  # without a lock file (an older version's): not ours to judge
        legacy.mkdir()
        other = tmp_path / ".other.0123456789ab.partial"  # another target's, its lock free
        other.mkdir()
        (tmp_path / f"{other.name}.lock").touch()
        with staged_directory(target, "a") as staging:
            (staging / "a").write_text("1")
        assert running.is_dir() and (running / "a").read_text() == "unfinished"  # still being written: kept
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    assert running.is_dir()  # what a SIGKILL leaves
    with staged_directory(target, "a") as staging:
        (staging / "a").write_text("2")
    assert not running.exists()
    assert (target / "a").read_text() == "2"
    assert not (tmp_path / f"{running.name}.lock").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        ["model", legacy.name, other.name, f"{other.name}.lock"]
    )


STARTING_WRITER = """
import sys
from catalog import staged_directory
with staged_directory(sys.argv[1], "a") as staging:
    (staging / "a").write_text("second")
"""


def test_a_write_starting_beside_one_that_has_just_begun_leaves_its_staging_alone(tmp_path: Path) -> None:
    """The lock file was created, then locked: a write of the same target starting in between (another process)
    found it unlocked, took it for a killed writer's and removed the staging directory and lock of a write that was
    running. The first write is held just before its first flock (a profile hook, as a debugger's breakpoint) while
    the second runs from start to end."""
    import fcntl
    import subprocess
    import sys

    from tests.conftest import HeldThread

    target = tmp_path / "model"

    def first_write() -> dict[str, bool]:
        with staged_directory(target, "a") as staging:
            seen = {
                "staging kept": staging.is_dir(),
                "lock kept": staging.with_name(f"{staging.name}.lock").is_file(),
            }
            (staging / "a").write_text("first")
        return seen

    writer = HeldThread(first_write, lambda frame, event, arg: event == "c_call" and arg is fcntl.flock)
    writer.start()
    try:
        writer.wait_held()
        second = subprocess.run(
            [sys.executable, "-c", STARTING_WRITER, str(target)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert second.returncode == 0, second.stderr
        assert (target / "a").read_text() == "second"
    finally:
        writer.release()
    assert writer.error is None, repr(writer.error)
    assert writer.result == {"staging kept": True, "lock kept": True}
    assert (target / "a").read_text() == "first"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]


def test_a_row_that_spans_lines_or_breaks_csv_is_named_by_its_first_line(tmp_path: Path) -> None:
    """An unclosed quote swallows the rest of the file into one row: it was reported at the file's last line. A field
    over csv's size limit was reported with no line at all."""
    header = "imdb_id,title,year,genres,rating,votes,poster\n"
    good = [f"tt00000{n:02d},Film {n},2000,Drama,5.0,10,posters/tt00000{n:02d}.jpg\n" for n in range(10, 14)]
    unclosed = 'tt0000099,"Open quote,2001,Drama,5.0,10,posters/tt0000099.jpg\n'
    (tmp_path / "movies.csv").write_text(header + "".join(good[:2]) + unclosed + "".join(good[2:]))
    with pytest.raises(CatalogError) as raised:
        read_catalog(tmp_path, check_posters=False)
    assert "movies.csv:4-6: " in str(raised.value), str(raised.value)  # lines 4 to 6 read as one row
    (tmp_path / "movies.csv").write_text(
        header + "".join(good) + f"tt0000098,{'x' * 200_000},2001,Drama,5.0,10,p.jpg\n"
    )
    with pytest.raises(CatalogError, match=r"movies.csv:6: not a CSV row we can read \(field larger than"):
        read_catalog(tmp_path, check_posters=False)


def test_rows_after_blank_lines_are_named_by_their_own_lines(tmp_path: Path) -> None:
    """csv skips blank lines: a row after one was named from the blank line (movies.csv:3-4 for a row on line 4)."""
    rows = [
        "",
        'tt0000001,"Two\nlines",2000,Drama,5.0,10,posters/tt0000001.jpg',
        "",
        "tt0000001,Again,2000,Drama,5.0,10,posters/tt0000002.jpg",
        "tt0000003,Film,2000,Drama,11.0,10,posters/tt0000003.jpg",
    ]
    (tmp_path / "movies.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    with pytest.raises(CatalogError) as raised:
        read_catalog(tmp_path, check_posters=False)
    message = str(raised.value)
    assert "movies.csv:6: duplicate imdb_id tt0000001 (first on line 3)" in message, message
    assert "movies.csv:7: " in message and "movies.csv:6-7" not in message, message

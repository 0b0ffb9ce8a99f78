"""Reading IMDb's non-commercial dataset files, checking and filling a catalog from them, and the command line."""

from __future__ import annotations

import gzip
import json
import os
import stat
import subprocess
import sys
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest

from catalog import Movie, read_catalog, write_movies_csv
from scraper.datasets import (
    BASICS_COLUMNS,
    RATINGS_COLUMNS,
    DatasetError,
    Difference,
    TitleRecord,
    check_catalog,
    fill_catalog,
    read_datasets,
)

REPOSITORY = Path(__file__).resolve().parents[1]
ODD_TITLE = 'Say "Hi\u2028there" \x85 & \x0c caf\u00e9 \u6771\u4eac'
"""Quotes (unbalanced for a CSV reader), Unicode and C1 line separators and a form feed: none of them ends a line."""
BASICS = [
    ("tt0111161", "movie", "The Shawshank Redemption", "The Shawshank Redemption", "0", "1994", "\\N", "142", "Drama"),
    ("tt0133093", "movie", "The Matrix", "The Matrix", "0", "1999", "\\N", "136", "Action,Adventure,Sci-Fi"),
    ("tt0903747", "tvSeries", "Breaking Bad", "Breaking Bad", "0", "2008", "2013", "49", "Crime,Drama,Thriller"),
    ("tt1234567", "movie", ODD_TITLE, ODD_TITLE, "0", "\\N", "\\N", "\\N", "\\N"),
    ("tt12345678", "movie", "Unrated Eight Digits", "Unrated Eight Digits", "0", "2024", "\\N", "90", "Comedy"),
]
RATINGS = [
    ("tt0111161", "9.3", "2912345"),
    ("tt0133093", "8.7", "2100000"),
    ("tt0903747", "9.5", "2200000"),
    ("tt1234567", "6.1", "42"),
]


def write_tsv(path: Path, header: tuple[str, ...], rows, compress: bool = True) -> Path:
    text = "".join("\t".join(row) + "\n" for row in [header, *rows])
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return (
        write_tsv(tmp_path / "title.basics.tsv.gz", BASICS_COLUMNS, BASICS),
        write_tsv(tmp_path / "title.ratings.tsv.gz", RATINGS_COLUMNS, RATINGS),
    )


def movie(imdb_id: str, **changes) -> Movie:
    fields = {"title": imdb_id, "year": None, "genres": (), "rating": None, "votes": None}
    return Movie(imdb_id=imdb_id, poster=f"posters/{imdb_id}.jpg", **(fields | changes))


def make_catalog(directory: Path, movies: list[Movie]):
    write_movies_csv(directory, movies)
    return read_catalog(directory, check_posters=False)


def test_read_keeps_movies_parses_nulls_genres_and_ratings(files) -> None:
    records = read_datasets(*files, progress=False)
    assert set(records) == {"tt0111161", "tt0133093", "tt1234567", "tt12345678"}  # the tvSeries is skipped
    assert records["tt0133093"] == TitleRecord(
        "tt0133093", "The Matrix", 1999, ("Action", "Adventure", "Sci-Fi"), 8.7, 2_100_000, "movie"
    )
    assert records["tt1234567"] == TitleRecord("tt1234567", ODD_TITLE, None, (), 6.1, 42, "movie")
    assert (records["tt12345678"].rating, records["tt12345678"].votes) == (None, None)  # no ratings row


def test_read_filters_by_ids_and_types(files) -> None:
    records = read_datasets(*files, ids=["tt0903747", "tt0133093", "tt7777777"], progress=False)
    assert list(records) == ["tt0133093"]
    records = read_datasets(*files, ids={"tt0903747"}, title_types={"tvSeries", "movie"}, progress=False)
    assert records["tt0903747"] == TitleRecord(
        "tt0903747", "Breaking Bad", 2008, ("Crime", "Drama", "Thriller"), 9.5, 2_200_000, "tvSeries"
    )
    assert len(read_datasets(files[0], title_types=None, progress=False)) == len(BASICS)
    assert read_datasets(files[0], title_types=("short",), progress=False) == {}


def test_read_without_ratings_leaves_rating_and_votes_empty(files) -> None:
    record = read_datasets(files[0], ids=["tt0111161"], progress=False)["tt0111161"]
    assert (record.year, record.genres, record.rating, record.votes) == (1994, ("Drama",), None, None)


def test_plain_tsv_crlf_reordered_and_extra_columns_and_a_bom_are_read(tmp_path: Path) -> None:
    header = ("\ufeffnumVotes", "tconst", "averageRating", "futureColumn")
    path = tmp_path / "ratings.tsv"
    path.write_bytes("\t".join(header).encode() + b"\r\n" + b"17\ttt0111161\t9.3\tx\r\n")
    basics = write_tsv(tmp_path / "basics.tsv", BASICS_COLUMNS, BASICS[:1], compress=False)
    record = read_datasets(basics, path, progress=False)["tt0111161"]
    assert (record.rating, record.votes) == (9.3, 17)


def test_progress_bar_counts_bytes_on_stderr(files, capsys: pytest.CaptureFixture[str]) -> None:
    read_datasets(*files, progress=True)
    err = capsys.readouterr().err
    assert "title.basics.tsv.gz" in err and "title.ratings.tsv.gz" in err
    assert "100%" in err


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            ("tconst", "titleType", "primaryTitle"),
            r"basics\.tsv\.gz:1: header lacks column\(s\) originalTitle, .*genres",
        ),
        (("tconst,titleType,primaryTitle,originalTitle,isAdult,startYear,endYear,runtimeMinutes,genres",), "tconst, "),
    ],
)
def test_a_wrong_header_lists_the_expected_columns(tmp_path: Path, header, message: str) -> None:
    path = write_tsv(tmp_path / "basics.tsv.gz", header, [])
    with pytest.raises(DatasetError, match=message) as raised:
        read_datasets(path, progress=False)
    assert "expected the tab-separated columns tconst, titleType, primaryTitle" in str(raised.value)


def test_ratings_given_as_basics_is_named_in_the_error(files) -> None:
    with pytest.raises(DatasetError, match=r"title\.ratings\.tsv\.gz:1: header lacks column\(s\) titleType"):
        read_datasets(files[1], progress=False)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            ("tt0000003", "movie", "Short Row", "Short Row", "0", "1990"),
            r":4: expected 9 tab-separated fields, found 6",
        ),
        (("tt0000003", "movie", "T", "T", "0", "19x0", "\\N", "\\N", "Drama"), r":4: startYear '19x0' is not a whole"),
        (("tt0000003", "movie", "T", "T\tX", "0", "1990", "\\N", "\\N", "Drama"), ":4: expected 9 .* found 10"),
    ],
)
def test_a_malformed_row_names_file_and_line(tmp_path: Path, row, message: str) -> None:
    rows = [BASICS[0], BASICS[1], row, BASICS[4]]
    path = write_tsv(tmp_path / "title.basics.tsv.gz", BASICS_COLUMNS, rows)
    with pytest.raises(DatasetError, match=str(path).replace(".", r"\.") + message):
        read_datasets(path, progress=False)
    assert len(read_datasets(path, ids=["tt0111161", "tt12345678"], progress=False)) == 2  # unwanted rows: skipped


def test_a_bad_ratings_value_and_bad_bytes_name_the_line(tmp_path: Path, files) -> None:
    ratings = write_tsv(tmp_path / "r.tsv.gz", RATINGS_COLUMNS, [RATINGS[0], ("tt0133093", "8,7", "12")])
    with pytest.raises(DatasetError, match=r"r\.tsv\.gz:3: averageRating '8,7' is not a number"):
        read_datasets(files[0], ratings, progress=False)
    path = tmp_path / "latin1.tsv.gz"
    path.write_bytes(gzip.compress("\t".join(RATINGS_COLUMNS).encode() + b"\ntt0111161\t9.3\t1\n\xe9t\t1\t1\n"))
    with pytest.raises(DatasetError, match=r"latin1\.tsv\.gz:3: not UTF-8"):
        read_datasets(files[0], path, progress=False)


def test_empty_truncated_and_missing_files_are_dataset_errors(tmp_path: Path, files) -> None:
    empty = tmp_path / "empty.tsv.gz"
    empty.write_bytes(gzip.compress(b""))
    with pytest.raises(DatasetError, match=r"empty\.tsv\.gz: empty file; expected a header line"):
        read_datasets(empty, progress=False)
    truncated = tmp_path / "truncated.tsv.gz"
    truncated.write_bytes(files[0].read_bytes()[:-12])
    with pytest.raises(DatasetError, match=r"truncated\.tsv\.gz: unreadable gzip data"):
        read_datasets(truncated, progress=False)
    with pytest.raises(DatasetError, match=r"nope\.tsv\.gz: cannot open"):
        read_datasets(tmp_path / "nope.tsv.gz", progress=False)


def test_a_large_file_is_streamed_and_keeps_only_the_requested_ids(tmp_path: Path) -> None:
    rows = 200_000
    path = tmp_path / "title.basics.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as handle:
        handle.write("\t".join(BASICS_COLUMNS) + "\n")
        for index in range(rows):
            kind = "movie" if index % 3 else "tvEpisode"
            title = f"A fairly long placeholder title number {index} to make the file big"
            handle.write(f"tt{index:08d}\t{kind}\t{title}\t{title}\t0\t{1900 + index % 120}\t\\N\t90\tDrama,War\n")
    uncompressed = rows * 140
    wanted = [f"tt{index:08d}" for index in (0, 1, 2, 99_999, 100_000, 199_999)] + ["tt99999999"]
    tracemalloc.start()
    try:
        records = read_datasets(path, ids=wanted, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sorted(records) == ["tt00000001", "tt00000002", "tt00100000", "tt00199999"]  # 0 and 99999: tvEpisodes
    assert records["tt00199999"].year == 1900 + 199_999 % 120
    assert peak < uncompressed / 10, f"peak {peak} bytes: the file was not streamed"
    every_movie = read_datasets(path, progress=False)
    assert len(every_movie) == rows - (rows + 2) // 3


@pytest.fixture
def catalog(tmp_path: Path):
    return make_catalog(
        tmp_path / "catalog",
        [
            movie("tt0111161", title="Shawshank", year=1995, genres=("Drama", "Crime"), rating=9.3, votes=2_912_345),
            movie("tt0133093", title="Matrix", year=1999, genres=("Sci-Fi", "Action", "Adventure"), rating=8.74),
            movie("tt1234567", title="Odd", year=2001, rating=6.0, votes=42),
            movie("tt12345678", title="Eight", genres=("Comedy",)),
            movie("tt7777777", title="Not In The Datasets", year=2000),
        ],
    )


def test_check_reports_each_kind_of_difference(catalog, files) -> None:
    differences = check_catalog(catalog, read_datasets(*files, progress=False))
    assert differences == [
        Difference("tt0111161", "year", 1995, 1994),
        Difference("tt0111161", "genres", ("Drama", "Crime"), ("Drama",)),
        Difference("tt0133093", "votes", None, 2_100_000),  # rating 8.74 vs 8.7: within 0.05; genre order ignored
        Difference("tt1234567", "year", 2001, None),
        Difference("tt1234567", "rating", 6.0, 6.1),
        Difference("tt12345678", "year", None, 2024),
        Difference("tt7777777", "missing", "Not In The Datasets", None),
    ]
    assert check_catalog(catalog, {}) == [Difference(m.imdb_id, "missing", m.title, None) for m in catalog]


def test_check_of_a_matching_catalog_is_empty(tmp_path: Path, files) -> None:
    records = read_datasets(*files, progress=False)
    record = records["tt0133093"]
    same = movie("tt0133093", year=1999, genres=record.genres[::-1], rating=8.65, votes=record.votes)
    assert check_catalog(make_catalog(tmp_path / "same", [same]), records) == []
    off = replace(same, genres=("Action",), rating=8.64, votes=record.votes + 1)
    assert [d.field for d in check_catalog(make_catalog(tmp_path / "off", [off]), records)] == [
        "genres",
        "rating",
        "votes",
    ]


def test_difference_lines_read_well() -> None:
    assert Difference("tt0111161", "year", 1994, 1995).describe() == "tt0111161: year catalog 1994, datasets 1995"
    line = Difference("tt0111161", "genres", ("Drama", "Crime"), ()).describe()
    assert line == "tt0111161: genres catalog Drama|Crime, datasets (none)"
    assert Difference("tt1", "rating", 9.0, None).describe() == "tt1: rating catalog 9, datasets (none)"
    assert "missing from the datasets" in Difference("tt1", "missing", "Title", None).describe()


def test_fill_only_fills_empty_fields(catalog, files) -> None:
    records = read_datasets(*files, progress=False)
    filled = fill_catalog(catalog, records).movies
    assert [m.imdb_id for m in filled] == [m.imdb_id for m in catalog]
    assert filled[0] == catalog.get("tt0111161")  # nothing empty: untouched, even the wrong year
    assert filled[1] == replace(catalog.get("tt0133093"), votes=2_100_000)
    assert filled[2] == catalog.get("tt1234567")  # the datasets have no year for it
    assert filled[3] == replace(catalog.get("tt12345678"), year=2024)  # no ratings row: rating stays empty
    assert filled[4] == catalog.get("tt7777777")
    assert [m.title for m in filled] == ["Shawshank", "Matrix", "Odd", "Eight", "Not In The Datasets"]


def test_fill_with_overwrite_replaces_every_field_the_datasets_have(catalog, files) -> None:
    records = read_datasets(*files, progress=False)
    filled = fill_catalog(catalog, records, overwrite=True).movies
    assert filled[0] == replace(catalog.get("tt0111161"), year=1994, genres=("Drama",))
    assert filled[1] == replace(
        catalog.get("tt0133093"), genres=("Action", "Adventure", "Sci-Fi"), rating=8.7, votes=2_100_000
    )
    assert filled[2] == replace(catalog.get("tt1234567"), rating=6.1)  # year \N: the catalog's 2001 stays
    assert filled[3] == replace(catalog.get("tt12345678"), year=2024)  # no ratings row: rating, votes stay empty
    assert filled[4] == catalog.get("tt7777777")


def test_fill_leaves_out_values_the_catalog_format_refuses_and_the_catalog_stays_readable(tmp_path) -> None:
    """The datasets list announced films years ahead and may hold any number: a year past read_catalog's range, a
    NaN or out-of-range rating, negative votes were written, and the whole rewritten movies.csv could not be read."""
    directory = tmp_path / "catalog"
    catalog = make_catalog(directory, [movie("tt0000001"), movie("tt0000002", rating=7.0)])
    basics = [
        ("tt0000001", "movie", "A", "A", "0", "2099", "\\N", "90", "Drama"),
        ("tt0000002", "movie", "B", "B", "0", "1999", "\\N", "90", "Comedy"),
    ]
    ratings = [("tt0000001", "nan", "-5"), ("tt0000002", "11.5", "300")]
    files = (
        write_tsv(tmp_path / "title.basics.tsv.gz", BASICS_COLUMNS, basics),
        write_tsv(tmp_path / "title.ratings.tsv.gz", RATINGS_COLUMNS, ratings),
    )
    filling = fill_catalog(catalog, read_datasets(*files, progress=False), overwrite=True)
    assert filling.movies == [
        replace(catalog.get("tt0000001"), genres=("Drama",)),
        replace(catalog.get("tt0000002"), year=1999, genres=("Comedy",), votes=300),
    ]
    assert [(refused.imdb_id, refused.field) for refused in filling.refused] == [
        ("tt0000001", "year"),
        ("tt0000001", "rating"),
        ("tt0000001", "votes"),
        ("tt0000002", "rating"),
    ]
    result = run_cli("fill", directory, "--basics", files[0], "--ratings", files[1], "--no-progress", "--overwrite")
    assert result.returncode == 0, result.stderr
    assert "left out, not a value a catalog takes: tt0000001: year catalog (none), datasets 2099" in result.stderr
    assert read_catalog(directory, check_posters=False).movies == filling.movies


def run_cli(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scraper.datasets", *map(str, arguments)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_check_prints_differences_a_summary_and_json_last(catalog, files) -> None:
    result = run_cli("check", catalog.directory, "--basics", files[0], "--ratings", files[1])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "tt0111161: year catalog 1995, datasets 1994" in lines
    assert "tt1234567: rating catalog 6, datasets 6.1" in lines
    assert any(line.startswith("tt7777777: missing from the datasets") for line in lines)
    assert lines[-2] == "5 movies: 4 differ from the datasets, 1 missing from them, 7 differences in all"
    assert json.loads(lines[-1]) == {"movies": 5, "differences": 7, "missing": 1}
    assert "title.basics.tsv.gz" in result.stderr  # the progress bar


def test_cli_fill_rewrites_movies_csv(catalog, files) -> None:
    before = (catalog.directory / "movies.csv").read_text()
    result = run_cli("fill", catalog.directory, "--basics", files[0], "--ratings", files[1], "--no-progress")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("2 of 5 movies changed; wrote ")
    assert result.stderr == ""
    after = read_catalog(catalog.directory, check_posters=False)
    assert after.movies == fill_catalog(catalog, read_datasets(*files, progress=False)).movies
    assert (catalog.directory / "movies.csv").read_text() != before
    assert [p.name for p in catalog.directory.iterdir()] == ["movies.csv"]  # no temporary file left

    again = run_cli("fill", catalog.directory, "--basics", files[0], "--ratings", files[1], "--no-progress")
    assert again.stdout.startswith("0 of 5 movies changed")
    overwrite = run_cli("fill", catalog.directory, "--basics", files[0], "--ratings", files[1], "--overwrite")
    assert overwrite.stdout.startswith("3 of 5 movies changed")
    assert read_catalog(catalog.directory, check_posters=False).get("tt0111161").year == 1994


def test_cli_fill_keeps_movies_csv_readable_under_the_umask(catalog, files) -> None:
    """fill turned a 0644 movies.csv into 0600 (the writer's tempfile.mkstemp mode), which the Docker image's user
    then could not read: the rewritten file gets the mode an ordinary open gives under the umask."""
    path = catalog.directory / "movies.csv"
    os.chmod(path, 0o644)
    earlier = os.umask(0o022)  # the command inherits it
    try:
        result = run_cli("fill", catalog.directory, "--basics", files[0], "--ratings", files[1], "--no-progress")
    finally:
        os.umask(earlier)
    assert result.returncode == 0 and result.stdout.startswith("2 of 5 movies changed; wrote "), result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_cli_title_types_and_errors(catalog, files, tmp_path: Path) -> None:
    tv = make_catalog(tmp_path / "tv", [movie("tt0903747", year=2008, genres=("Crime", "Drama", "Thriller"))])
    missing = run_cli("check", tv.directory, "--basics", files[0], "--no-progress")
    assert json.loads(missing.stdout.splitlines()[-1]) == {"movies": 1, "differences": 1, "missing": 1}
    found = run_cli("check", tv.directory, "--basics", files[0], "--title-types", "movie,tvSeries", "--no-progress")
    assert json.loads(found.stdout.splitlines()[-1]) == {"movies": 1, "differences": 0, "missing": 0}
    everything = run_cli("check", tv.directory, "--basics", files[0], "--title-types", "all", "--no-progress")
    assert json.loads(everything.stdout.splitlines()[-1])["missing"] == 0

    wrong = run_cli("check", catalog.directory, "--basics", files[1], "--no-progress")
    assert wrong.returncode == 1 and wrong.stdout == ""
    assert wrong.stderr.startswith(f"error: {files[1]}:1: header lacks column(s) titleType")
    assert run_cli("check", tmp_path / "nowhere", "--basics", files[0]).returncode == 1
    usage = run_cli("fill", catalog.directory)
    assert usage.returncode == 2 and "--basics" in usage.stderr
    typo = run_cli("check", tv.directory, "--basics", files[0], "--title-types", "movie,tvseries", "--no-progress")
    assert typo.returncode == 2 and "unknown title type(s) tvseries: IMDb's are movie, short," in typo.stderr


# -- lines without end; extra and repeated columns of the catalog -------------------------------------------------


def test_a_line_longer_than_the_bound_is_refused_naming_file_and_line(tmp_path: Path, files) -> None:
    """A file (or gzip stream) without newlines was read whole as one line: `--basics /dev/zero` ate all memory."""
    from scraper.datasets import MAX_LINE_BYTES

    plain = tmp_path / "no-newline.tsv"
    plain.write_bytes(b"a" * (MAX_LINE_BYTES + 10))
    with pytest.raises(DatasetError, match=r"no-newline\.tsv:1: line longer than 1,000,000 bytes"):
        read_datasets(plain, progress=False)
    zeros = tmp_path / "zeros.gz"
    zeros.write_bytes(gzip.compress(b"\0" * (5 * MAX_LINE_BYTES)))
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match=r"zeros\.gz:1: line longer than"):
            read_datasets(zeros, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_LINE_BYTES
    long_row = tmp_path / "long-row.tsv.gz"
    rows = [(*BASICS[0][:2], "x" * (MAX_LINE_BYTES - 200), *BASICS[0][3:]), *BASICS[1:]]
    too_long = (*rows[0][:3], "y" * 300, *rows[0][4:])  # both titles: 100 bytes over the bound
    with pytest.raises(DatasetError, match=r"long-row\.tsv\.gz:2: line longer than"):
        read_datasets(write_tsv(long_row, BASICS_COLUMNS, [too_long]), progress=False)
    within = read_datasets(write_tsv(long_row, BASICS_COLUMNS, rows), progress=False)  # a long line that fits
    assert within["tt0111161"].title == "x" * (MAX_LINE_BYTES - 200) and "tt0133093" in within


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_cli_check_of_dev_zero_is_one_line_error_in_bounded_memory(catalog) -> None:
    """Run under a 1.5 GB address-space limit, so that a reader without a line bound fails here instead of eating
    the machine's memory."""
    import resource

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))

    result = subprocess.run(
        [sys.executable, "-m", "scraper.datasets", "check", str(catalog.directory), "--basics", "/dev/zero"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=limit_memory,
        env=os.environ | {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "error: /dev/zero:1: line longer than 1,000,000 bytes, which no dataset line is (is this the right file?)"
    )


def test_cli_fill_keeps_the_columns_the_catalog_format_does_not_read(catalog, files) -> None:
    """fill dropped a `note` column without a word: the columns it does not read are written back after its own."""
    path = catalog.directory / "movies.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",note", *(f'{line},"mine, {n}"' for n, line in enumerate(lines[1:]))]))
    result = run_cli("fill", catalog.directory, "--basics", files[0], "--ratings", files[1], "--no-progress")
    assert result.returncode == 0 and result.stdout.startswith("2 of 5 movies changed; wrote "), result.stderr
    after = read_catalog(catalog.directory, check_posters=False)
    assert after.movies == fill_catalog(catalog, read_datasets(*files, progress=False)).movies
    assert after.extra_columns == ("note",)
    assert [after.extra_values[movie.imdb_id] for movie in after] == [(f"mine, {n}",) for n in range(5)]


def test_cli_fill_refuses_a_header_naming_a_column_twice_and_leaves_the_file(catalog, files) -> None:
    """A second `title` column replaced every title as it was read, and fill then wrote that damage back."""
    path = catalog.directory / "movies.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",title", *(line + ",Damage" for line in lines[1:])]) + "\n")
    before = path.read_bytes()
    result = run_cli("fill", catalog.directory, "--basics", files[0], "--overwrite", "--no-progress")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"error: {path}:1: the header names column(s) 'title' more than once; name each once\n"
    assert path.read_bytes() == before

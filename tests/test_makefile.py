"""The Makefile builds a model and an index from a catalog's content, not its file's time: a catalog touched or
copied again with the same movies trains nothing again, a changed one does."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make")


def stamp_of(catalog: Path, var: Path) -> Path:
    """Make the catalog's content stamp (as `make train` does first) and return its path."""
    settings = ["make", "--no-print-directory", "-s", f"CATALOG={catalog}", f"VAR={var}"]
    printed = subprocess.run(
        [*settings, "--eval", "stamp-path: ; @echo $(CATALOG_STAMP)", "stamp-path"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    stamp = ROOT / printed.stdout.strip()  # VAR is absolute here, and so is the stamp: ROOT / it is the stamp
    subprocess.run([*settings, str(stamp)], cwd=ROOT, check=True)
    return stamp


def test_the_catalog_stamp_changes_with_the_movies_and_not_with_the_files_time(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    movies = catalog / "movies.csv"
    movies.write_text("imdb_id,title,year,genres,rating,votes,poster\ntt0000001,A,1990,Drama,7.0,10,posters/a.jpg\n")
    var = tmp_path / "var"
    stamp = stamp_of(catalog, var)
    made = stamp.stat().st_mtime_ns
    assert stamp.read_text().split()[0] and not stamp.with_name(stamp.name + ".new").exists()

    later = made + 10_000_000_000
    os.utime(movies, ns=(later, later))  # touched, or copied again: the same movies
    assert stamp_of(catalog, var).stat().st_mtime_ns == made

    movies.write_text(movies.read_text().replace("7.0", "7.5"))
    os.utime(movies, ns=(later + 10_000_000_000,) * 2)
    assert stamp_of(catalog, var).stat().st_mtime_ns != made


def serve_command(var: Path, *settings: str, environment: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """What `make serve` would run (make -n), with `settings` on make's command line and `environment` added."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "POSTERBENCH_DATABASE_URL", "DATABASE")}
    return subprocess.run(
        ["make", "--no-print-directory", "-n", "serve", f"VAR={var}", *settings],
        cwd=ROOT, capture_output=True, text=True, env={**env, **(environment or {})},
    )  # fmt: skip


def test_make_serve_with_a_database_url_names_no_sqlite_file(tmp_path: Path) -> None:
    """`make serve DATABASE_URL=postgresql://...` passed --database var/posterbench.sqlite as well, and the file on
    the command line wins over the URL: the votes went to SQLite without a word."""
    url = "postgresql://user:pa55word@db.example/posterbench"
    plain = serve_command(tmp_path)
    assert plain.returncode == 0 and f"--database {tmp_path}/posterbench.sqlite" in plain.stdout
    for served in (
        serve_command(tmp_path, f"DATABASE_URL={url}"),
        serve_command(tmp_path, environment={"DATABASE_URL": url}),
        serve_command(tmp_path, environment={"POSTERBENCH_DATABASE_URL": url}),
    ):
        assert served.returncode == 0, served.stderr
        assert "posterbench serve" in served.stdout and "--database" not in served.stdout
        assert "pa55word" not in served.stdout  # make passes the URL on in the environment, unprinted
    both = serve_command(tmp_path, f"DATABASE_URL={url}", f"DATABASE={tmp_path}/votes.sqlite")
    assert both.returncode != 0
    assert "give DATABASE (a SQLite file) or DATABASE_URL (a PostgreSQL server), not both" in both.stderr

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

"""Write catalogs atomically: every file goes to a temporary name first and is renamed into
place, so a crash never leaves a half-written `movies.csv`, poster or catalog. What they create gets the mode an
ordinary mkdir or open gives (0777 or 0666 less the process's umask), not tempfile's private 0700 and 0600: a
catalog, model or index written here is readable by whoever the umask lets read it (the Docker image's user)."""

from __future__ import annotations

import csv
import fcntl
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from catalog.movie import COLUMNS, Movie
from catalog.read import MOVIES_CSV, _parse_row


def write_movies_csv(
    directory: str | Path,
    movies: Sequence[Movie],
    extra_columns: Sequence[str] = (),
    extra_values: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Write (or replace) `directory/movies.csv` atomically.

    `extra_columns` (a catalog's columns the format does not read, Catalog.extra_columns) follow the catalog's own,
    each movie's values of them taken from `extra_values[imdb_id]` (empty where it has none); without them the file
    holds exactly the catalog's columns, as always."""
    extra_columns = tuple(extra_columns)
    taken = [column for column in extra_columns if column in COLUMNS]
    if taken or len(set(extra_columns)) != len(extra_columns):
        raise ValueError(f"extra columns {extra_columns} repeat a column of movies.csv; name each column once")
    values = extra_values or {}
    blank = ("",) * len(extra_columns)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with _atomic_file(directory / MOVIES_CSV, mode="w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow((*COLUMNS, *extra_columns))
        for movie in movies:
            extra = tuple(values.get(movie.imdb_id, blank))
            if len(extra) != len(extra_columns):
                raise ValueError(f"{movie.imdb_id} has {len(extra)} extra values for {len(extra_columns)} columns")
            writer.writerow((*_row(movie), *extra))
    return directory / MOVIES_CSV


class OutputNotWritableError(OSError):
    """An output path whose directory cannot be written (read-only, or a file where a directory belongs), found
    before the work that would fill it; its message names that directory, in one line."""


def check_writable(target: str | Path) -> None:
    """Raise OutputNotWritableError unless `target` (a file or directory to write) can be made: the nearest of its
    ancestors that exists must be a directory that takes a new entry. That is proved by making a temporary directory
    there and removing it, as the staged output (catalog.staged_directory) will, so that it holds for root, ACLs and
    read-only file systems alike, where permission bits would not; nothing is left behind."""
    target = Path(target)
    directory = target.parent
    while not os.path.lexists(directory) and directory != directory.parent:
        directory = directory.parent
    if not directory.is_dir():
        raise OutputNotWritableError(f"cannot write {target}: {directory} is not a directory")
    try:
        os.rmdir(_new_directory(directory, ".writable.", ""))
    except OSError as error:
        reason = error.strerror or str(error)
        raise OutputNotWritableError(f"cannot write {target}: {directory} is not writable ({reason})") from error


def check_output(target: str | Path, marker: str) -> None:
    """Refuse now, before any work, an output directory that would be refused once the work is done: one that holds
    something else than an earlier output of its kind (check_replaceable: OutputInUseError), or whose directory
    cannot be written (check_writable: OutputNotWritableError)."""
    check_replaceable(target, marker)
    check_writable(target)


def refusal(movie: Movie) -> str | None:
    """Why read_catalog would refuse `movie` as write_movies_csv writes it (every bad field, joined by "; "), else
    None."""
    try:
        _parse_row(dict(zip(COLUMNS, _row(movie), strict=True)))
    except ValueError as error:
        return str(error)
    return None


def write_poster(directory: str | Path, relative_path: str, data: bytes) -> Path:
    """Write one poster file atomically under the catalog directory."""
    target = Path(directory) / relative_path
    target.parent.mkdir(parents=True, exist_ok=True)
    with _atomic_file(target, mode="wb") as handle:
        handle.write(data)
    return target


class OutputInUseError(ValueError):
    """An output path that holds something else than an earlier output of the same kind: never replaced."""


CATALOG_MARKER = "movies.csv"


def check_replaceable(target: str | Path, marker: str) -> None:
    """Raise OutputInUseError unless `target` is missing, an empty directory, or a directory holding `marker`: an
    earlier output of the same kind (a catalog's movies.csv, a model's model.json, an index's index.json). Outputs
    are replaced whole, so anything else there (a file, another kind of directory, one of the command's own inputs)
    would be lost."""
    target = Path(target)
    if not target.exists() and not target.is_symlink():
        return
    if not target.is_dir():  # a file, or a link to one or to nothing (a link to a directory is judged by it)
        raise OutputInUseError(f"{target} exists and is not a directory: it is not replaced; choose another path")
    if (target / marker).is_file() or next(target.iterdir(), None) is None:
        return
    raise OutputInUseError(
        f"{target} holds other files and no {marker}, so it is not an earlier output of this kind and is not "
        "replaced: choose another path, or remove it yourself"
    )


def write_catalog(
    directory: str | Path,
    movies: Sequence[Movie],
    posters: Iterable[tuple[str, bytes]],
    overwrite: bool = False,
    check: Callable[[Path], None] | None = None,
) -> Path:
    """Write a whole catalog: built in a temporary sibling directory, then renamed into place.

    `posters` yields (relative poster path, bytes) pairs and is consumed once. An existing
    `directory` is replaced only with `overwrite=True`, only if it is a catalog (check_replaceable) that `check`
    (when given) does not refuse, and only once the new one is complete.
    """
    directory = Path(directory)
    if directory.exists() and not overwrite:
        raise FileExistsError(f"{directory} already exists; pass overwrite=True to replace it")
    with staged_directory(directory, CATALOG_MARKER, check) as staging:
        for relative_path, data in posters:
            write_poster(staging, relative_path, data)
        write_movies_csv(staging, movies)
    return directory


@contextmanager
def staged_directory(target: str | Path, marker: str, check: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield an empty temporary sibling of `target` (staging_directory); if the block succeeds it replaces `target`
    whole, otherwise it is removed and `target` stays as it was. `target` must be replaceable (check_replaceable with
    `marker`, the file every output of this kind holds, then `check` when given, which raises to refuse it),
    checked before and again after the block."""
    target = Path(target)
    check_replaceable(target, marker)
    if check is not None:
        check(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with staging_directory(target.parent, f".{target.name}.") as staging:
        yield staging
        check_replaceable(target, marker)
        if check is not None:
            check(target)
        _replace_directory(staging, target)


@contextmanager
def staging_directory(parent: Path, prefix: str) -> Iterator[Path]:
    """A new empty directory `PREFIX<random>.partial` in `parent` for the block to fill, removed afterwards unless the
    block moved it away. Beside it, `PREFIX<random>.partial.lock` is held locked (flock) while the block runs, so
    that the staging directories of `prefix` that a killed writer (SIGKILL, power loss) left are told from those of
    writes still running, in any process, container or host sharing the file system: the ones whose lock can be
    taken are removed first. A directory without its lock file is left alone, and the lock file appears already
    locked (_new_locked_file)."""
    _remove_stale_staging(parent, prefix)
    staging = _new_directory(parent, prefix, ".partial")
    lock_path = staging.with_name(staging.name + ".lock")
    try:
        with _new_locked_file(lock_path):
            yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # nothing left when the block moved it away
        lock_path.unlink(missing_ok=True)


def _new_locked_file(path: Path) -> IO[str]:
    """`path` created and locked (flock) as one step for other processes: the file is made under a temporary name that
    _remove_stale_staging ignores, locked, then renamed to `path`. Created under its own name and then locked, it
    could be found unlocked in between by a write starting beside it, taken for a killed writer's, and removed with
    the staging directory of a write that runs. The open file: closing it releases the lock."""
    descriptor, temporary = _new_file(path.parent, f"{path.name}.", ".tmp")
    handle = os.fdopen(descriptor, "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        os.rename(temporary, path)
    except BaseException:
        handle.close()
        temporary.unlink(missing_ok=True)
        raise
    return handle


def _remove_stale_staging(parent: Path, prefix: str) -> None:
    """Remove the staging directories `PREFIX<random>.partial` of `parent` whose writer is gone (their lock file can
    be locked), with their lock files. Those of writes still running, and any other name, are left alone."""
    try:
        siblings = list(Path(parent).iterdir())
    except OSError:
        return
    for lock_path in siblings:
        staging = lock_path.with_suffix("")  # NAME.partial.lock -> NAME.partial
        if not (lock_path.name.startswith(prefix) and lock_path.name.endswith(".partial.lock")):
            continue
        try:
            with lock_path.open("r+") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: its writer still runs
                if staging.is_dir() and not staging.is_symlink():
                    shutil.rmtree(staging, ignore_errors=True)
                lock_path.unlink(missing_ok=True)
        except OSError:
            continue


def _replace_directory(new: Path, target: Path) -> None:
    if not target.exists():
        new.rename(target)
        return
    retired = target.with_name(f".{target.name}.{os.getpid()}.old")
    target.rename(retired)
    new.rename(target)
    shutil.rmtree(retired, ignore_errors=True)


def _row(movie: Movie) -> list[str]:
    return [
        movie.imdb_id,
        movie.title,
        "" if movie.year is None else str(movie.year),
        "|".join(movie.genres),
        "" if movie.rating is None else f"{movie.rating:g}",
        "" if movie.votes is None else str(movie.votes),
        movie.poster,
    ]


@contextmanager
def _atomic_file(target: Path, mode: str, **open_args: str) -> Iterator[IO]:
    """A temporary file beside `target`, renamed over it only if the block succeeds."""
    descriptor, temporary = _new_file(target.parent, f".{target.name}.", ".tmp")
    try:
        with os.fdopen(descriptor, mode, **open_args) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


_NAME_ATTEMPTS = 100
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _new_directory(parent: Path, prefix: str, suffix: str) -> Path:
    """A new empty directory in `parent` under an unused name, made as mkdir makes one: mode 0777 less the umask
    (tempfile.mkdtemp's 0700 would become the final output's mode once the directory is renamed into place)."""
    for path in _candidate_names(parent, prefix, suffix):
        try:
            path.mkdir(mode=0o777)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no unused temporary name for a directory in {parent}")


def _new_file(parent: Path, prefix: str, suffix: str) -> tuple[int, Path]:
    """A new empty file in `parent` under an unused name, open for writing, made as open makes one: mode 0666 less
    the umask (tempfile.mkstemp's 0600 would stay on the file it is renamed to). Its descriptor and path."""
    for path in _candidate_names(parent, prefix, suffix):
        try:
            return os.open(path, _NEW_FILE_FLAGS, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no unused temporary name for a file in {parent}")


def _candidate_names(parent: Path, prefix: str, suffix: str) -> Iterator[Path]:
    """Random names to create exclusively (O_EXCL, mkdir): the kernel applies the umask, as to any new file, so the
    process-wide umask is never read or changed (os.umask(0) would race with other threads creating files)."""
    for _ in range(_NAME_ATTEMPTS):
        yield parent / f"{prefix}{secrets.token_hex(6)}{suffix}"

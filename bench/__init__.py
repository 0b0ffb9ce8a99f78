"""Benchmarks, not installed: each script measures one speed or quality goal and prints its figures, the last line
one JSON object (bench/README.md holds the results; `posterbench bench NAME` runs `bench/NAME.py`).

A script run as `python -m bench.NAME` (which `posterbench bench NAME` does) ends in one line, as the project's other
commands do, when it is interrupted (Ctrl-C) or stopped by one of the project's own errors (a catalog, model, index
or image it cannot use, named by the error); any other exception is a bug and keeps its traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

PIPELINE_PACKAGES = {"catalog", "model", "embedding", "recommend", "bandit", "app", "scraper", "tools"}
"""Packages whose exceptions say what is wrong with the benchmark's input."""


def says_what_is_wrong(kind: type[BaseException]) -> bool:
    """An error of the pipeline's own (CatalogError, ModelArtifactError, FeatureIndexError...) or of the file system:
    a problem of the input, which its message names."""
    return issubclass(kind, OSError) or (
        issubclass(kind, Exception) and kind.__module__.split(".")[0] in PIPELINE_PACKAGES
    )


def one_line_errors(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
    """sys.excepthook of a benchmark run as a script."""
    if issubclass(kind, KeyboardInterrupt):
        print("\nAborted!", file=sys.stderr)
    elif says_what_is_wrong(kind):
        print(f"Error: {error}", file=sys.stderr)
    else:
        sys.__excepthook__(kind, error, traceback)


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum` (anything else is a usage error, not a traceback of
    whatever would divide by it or seed with it later)."""

    def whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is less than {minimum}")
        return value

    return whole_number


def whole_numbers(text: str) -> list[int]:
    """An argparse type: comma-separated whole numbers of at least 1 (catalog sizes)."""
    return [at_least(1)(part.strip()) for part in text.split(",") if part.strip()]


def png_file(text: str) -> Path:
    """An argparse type: a file name ending in .png (Matplotlib would add .png to a name without it, and pick another
    format, or fail, by another ending)."""
    if Path(text).suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(f"{text!r} does not end in .png")
    return Path(text)


def run_as_script(argv: list[str]) -> bool:
    """Whether the interpreter's command line (sys.orig_argv) runs a benchmark: `python [options] -m bench.NAME`."""
    return "-m" in argv[:-1] and argv[argv.index("-m") + 1].startswith("bench.")


if run_as_script(sys.orig_argv):
    sys.excepthook = one_line_errors

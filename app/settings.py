"""The app's settings as they arrive from POSTERBENCH_* variables and instance/config.py, checked when the app starts:
text settings stay text, numbers are numbers within their bounds, and a bad one stops the app with its name."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, MutableMapping
from typing import Any

PREFIX = "POSTERBENCH_"
# Flask's from_prefixed_env reads each variable as JSON where it can: a secret key or a path of digits would
# become a number. These are read as the text they are.
TEXT_SETTINGS = (
    "DATABASE",
    "DATABASE_URL",
    "CATALOG",
    "MODEL",
    "INDEX",
    "CLEMS",
    "SECRET_KEY",
    "API_TOKEN",
    "JOBS_URL",
    "PRECISION",
    "BANDIT_POLICY",
)
# name: (least, type) of the numeric settings of the web app; the job settings are app.jobs.JOB_NUMBERS.
APP_NUMBERS = {
    "SAMPLE_COUNT": (1, int),
    "MAX_CONTENT_LENGTH": (1, int),
    "IMDB_TIMEOUT_SECONDS": (0.1, float),
    "FEEDBACK_LIMIT": (1, int),
    "FEEDBACK_WINDOW_SECONDS": (1, float),
    "TRUSTED_PROXIES": (0, int),
    "POSTERS_PER_CLIENT": (1, int),
    "IMDB_FETCHES_PER_CLIENT": (1, int),
    "IMDB_FETCHES": (1, int),
}


def keep_text(config: MutableMapping[str, Any], environ: Mapping[str, str] = os.environ) -> None:
    """Put back, as text, each text setting that a POSTERBENCH_ variable gave (after from_prefixed_env decoded it),
    and make text of one that instance/config.py set to a number."""
    for name in TEXT_SETTINGS:
        if PREFIX + name in environ:
            config[name] = environ[PREFIX + name]
        elif config.get(name) is not None and not isinstance(config[name], (str, bytes)):
            config[name] = str(config[name])


def checked_numbers(config: Mapping[str, Any], names: Mapping[str, tuple[float, type]]) -> dict[str, float]:
    """The settings `names` lists ({name: (least, int or float)}) as numbers; RuntimeError names a bad one. A whole
    number may be written as a float (2e7) or as text (" 30"); NaN, infinities and booleans are refused."""
    return {name: checked_number(name, config.get(name), least, kind) for name, (least, kind) in names.items()}


def checked_number(name: str, value: object, least: float, kind: type) -> float:
    """Setting `name`'s `value` as a `kind` (int or float) of at least `least`; RuntimeError names it otherwise."""
    number = as_number(value, kind)
    if number is None or number < least:
        wanted = "a whole number" if kind is int else "a number"
        raise RuntimeError(f"{PREFIX}{name} must be {wanted} of at least {least:g}: {value!r}")
    return number


def as_number(value: object, kind: type) -> float | None:
    """`value` as a finite `kind` (int or float), or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    if kind is int and isinstance(value, int):
        return value
    if kind is int and isinstance(value, str):
        try:
            return int(value.strip())  # exact, however long
        except ValueError:
            pass  # "2e7": read as a float below
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    if not math.isfinite(number):
        return None
    if kind is int:
        return int(number) if number.is_integer() else None
    return number

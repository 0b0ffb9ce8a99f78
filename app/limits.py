"""Bounds on the work one request and one client can start: a body beyond MAX_CONTENT_LENGTH is refused (413) before
any of it is read, whatever its content type; each client may have at most POSTERS_PER_CLIENT posters (uploads and
IMDb links) being decoded and read by the network at once, and at most IMDB_FETCHES_PER_CLIENT links being fetched
from IMDb, of at most IMDB_FETCHES per worker in all, so that a slow IMDb cannot hold every thread. A client over a
bound gets 429 with Retry-After and nothing is saved.

The counts are per worker process (each gunicorn worker keeps its own; a client can hold that many in each worker):
they bound requests in progress, which a rate limiter such as Flask-Limiter does not count, in a dozen lines that need
no shared store. The vote limit, which must hold across workers and hosts, is counted in the database instead
(app.recommendations.check_rate)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import RequestError
from app.security import client_key

EXTENSION = "posterbench.limits"
RETRY_AFTER_SECONDS = 5


class BusyError(RequestError):
    """A client (or the worker) already has as much of this work in progress as it may."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 429, retry_after=RETRY_AFTER_SECONDS)


class InProgress:
    """Counts work in progress per key and in all, under a lock; `hold` refuses work beyond the bounds."""

    def __init__(self, per_key: int, in_all: int | None = None) -> None:
        self.per_key = per_key
        self.in_all = in_all
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, key: str, what: str) -> Iterator[None]:
        with self._lock:
            if self._counts[key] >= self.per_key:
                pending = f"{self.per_key} {what}" if self.per_key > 1 else f"one {what.removesuffix('s')}"
                it = "one to finish" if self.per_key > 1 else "it to finish"
                raise BusyError(f"you already have {pending} in progress; wait for {it}")
            if self.in_all is not None and self._counts.total() >= self.in_all:
                raise BusyError(f"the server already has {self.in_all} {what} in progress; try again in a moment")
            self._counts[key] += 1
        try:
            yield
        finally:
            with self._lock:
                self._counts[key] -= 1
                if not self._counts[key]:
                    del self._counts[key]


class WorkLimits:
    def __init__(self, posters_per_client: int, imdb_per_client: int, imdb_in_all: int) -> None:
        self.posters = InProgress(posters_per_client)
        self.imdb_fetches = InProgress(imdb_per_client, imdb_in_all)


@contextmanager
def poster_work(kind: str) -> Iterator[None]:
    """Holds one of the client's poster slots while a poster of `kind` (upload or imdb) is read; an IMDb link also
    holds one of its fetch slots. Raises BusyError (429) when the client or the worker has no slot free."""
    limits: WorkLimits = current_app.extensions[EXTENSION]
    client = client_key()
    with limits.posters.hold(client, "posters"):
        if kind != "imdb":
            yield
            return
        with limits.imdb_fetches.hold(client, "IMDb links"):
            yield


def refuse_large_bodies() -> None:
    """A declared body beyond MAX_CONTENT_LENGTH is refused before it is read, whatever the view would read of it.
    (A body sent without a length is still cut at the limit by Werkzeug when a view reads it.)"""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = WorkLimits(
        int(app.config["POSTERS_PER_CLIENT"]),
        int(app.config["IMDB_FETCHES_PER_CLIENT"]),
        int(app.config["IMDB_FETCHES"]),
    )
    app.before_request(refuse_large_bodies)

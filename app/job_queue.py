"""The background jobs' queue: Huey (https://huey.readthedocs.io) on the broker that JOBS_URL names (a SQLite file,
PostgreSQL or Redis). It carries job ids only; the jobs' state is the database's (app.job_store), and app.jobs runs
them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from app.db import configured_target, is_postgres, redacted

QUEUE_NAME = "posterbench"
QUEUE_TABLE_PREFIX = "posterbench_queue"  # Huey's tables in a PostgreSQL broker: posterbench_queue_task, ...

logger = logging.getLogger(__name__)


def default_queue_url(config: Mapping[str, Any]) -> str:
    """The broker when JOBS_URL is not set: the app's PostgreSQL database, or a SQLite file beside its SQLite one."""
    target = configured_target(config)
    if is_postgres(target):
        return target
    from app.db import sqlite_path

    database = Path(sqlite_path(target))
    return f"sqlite:///{database.with_name(database.stem + '-queue.sqlite')}"


def make_huey(url: str) -> Any:
    """A Huey on the broker `url`: sqlite:///path (a file; the embedded default), postgresql://... (PostgreSQL,
    tables posterbench_queue_*), redis://... or rediss://... (Redis, the `redis` extra), immediate:// (jobs run in
    the request that submits them: tests and one-process trials) or memory:// (nothing runs them: tests)."""
    import huey

    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    common = {"results": False, "utc": True}
    if scheme == "sqlite":
        path = Path(url[len("sqlite:///") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        return huey.SqliteHuey(QUEUE_NAME, filename=str(path), timeout=10, **common)
    if scheme in ("postgresql", "postgres"):
        queue = huey.PostgresHuey(QUEUE_NAME, dsn=url, table_prefix=QUEUE_TABLE_PREFIX, create_tables=False, **common)
        create_postgres_tables(url, queue.storage.ddl)
        return queue
    if scheme in ("redis", "rediss", "unix"):
        try:
            import redis  # noqa: F401
        except ImportError as error:
            raise RuntimeError(
                "POSTERBENCH_JOBS_URL is a Redis URL, but the redis client is not installed: pip install "
                "'posterbench[redis]' (or use the default, SQLite or PostgreSQL)"
            ) from error
        return huey.RedisHuey(QUEUE_NAME, url=url, **common)
    if scheme == "immediate":
        return huey.MemoryHuey(QUEUE_NAME, immediate=True, **common)
    if scheme == "memory":
        return huey.MemoryHuey(QUEUE_NAME, **common)
    raise RuntimeError(
        f"unsupported POSTERBENCH_JOBS_URL {redacted(url)!r}: use sqlite:///path, postgresql://..., redis://... "
        "(or leave it empty for the default)"
    )


def create_postgres_tables(url: str, ddl: Sequence[str]) -> None:
    """Huey's tables in a PostgreSQL broker, created if missing by one process at a time: workers and hosts that start
    together would otherwise race in CREATE TABLE IF NOT EXISTS (a duplicate key in PostgreSQL's catalog)."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection, connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(hashtextextended('posterbench queue tables', 0))")
        for statement in ddl:
            connection.execute(statement)


class JobQueue:
    """The app's Huey and its one task, "run_job": `run(job_id)`, which runs the job (app.jobs.run_job, inside the
    app)."""

    def __init__(self, url: str, run: Callable[[str], None]) -> None:
        self.url = url
        self.huey = make_huey(url)
        self.task = self.huey.task(name="run_job")(run)

    def enqueue(self, job_id: str) -> None:
        """Put `job_id` in the queue; tried twice, as a broker's connection that broke since its last use (a
        PostgreSQL server restarted) fails once before the library opens a new one."""
        try:
            self.task(job_id)
        except Exception as error:  # Redis's, psycopg's or sqlite3's own error: each library has its own
            logger.warning(
                "the job queue at %s refused job %s (%s); trying once more", redacted(self.url), job_id, error
            )
            self.task(job_id)

    def enqueue_or_leave(self, job_id: str) -> bool:
        """Put a job that is already `queued` in the database in the queue; when the broker cannot be reached, leave
        it to the sweep (see sweep) and return False."""
        try:
            self.enqueue(job_id)
            return True
        except Exception:
            logger.exception("job %s stays queued: the job queue at %s cannot be reached", job_id, redacted(self.url))
            return False

    def waiting_ids(self) -> set[str]:
        """The job ids whose messages are in the broker, waiting for a worker."""
        return {str(task.args[0]) for task in self.huey.pending() if task.args}

    def drain(self) -> int:
        """Run every job waiting in the queue, here and now, as a worker would (tests); returns how many."""
        count = 0
        while (task := self.huey.dequeue()) is not None:
            self.huey.execute(task)
            count += 1
        return count


def wait_for_queue(queue: JobQueue, seconds: float) -> None:
    """Return once the queue's broker answers; try again, waiting longer each time, for up to `seconds` (a broker
    that starts beside the worker, or restarts), then raise RuntimeError with one line: Huey's consumer would log a
    traceback ten times a second, forever."""
    gives_up_at, pause = time.monotonic() + seconds, 0.5
    while True:
        try:
            queue.huey.pending_count()
            return
        except Exception as error:  # Redis's, psycopg's or sqlite3's own error: each library has its own
            if time.monotonic() + pause > gives_up_at:
                raise RuntimeError(f"the job queue at {redacted(queue.url)} cannot be reached: {error}") from error
            logger.warning(
                "the job queue at %s cannot be reached (%s); trying again in %g s", redacted(queue.url), error, pause
            )
            time.sleep(pause)
            pause = min(pause * 2, 10.0)


class RepeatedBrokerErrors(logging.Filter):
    """A log handler's filter that lets each of Huey's consumer errors about an unreachable broker through once per
    `seconds`: while the broker is down, each of its workers logs "Error reading from queue" with its traceback at
    every poll (ten times a second or more) and its scheduler "Error reading schedule." every second, which buries the
    rest of the log. The one let through says how many it stands for."""

    MESSAGES = ("Error reading from queue", "Error reading schedule.")

    def __init__(self, seconds: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.seconds, self.clock = seconds, clock
        self.shown_at: dict[str, float] = {}
        self.hidden: dict[str, int] = dict.fromkeys(self.MESSAGES, 0)
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg
        if not record.name.startswith("huey.consumer") or message not in self.MESSAGES:
            return True
        with self.lock:
            now = self.clock()
            if message in self.shown_at and now - self.shown_at[message] < self.seconds:
                self.hidden[message] += 1
                return False
            self.shown_at[message] = now
            if self.hidden[message]:
                record.msg = f"{message} (and {self.hidden[message]} times in the {self.seconds:g} s before, not shown)"
                self.hidden[message] = 0
        return True


def quiet_broker_errors(seconds: float = 60.0) -> None:
    """Put RepeatedBrokerErrors on the handlers of the root logger (the worker's log)."""
    shared = RepeatedBrokerErrors(seconds)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(existing, RepeatedBrokerErrors) for existing in handler.filters):
            handler.addFilter(shared)

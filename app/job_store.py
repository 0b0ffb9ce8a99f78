"""The jobs tables (`jobs`, `job_posters`, `job_files`, migration 3): the one module that writes and reads them. A
job is created queued with its posters, claimed by a run (its attempt number), kept alive by the run's heartbeat,
and finished with its result and files, failed, given back to the queue, or recovered when its worker stopped; only
the current attempt may write the job (`RUN_OF`). app.jobs puts the jobs in the queue and runs them."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.db import Database
from app.errors import RequestError

KINDS = ("compare", "explain")
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{16}$")
"""A job id: 12 random bytes, URL-safe base64 (secrets.token_urlsafe(12)); the job's URL is its only key."""
WORKER_STOPPED = "the worker stopped while running this job; please submit it again"


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    status: str
    progress: float
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    attempts: int


@dataclass(frozen=True)
class JobPoster:
    """One poster of a job, as the web request validated it: a JPEG of at most 512 px a side, or a catalog movie
    (no image: its own poster and vectors)."""

    kind: str  # upload, sample or imdb
    label: str
    imdb_id: str | None
    image: bytes | None


def now_sql(database: Database) -> str:
    """An SQL timestamp of now, comparable with the tables' time columns (the dialect's `seconds_ago` of 0)."""
    return database.dialect.seconds_ago.replace("?", "0")


def new_job_id() -> str:
    return secrets.token_urlsafe(12)


def create_job(
    database: Database,
    kind: str,
    params: Mapping[str, Any],
    posters: Sequence[JobPoster],
    client: str,
    per_client: int,
) -> str:
    """Save a queued job and its posters in one transaction; returns its id. A client that already has `per_client`
    jobs queued or running is refused (429) and nothing is saved."""
    job_id = new_job_id()
    with database.transaction(lock=f"jobs of {client}"):
        waiting = database.execute(
            "SELECT COUNT(*) FROM jobs WHERE client = ? AND status IN ('queued', 'running')", (client,)
        ).fetchone()[0]
        if waiting >= per_client:
            raise RequestError(
                f"you already have {per_client} jobs waiting or running; wait for one to finish", 429, retry_after=5
            )
        database.execute(
            "INSERT INTO jobs (id, kind, params, client) VALUES (?, ?, ?, ?)",
            (job_id, kind, json.dumps(dict(params)), client),
        )
        for position, poster in enumerate(posters):
            database.execute(
                "INSERT INTO job_posters (job_id, position, kind, label, imdb_id, image) VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, position, poster.kind, poster.label, poster.imdb_id, poster.image),
            )
    return job_id


def delete_job(database: Database, job_id: str) -> None:
    database.execute("DELETE FROM jobs WHERE id = ?", (job_id,))


def read_job(database: Database, job_id: str, expire_seconds: float | None) -> Job | None:
    """The job `job_id`, or None when there is none or it has expired (after `expire_seconds`; None: never)."""
    if not JOB_ID.match(job_id):
        return None
    ago = database.dialect.seconds_ago
    sql = "SELECT id, kind, status, progress, params, result, error, attempts FROM jobs WHERE id = ?"
    parameters: tuple[object, ...] = (job_id,)
    if expire_seconds is not None:
        sql += f" AND NOT (finished IS NOT NULL AND finished < {ago}) AND NOT (status = 'queued' AND created < {ago})"
        parameters += (expire_seconds, expire_seconds)
    row = database.execute(sql, parameters).fetchone()
    if row is None:
        return None
    return Job(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        progress=float(row["progress"]),
        params=json.loads(row["params"]),
        result=json.loads(row["result"]) if row["result"] is not None else None,
        error=row["error"],
        attempts=int(row["attempts"]),
    )


def jobs_ahead(database: Database, job_id: str) -> int:
    """How many jobs submitted before `job_id` are still queued or running: what a queued job waits for."""
    row = database.execute(
        "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')"
        " AND created < (SELECT created FROM jobs WHERE id = ?)",
        (job_id,),
    ).fetchone()
    return int(row[0])


def read_posters(database: Database, job_id: str) -> list[JobPoster]:
    rows = database.execute(
        "SELECT kind, label, imdb_id, image FROM job_posters WHERE job_id = ? ORDER BY position", (job_id,)
    )
    return [
        JobPoster(row["kind"], row["label"], row["imdb_id"], None if row["image"] is None else bytes(row["image"]))
        for row in rows
    ]


def read_file(database: Database, job_id: str, name: str) -> tuple[str, bytes] | None:
    """(content type, bytes) of a finished job's file `name`, or None."""
    if not JOB_ID.match(job_id):
        return None
    row = database.execute(
        "SELECT content_type, data FROM job_files WHERE job_id = ? AND name = ?", (job_id, name)
    ).fetchone()
    return None if row is None else (row["content_type"], bytes(row["data"]))


def claim(database: Database, job_id: str) -> int | None:
    """Mark a queued job running and return this run's attempt number; None when the job is not queued (done,
    failed, expired and deleted, or taken by another worker: a duplicate message in the queue is harmless)."""
    with database.transaction():
        taken = database.execute(
            f"UPDATE jobs SET status = 'running', attempts = attempts + 1, started = {now_sql(database)},"
            f" heartbeat = {now_sql(database)}, progress = 0 WHERE id = ? AND status = 'queued'",
            (job_id,),
        ).rowcount
        if taken != 1:
            return None
        return int(database.execute("SELECT attempts FROM jobs WHERE id = ?", (job_id,)).fetchone()[0])


RUN_OF = "id = ? AND status = 'running' AND attempts = ?"
"""The rows a run may write: its own job, while that job is running the run's attempt."""


def beat(database: Database, job_id: str, attempt: int, progress: float | None = None) -> bool:
    """Write the run's heartbeat (and progress); False when the run is no longer the job's current one."""
    if progress is None:
        sql, parameters = f"UPDATE jobs SET heartbeat = {now_sql(database)} WHERE {RUN_OF}", (job_id, attempt)
    else:
        sql = f"UPDATE jobs SET heartbeat = {now_sql(database)}, progress = ? WHERE {RUN_OF}"
        parameters = (min(max(progress, 0.0), 1.0), job_id, attempt)
    return database.execute(sql, parameters).rowcount == 1


def finish(
    database: Database, job_id: str, attempt: int, result: Mapping[str, Any], files: Mapping[str, bytes]
) -> bool:
    """Save a run's result and files and mark the job done, in one transaction; False (nothing saved) when the run
    is no longer the job's current one."""
    with database.transaction():
        done = database.execute(
            f"UPDATE jobs SET status = 'done', progress = 1, result = ?, finished = {now_sql(database)},"
            f" heartbeat = {now_sql(database)} WHERE {RUN_OF}",
            (json.dumps(dict(result)), job_id, attempt),
        ).rowcount
        if done != 1:
            return False
        for name, data in files.items():
            database.execute(
                "INSERT INTO job_files (job_id, name, content_type, data) VALUES (?, ?, ?, ?)",
                (job_id, name, content_type(name), data),
            )
    return True


def content_type(name: str) -> str:
    return {"png": "image/png", "pdf": "application/pdf", "jpg": "image/jpeg"}[name.rsplit(".", 1)[-1]]


def fail(database: Database, job_id: str, attempt: int, message: str) -> bool:
    return (
        database.execute(
            f"UPDATE jobs SET status = 'failed', error = ?, finished = {now_sql(database)} WHERE {RUN_OF}",
            (message, job_id, attempt),
        ).rowcount
        == 1
    )


def give_back(database: Database, job_id: str, attempt: int) -> bool:
    """A run interrupted by its worker's shutdown: the job is queued again, from the start, and the run does not
    count."""
    return (
        database.execute(
            "UPDATE jobs SET status = 'queued', attempts = attempts - 1, heartbeat = NULL, progress = 0"
            f" WHERE {RUN_OF}",
            (job_id, attempt),
        ).rowcount
        == 1
    )


def recover_stale(
    database: Database, stale_seconds: float, attempts: int, job_id: str | None = None
) -> tuple[list[str], list[str]]:
    """Jobs `running` without a heartbeat for `stale_seconds` (their worker stopped): queued again when they have
    had fewer than `attempts` runs, else failed with WORKER_STOPPED. Only `job_id` when given. Returns the ids
    queued again (to be put back in the queue) and the ids failed."""
    ago = database.dialect.seconds_ago
    only = " AND id = ?" if job_id is not None else ""
    stale = database.execute(
        f"SELECT id, attempts FROM jobs WHERE status = 'running' AND heartbeat < {ago}{only}",
        (stale_seconds, *([job_id] if job_id is not None else [])),
    ).fetchall()
    again, failed = [], []
    for row in stale:
        stale_id, runs = row["id"], int(row["attempts"])
        condition = f"{RUN_OF} AND heartbeat < {ago}"  # unless its worker wrote since we looked
        if runs < attempts:
            sql = f"UPDATE jobs SET status = 'queued', heartbeat = NULL, progress = 0 WHERE {condition}"
            if database.execute(sql, (stale_id, runs, stale_seconds)).rowcount == 1:
                again.append(stale_id)
        else:
            sql = f"UPDATE jobs SET status = 'failed', error = ?, finished = {now_sql(database)} WHERE {condition}"
            if database.execute(sql, (WORKER_STOPPED, stale_id, runs, stale_seconds)).rowcount == 1:
                failed.append(stale_id)
    return again, failed


def queued_jobs(database: Database, submitted_seconds_ago: float) -> list[str]:
    """The ids of the jobs queued (waiting for a worker) that were submitted at least `submitted_seconds_ago`."""
    rows = database.execute(
        f"SELECT id FROM jobs WHERE status = 'queued' AND created < {database.dialect.seconds_ago} ORDER BY created",
        (submitted_seconds_ago,),
    )
    return [row["id"] for row in rows]


def delete_expired(database: Database, expire_seconds: float) -> int:
    """Delete the jobs (with their posters and files) that finished `expire_seconds` ago, or that were submitted
    that long ago and never taken; returns how many."""
    ago = database.dialect.seconds_ago
    expired = f"(finished IS NOT NULL AND finished < {ago}) OR (status = 'queued' AND created < {ago})"
    return database.execute(f"DELETE FROM jobs WHERE {expired}", (expire_seconds, expire_seconds)).rowcount

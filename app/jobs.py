"""Background jobs: the work that takes longer than a web request should (a comparison of several drafts, a heatmap)
runs in a job worker (`posterbench worker`), not in gunicorn's workers.

- **The state** of every job lives in the app's database (the `jobs`, `job_posters` and `job_files` tables, migration
  3; app.job_store owns them), so that any web worker, a restarted one, or another host sharing the PostgreSQL
  database, answers GET /api/jobs/<id> alike. A job is `queued`, `running` (with a heartbeat the worker writes every
  JOB_HEARTBEAT_SECONDS), `done` (with its result) or `failed` (with a message).
- **The queue** is Huey's (app.job_queue): it carries job ids only, from the web request that submits
  a job to a worker. Its broker is chosen by JOBS_URL: a SQLite file (the embedded default, beside the app's SQLite
  database: no extra server), PostgreSQL (the default when the app's database is PostgreSQL: the same server), or
  Redis (`redis://`, the `redis` extra).
- **A worker that dies** (SIGKILL, out of memory, the host lost) stops writing its job's heartbeat. A job `running`
  whose heartbeat is older than JOB_STALE_SECONDS is queued again, once (JOB_ATTEMPTS runs in all), or else marked
  failed with WORKER_STOPPED; any worker does this at start-up and every few seconds, and the web app does it for
  a job when its status is asked. A worker stopped by SIGTERM or Ctrl-C gives its job back to the queue at once.
  A run that was given up on and then finishes anyway is ignored: each run holds its attempt number, and only
  the current attempt may write the job.
- **Results expire** JOB_EXPIRE_SECONDS after the job finished (or, for a job no worker ever took, after it was
  submitted): they then answer 404, and the worker (or the next submission) deletes them.
- **The database is the truth, the queue a wake-up call.** A job can be `queued` with no message in the broker: the
  broker restarted empty (Redis without persistence) or could not be reached when the job was queued again. Every
  sweep puts such a job's id in the queue again, once it is JOB_STALE_SECONDS old; a duplicate message is harmless
  (only one run can claim a queued job). So a broker that is down while a job is queued again delays the job, and
  the request that found it stale still answers.

The web side creates jobs (app.job_requests) and reads them (app.api, app.job_views); the worker runs them
(app.job_work) through `run_job` here."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from app.db import Database, StorageUnavailableError, configured_target, get_db, open_database, redacted
from app.job_queue import JobQueue, default_queue_url, quiet_broker_errors, wait_for_queue
from app.job_store import (
    JOB_ID,
    Job,
    JobPoster,
    beat,
    claim,
    create_job,
    delete_expired,
    delete_job,
    fail,
    finish,
    give_back,
    queued_jobs,
    read_job,
    read_posters,
    recover_stale,
)
from app.settings import checked_number, checked_numbers
from model.index import available_cores

EXTENSION = "posterbench.jobs"
UNEXPECTED = "the job failed on our side (it has been logged); please submit it again"
PROGRESS_INTERVAL_SECONDS = 0.2
"""A running job writes its progress at most this often (and always its last value)."""

logger = logging.getLogger(__name__)


class JobError(Exception):
    """A job that cannot be done for a reason its submitter can act on; the message is shown as the job's error."""


class SupersededError(Exception):
    """The run's job was taken from it (queued again or failed as stale, then perhaps run elsewhere): it stops."""


# ---------------------------------------------------------------- settings


JOB_NUMBERS = {  # name: (least, type)
    "JOB_NICE": (0, int),
    "JOB_STALE_SECONDS": (0.5, float),
    "JOB_HEARTBEAT_SECONDS": (0.1, float),
    "JOB_EXPIRE_SECONDS": (1, float),
    "JOB_ATTEMPTS": (1, int),
    "JOB_WORKERS": (1, int),
    "JOB_POLL_SECONDS": (0.01, float),
    "JOB_QUEUE_WAIT_SECONDS": (0, float),
    "JOBS_PER_CLIENT": (1, int),
}


def job_settings(config: Mapping[str, Any]) -> dict[str, float]:
    """The numeric job settings, checked: RuntimeError names a bad one (the app refuses to start with it)."""
    settings = checked_numbers(config, JOB_NUMBERS)
    settings["JOB_THREADS"] = job_threads(config)
    if settings["JOB_HEARTBEAT_SECONDS"] * 2 > settings["JOB_STALE_SECONDS"]:
        raise RuntimeError("POSTERBENCH_JOB_STALE_SECONDS must be at least twice POSTERBENCH_JOB_HEARTBEAT_SECONDS")
    return settings


def job_threads(config: Mapping[str, Any]) -> int:
    """The job worker's threads per inference: JOB_THREADS, or every core this process may use when it is empty."""
    value = config.get("JOB_THREADS")
    if value is None or value == "":
        return available_cores()
    return int(checked_number("JOB_THREADS", value, 1, int))


def lower_priority(niceness: int) -> None:
    """Make every thread of this process (ONNX Runtime's pool was made when the model was loaded) `niceness` nicer;
    threads made later inherit it. Linux keeps a niceness per thread; elsewhere the process's is changed."""
    if niceness <= 0:
        return
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        os.nice(niceness)
        return
    for task in tasks.iterdir():
        try:
            thread = int(task.name)
            os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + niceness))
        except (ValueError, OSError):
            continue  # a thread that just ended


def get_queue() -> JobQueue:
    return current_app.extensions[EXTENSION]


def submit(kind: str, params: Mapping[str, Any], posters: Sequence[JobPoster], client: str) -> str:
    """Save a job and put it in the queue; returns its id. The expired jobs are deleted first. A broker that cannot
    take it leaves nothing saved (503)."""
    database = get_db()
    settings = job_settings(current_app.config)
    delete_expired(database, settings["JOB_EXPIRE_SECONDS"])
    job_id = create_job(database, kind, params, posters, client, int(settings["JOBS_PER_CLIENT"]))
    try:
        get_queue().enqueue(job_id)  # after the commit: a worker never takes an id it cannot read yet
    except Exception as error:
        current_app.logger.exception("the job queue at %s refused job %s", redacted(get_queue().url), job_id)
        delete_job(database, job_id)
        raise StorageUnavailableError("the job queue cannot be reached", repr(error)) from error
    return job_id


def current_job(job_id: str) -> Job | None:
    """The job `job_id` as it is now, None when unknown or expired; a job whose worker stopped is first queued again
    or failed, so that no job stays `running` for ever."""
    database = get_db()
    settings = job_settings(current_app.config)
    if not JOB_ID.match(job_id):
        return None
    again, _ = recover_stale(database, settings["JOB_STALE_SECONDS"], int(settings["JOB_ATTEMPTS"]), job_id=job_id)
    for stale_id in again:
        get_queue().enqueue_or_leave(stale_id)
    return read_job(database, job_id, settings["JOB_EXPIRE_SECONDS"])


# ---------------------------------------------------------------- the worker's side


@dataclass
class Run:
    """One run of a job in a worker: what the work reports its progress to."""

    job: Job
    attempt: int
    database: Database
    last_written: float = 0.0

    def progress(self, share: float) -> None:
        """The share of the work done (0 to 1), written at most every PROGRESS_INTERVAL_SECONDS; raises SupersededError
        when the job was taken from this run."""
        now = time.monotonic()
        if now - self.last_written >= PROGRESS_INTERVAL_SECONDS or share >= 1:
            self.last_written = now
            if not beat(self.database, self.job.id, self.attempt, share):
                raise SupersededError(self.job.id)


RUNNING: dict[str, int] = {}
"""The jobs this worker process runs now (job id -> attempt), for its heartbeat thread and its shutdown."""
RUNNING_LOCK = threading.Lock()


@contextmanager
def claimed(database: Database, job_id: str) -> Iterator[int | None]:
    """claim() the job and count it among RUNNING in one step (a shutdown in between would leave it unnoticed,
    `running` until stale); yields the attempt, or None when the job is not queued."""
    with RUNNING_LOCK:
        attempt = claim(database, job_id)
        if attempt is not None:
            RUNNING[job_id] = attempt
    try:
        yield attempt
    finally:
        if attempt is not None:
            with RUNNING_LOCK:
                RUNNING.pop(job_id, None)


def run_job(app: Flask, job_id: str) -> None:
    """The queue's task: run the job `job_id` once, unless it is not queued (see claim)."""
    from app.job_work import WORK

    with app.app_context(), claimed(get_db(), job_id) as attempt:
        database = get_db()
        job = read_job(database, job_id, None) if attempt is not None else None
        if attempt is None or job is None:
            return
        run = Run(job, attempt, database)
        try:
            result, files = WORK[job.kind](job, read_posters(database, job_id), run.progress)
        except JobError as error:
            fail(database, job_id, attempt, str(error))
            return
        except SupersededError:
            logger.warning("job %s: run %d stopped, the job was taken from it", job_id, attempt)
            return
        except StorageUnavailableError:
            logger.exception("job %s: the database failed; the job will be run again or failed", job_id)
            return  # its heartbeat stops: recover_stale decides
        except Exception:
            logger.exception("job %s failed", job_id)
            fail(database, job_id, attempt, UNEXPECTED)
            return
        if not finish(database, job_id, attempt, result, files):
            logger.warning(
                "job %s: run %d finished after the job was taken from it; its result is dropped", job_id, attempt
            )


def heartbeats(target: str, interval: float, stop: threading.Event) -> None:
    """Write the heartbeat of every job this process runs, every `interval` seconds, until `stop` is set."""
    while not stop.wait(interval):
        with RUNNING_LOCK:
            jobs = dict(RUNNING)
        if not jobs:
            continue
        try:
            with closing(open_database(target)) as database:
                for job_id, attempt in jobs.items():
                    beat(database, job_id, attempt)
        except StorageUnavailableError as error:
            logger.warning("cannot write the heartbeat of %s: %s", ", ".join(jobs), error)
        except Exception:  # the thread must outlive any one failure: without it every running job would go stale
            logger.exception("cannot write the heartbeat of %s", ", ".join(jobs))


def sweep(app: Flask, check_lost: bool = True) -> None:
    """Queue again or fail the jobs whose worker stopped, delete the expired ones, and (with `check_lost`) put in the
    queue again the queued jobs whose message the broker does not hold (lost, or never sent: see the module's
    docstring)."""
    settings = job_settings(app.config)
    with closing(open_database(configured_target(app.config))) as database:
        again, failed = recover_stale(database, settings["JOB_STALE_SECONDS"], int(settings["JOB_ATTEMPTS"]))
        deleted = delete_expired(database, settings["JOB_EXPIRE_SECONDS"])
        queue: JobQueue = app.extensions[EXTENSION]
        for job_id in again:
            queue.enqueue_or_leave(job_id)
        lost = requeue_lost(database, queue, settings["JOB_STALE_SECONDS"]) if check_lost else 0
    if again or failed or deleted or lost:
        logger.info(
            "jobs whose worker stopped: %d queued again, %d failed; %d expired jobs deleted; %d queued jobs whose "
            "message the queue had lost sent again",
            len(again),
            len(failed),
            deleted,
            lost,
        )


def requeue_lost(database: Database, queue: JobQueue, older_than_seconds: float) -> int:
    """Put in the queue again each job queued in the database at least `older_than_seconds` ago whose id the broker
    does not hold; returns how many. A worker between taking a message and claiming its job may get a second one,
    which it drops."""
    queued = queued_jobs(database, older_than_seconds)
    if not queued:
        return 0
    try:
        waiting = queue.waiting_ids()
        lost = [job_id for job_id in queued if job_id not in waiting]
        for job_id in lost:
            queue.enqueue(job_id)
    except Exception as error:  # the broker is down: the next check sends them (Huey's consumer logs the outage)
        logger.warning("cannot check the job queue at %s for lost jobs: %s", redacted(queue.url), error)
        return 0
    return len(lost)


def sweeper(app: Flask, interval: float, stop: threading.Event) -> None:
    """Sweep every `interval` seconds; look for lost messages once every JOB_STALE_SECONDS (it reads every message
    the broker holds), the first time JOB_STALE_SECONDS after the start-up sweep."""
    stale_seconds = job_settings(app.config)["JOB_STALE_SECONDS"]
    lost_checked = time.monotonic()
    while not stop.wait(interval):
        check_lost = time.monotonic() - lost_checked >= stale_seconds
        if check_lost:
            lost_checked = time.monotonic()
        try:
            sweep(app, check_lost)
        except Exception:
            logger.exception("the sweep of stale and expired jobs failed; trying again in %g s", interval)


def give_back_interrupted(app: Flask) -> int:
    """Queue again, at once, the jobs this worker was running when it was told to stop; returns how many it was
    running."""
    with RUNNING_LOCK:
        jobs = dict(RUNNING)
    if not jobs:
        return 0
    queue: JobQueue = app.extensions[EXTENSION]
    with closing(open_database(configured_target(app.config))) as database:
        for job_id, attempt in jobs.items():
            if give_back(database, job_id, attempt) and queue.enqueue_or_leave(job_id):
                logger.info("job %s given back to the queue", job_id)
    return len(jobs)


def run_worker(app: Flask, workers: int | None = None, on_started: Callable[[], None] | None = None) -> None:
    """Run the job worker in this process until SIGINT or SIGTERM: Huey's consumer, `workers` threads (default
    JOB_WORKERS), each running one job at a time inside `app`, whose model, index and catalog are loaded once."""
    from threadpoolctl import threadpool_limits

    settings = job_settings(app.config)
    threads = int(settings["JOB_THREADS"])
    threadpool_limits(threads)  # BLAS and OpenMP, as ONNX Runtime (create_app(job_worker=True))
    lower_priority(int(settings["JOB_NICE"]))
    queue: JobQueue = app.extensions[EXTENSION]
    if queue.huey.immediate:
        raise RuntimeError("POSTERBENCH_JOBS_URL runs jobs in the web request (immediate://): no worker is needed")
    wait_for_queue(queue, settings["JOB_QUEUE_WAIT_SECONDS"])
    quiet_broker_errors()
    target = configured_target(app.config)
    sweep(app)
    stop = threading.Event()
    helpers = [
        threading.Thread(target=heartbeats, args=(target, settings["JOB_HEARTBEAT_SECONDS"], stop), daemon=True),
        threading.Thread(target=sweeper, args=(app, settings["JOB_HEARTBEAT_SECONDS"], stop), daemon=True),
    ]
    for helper in helpers:
        helper.start()
    consumer = queue.huey.create_consumer(
        workers=workers or int(settings["JOB_WORKERS"]),
        worker_type="thread",
        periodic=False,
        initial_delay=min(0.05, settings["JOB_POLL_SECONDS"]),
        backoff=1.25,
        max_delay=settings["JOB_POLL_SECONDS"],
        shutdown_timeout=10,  # a graceful stop (Ctrl-C) waits this long for the running job, then gives it back
    )
    logger.info(
        "job worker %d ready: queue %s, %d job(s) at a time, %d thread(s) each, nice %d",
        os.getpid(),
        redacted(queue.url),
        consumer.workers,
        threads,
        os.getpriority(os.PRIO_PROCESS, 0),
    )
    if on_started is not None:
        on_started()
    try:
        consumer.run()
    finally:
        stop.set()
        if give_back_interrupted(app):
            # A job's thread is still inside ONNX Runtime: ending the interpreter around it aborts the process
            # (SIGABRT from the runtime's destructors). Its job is back in the queue; leave at once.
            logging.shutdown()
            os._exit(0)


def init_app(app: Flask) -> None:
    job_settings(app.config)  # a bad setting stops the app here
    url = app.config.get("JOBS_URL") or default_queue_url(app.config)
    try:
        app.extensions[EXTENSION] = JobQueue(url, lambda job_id: run_job(app, job_id))
    except Exception as error:
        if isinstance(error, RuntimeError) and "POSTERBENCH_JOBS_URL" in str(error):
            raise
        raise RuntimeError(f"cannot open the job queue at {redacted(url)}: {error}") from error

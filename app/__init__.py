"""The web app: takes a poster (upload, IMDb link or sample), shows its predicted genres and the five most similar
catalog movies, and learns from people's ratings which distance recommends best: the pages, the JSON API, the
background jobs (comparisons of drafts, heatmaps) and the database with its migrations. Flask app factory, served by
gunicorn (app/gunicorn_conf.py), the job worker beside it under app/supervision.py."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from app.settings import APP_NUMBERS, checked_numbers, keep_text

MEGABYTE = 1024 * 1024


def resource_folder(name: str) -> Path:
    """templates/ or static/: inside the installed package (pyproject.toml maps them there), else at the top of the
    checkout, where they live."""
    installed = Path(__file__).resolve().parent / name
    return installed if installed.is_dir() else Path(__file__).resolve().parent.parent / name


def create_app(test_config: dict | None = None, job_worker: bool = False) -> Flask:
    """Build the app. Settings: defaults < instance/config.py < POSTERBENCH_* variables < `test_config`. A job worker
    (`posterbench worker`, app/jobs.py) runs the model on JOB_THREADS threads instead of INFERENCE_THREADS."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=str(resource_folder("templates")),
        static_folder=str(resource_folder("static")),
    )
    app.config.from_mapping(
        DATABASE=str(Path(app.instance_path) / "posterbench.sqlite"),  # the embedded default: a SQLite file
        DATABASE_URL=None,  # postgresql://user:password@host/name: state shared by every worker on every host
        CATALOG=None,
        MODEL=None,
        INDEX=None,
        CLEMS=None,  # optional: a CLEMS directory (make clems) whose genre probabilities refine the model's
        BANDIT_POLICY="epsilon_greedy",  # or ucb1, thompson (bandit.POLICIES)
        BANDIT_PARAMS={},  # keyword arguments of that policy, e.g. {"decay": 50} (epsilon-greedy's default)
        SAMPLE_COUNT=12,
        MAX_CONTENT_LENGTH=10 * MEGABYTE,  # uploads (and posters fetched from IMDb) above this are refused
        SECRET_KEY=None,
        SESSION_COOKIE_SAMESITE="Lax",
        IMDB_TIMEOUT_SECONDS=10.0,
        IMDB_OVERRIDES={},  # host -> origin, e.g. {"www.imdb.com": "http://127.0.0.1:8765"}: an offline replica
        FEEDBACK_LIMIT=30,  # votes per client ...
        FEEDBACK_WINDOW_SECONDS=60,  # ... in this many seconds
        API_TOKEN=None,  # when set, API calls that change state need "Authorization: Bearer <token>"
        TRUSTED_PROXIES=0,  # reverse proxies in front of the app whose X-Forwarded-For is believed
        TRUSTED_HOSTS=None,  # ["posterbench.example"]: other Host headers get 400 (the API's links name the Host)
        POSTERS_PER_CLIENT=2,  # uploads and IMDb links one client may have in progress at once, per worker
        IMDB_FETCHES_PER_CLIENT=1,  # IMDb link fetches one client may have in progress at once, per worker
        IMDB_FETCHES=2,  # IMDb link fetches in progress at once per worker, all clients together
        INFERENCE_THREADS=None,  # ONNX Runtime's threads per inference (1); gunicorn: a request's share of the cores
        PRECISION=None,  # the ONNX export served: auto (int8 when its check passed), float32 or int8; empty: auto
        # Background jobs (app/jobs.py): comparisons and heatmaps run in `posterbench worker`, not in gunicorn.
        JOBS_URL=None,  # the queue's broker: sqlite:///path, postgresql://..., redis://...; empty: beside the database
        JOB_THREADS=None,  # the job worker's threads per inference (ONNX Runtime, BLAS); empty: every core it may use
        JOB_NICE=10,  # the job worker's niceness: web requests come first on a shared host
        JOB_WORKERS=1,  # jobs one worker process runs at once
        JOB_ATTEMPTS=2,  # runs of a job whose worker stopped (killed, lost) before it is marked failed
        JOB_HEARTBEAT_SECONDS=5,  # how often a running job's worker says it is alive
        JOB_STALE_SECONDS=30,  # a running job silent this long lost its worker: run it again, or fail it
        JOB_EXPIRE_SECONDS=3600,  # a finished job's result (JSON, sheet, heatmap) is kept this long, then 404
        JOB_POLL_SECONDS=0.1,  # the longest an idle worker waits before it looks at a SQLite queue again
        JOB_QUEUE_WAIT_SECONDS=60,  # how long a starting worker waits for its queue's broker to answer, then stops
        JOBS_PER_CLIENT=4,  # jobs one client may have queued or running at once; 429 beyond
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_prefixed_env("POSTERBENCH")
        keep_text(app.config)
        app.config["DATABASE_URL"] = app.config["DATABASE_URL"] or os.environ.get("DATABASE_URL") or None
    else:
        app.config.from_mapping(test_config)
    app.config["JOB_WORKER"] = job_worker
    app.config.update(checked_numbers(app.config, APP_NUMBERS))
    if not app.config["SECRET_KEY"]:
        raise RuntimeError("set POSTERBENCH_SECRET_KEY (or SECRET_KEY in instance/config.py); `make run` makes one")

    from bandit import make_policy

    make_policy(app.config["BANDIT_POLICY"], **app.config["BANDIT_PARAMS"])  # a bad setting fails here, not later

    from app import api, dashboard, db, errors, job_views, jobs, limits, resources, security, views

    db.init_app(app)
    target = db.configured_target(app.config)
    try:
        db.init_db(target)
    except db.StorageUnavailableError as error:
        raise RuntimeError(f"cannot prepare the database at {db.redacted(target)}: {error}") from error
    jobs.init_app(app)
    resources.init_app(app)
    limits.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    api.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(job_views.bp)
    return app
